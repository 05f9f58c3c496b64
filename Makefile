# Tern - thin wrapper around CMake. See README.md.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
PREFIX     ?= /usr/local
# the configuration directory; empty: CMake's choice for PREFIX
# (/etc/tern for /usr, $(PREFIX)/etc/tern otherwise)
CONFIG_DIR ?=
INSTALL_BUILD ?= build-install
DEB_BUILD  ?= build-deb
DIST       ?= dist
CTEST_ARGS ?= --output-on-failure --timeout 900

FUZZ_BUILD ?= build-fuzz
FUZZ_RUNS  ?= 20000

.PHONY: all build run test test-fast test-asan test-fuzz install deb bench fuzz clean deps deps-test deps-fuzz deps-install deps-deb

all: build

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

deps-fuzz:
	@scripts/deps.sh fuzz

deps-install:
	@scripts/deps.sh install

deps-deb:
	@scripts/deps.sh deb

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j$(JOBS)

run: build
	BUILD=$(CURDIR)/$(BUILD) scripts/run.sh

# make test = a short run of every fuzz harness, then the normal build and
# the sanitizer build with every unit and integration test in both
test: deps-test test-fuzz test-fast test-asan

test-fast:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j$(JOBS)
	cd $(BUILD) && ctest $(CTEST_ARGS)

test-asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTERN_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_ARGS)

# make install: its own build tree, configured for PREFIX (the defaults
# compiled in are the installed paths) and without the tests (no Check)
install: deps-install
	cmake -S . -B $(INSTALL_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCMAKE_INSTALL_PREFIX=$(PREFIX) -DTERN_TESTS=OFF \
	    $(if $(CONFIG_DIR),-DTERN_CONFIG_DIR=$(CONFIG_DIR))
	cmake --build $(INSTALL_BUILD) -j$(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(INSTALL_BUILD)
	@DESTDIR="$(DESTDIR)" scripts/postinstall.sh $(INSTALL_BUILD)

# make deb: dist/tern_VERSION_ARCH.deb and dist/tern-mta_VERSION_all.deb
# (debian/; debhelper from Debian 12)
# (built from a copy of the tree in $(DEB_BUILD): dpkg-buildpackage writes
# its results into the parent directory)
deb: deps-deb
	rm -rf $(DEB_BUILD) $(DIST) && mkdir -p $(DEB_BUILD)/src $(DIST)
	git ls-files -co --exclude-standard | tar -cf - -T - | tar -xf - -C $(DEB_BUILD)/src
	cd $(DEB_BUILD)/src && dpkg-buildpackage -b -us -uc -j$(JOBS)
	mv $(DEB_BUILD)/tern_*.deb $(DEB_BUILD)/tern-mta_*.deb $(DIST)/
	@ls $(DIST)/

bench: build
	bench/run.sh

fuzz: deps-fuzz
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DTERN_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build $(FUZZ_BUILD) -j$(JOBS)

# every harness builds and survives FUZZ_RUNS inputs (a smoke test; long
# campaigns: build-fuzz/fuzz/fuzz_NAME -max_total_time=3600 CORPUS_DIR)
test-fuzz: fuzz
	@for f in $(FUZZ_BUILD)/fuzz/fuzz_*; do \
	    $$f -runs=$(FUZZ_RUNS) -max_total_time=60 > $(FUZZ_BUILD)/last-fuzz.log 2>&1 \
	        || { cat $(FUZZ_BUILD)/last-fuzz.log; echo "fuzz: $$f FAILED"; exit 1; }; \
	    echo "fuzz: $$(basename $$f): $$(tail -1 $(FUZZ_BUILD)/last-fuzz.log)"; \
	done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(INSTALL_BUILD) $(DEB_BUILD) $(DIST)
