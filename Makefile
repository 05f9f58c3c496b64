# Tern - thin wrapper around CMake. See README.md.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc/tern
CTEST_ARGS ?= --output-on-failure --timeout 900

FUZZ_BUILD ?= build-fuzz
FUZZ_RUNS  ?= 20000

.PHONY: all build run test test-fast test-asan test-fuzz install bench fuzz clean deps deps-test deps-fuzz

all: build

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

deps-fuzz:
	@scripts/deps.sh fuzz

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

install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)
	install -d $(DESTDIR)$(SYSCONFDIR)
	test -e $(DESTDIR)$(SYSCONFDIR)/main.conf || \
	    sed 's|@LIBEXECDIR@|$(PREFIX)/libexec/tern|; s|@SBINDIR@|$(PREFIX)/sbin|' \
	        conf/main.conf > $(DESTDIR)$(SYSCONFDIR)/main.conf
	test -e $(DESTDIR)$(SYSCONFDIR)/master.conf || \
	    install -m 644 conf/master.conf $(DESTDIR)$(SYSCONFDIR)/master.conf
	test -e $(DESTDIR)$(SYSCONFDIR)/aliases || \
	    install -m 644 conf/aliases $(DESTDIR)$(SYSCONFDIR)/aliases
	# a missing alias table makes local mail wait (4.3.0), so build it
	if [ -z "$(DESTDIR)" ] && [ ! -e $(SYSCONFDIR)/aliases.lmdb ]; then \
	    $(BUILD)/sbin/newaliases -c $(SYSCONFDIR); fi

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
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
