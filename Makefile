# Tern - thin wrapper around CMake. See README.md.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc/tern
CTEST_ARGS ?= --output-on-failure --timeout 900

.PHONY: all build run test test-fast test-asan install bench fuzz clean deps deps-test

all: build

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j$(JOBS)

run: build
	BUILD=$(CURDIR)/$(BUILD) scripts/run.sh

# make test = the normal build and the sanitizer build, every test in both
test: deps-test test-fast test-asan

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

bench: build
	bench/run.sh

fuzz:
	CC=clang cmake -S . -B build-fuzz -DTERN_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-fuzz -j$(JOBS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
