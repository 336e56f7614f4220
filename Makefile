# sharehub: a thin layer over CMake. On a fresh Debian 12 machine (as root or
# with sudo) `make demo` and `make test` install what is missing, configure,
# build, and run. Both are idempotent and quick when nothing changed.
BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
BUILD_TYPE ?= RelWithDebInfo
FUZZ_SECONDS ?= 60

# The build under CMake is a recursive make: keep its output to what it does.
MAKEFLAGS += --no-print-directory

.PHONY: all setup build test demo install deb asan fuzz bench format clean

all: build

setup:
	@scripts/setup-deps.sh

# Configure once; CMake re-runs itself when a CMakeLists.txt changes.
CONFIGURE = cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
$(BUILD)/CMakeCache.txt:
	$(CONFIGURE)

build: setup $(BUILD)/CMakeCache.txt
	@cmake --build $(BUILD) -j$(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

demo: build
	@scripts/demo.sh $(BUILD)

# The programs, man pages, systemd units and an example configuration, under
# PREFIX (default /usr/local; DESTDIR is honoured). Nothing is enabled.
install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

# The Debian package (build-deb/sharehub_VERSION_ARCH.deb): a build of its
# own for /usr and /etc, then CPack. Install it with apt or dpkg -i.
deb: setup
	@scripts/make-deb.sh build-deb

# The same tests under AddressSanitizer and UndefinedBehaviorSanitizer.
asan: setup
	@test -f build-asan/CMakeCache.txt || \
	    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSHUB_SANITIZE=ON
	@cmake --build build-asan -j$(JOBS)
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j$(JOBS)

# Every libFuzzer target (clang; the CMake target `fuzzers` names them all),
# each run for FUZZ_SECONDS; any crash, leak or sanitizer report fails the run
# and leaves the input under tests/fuzz/.
fuzz:
	@scripts/setup-deps.sh --fuzz
	@test -f build-fuzz/CMakeCache.txt || \
	    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DSHUB_FUZZ=ON \
	        -DSHUB_SANITIZE=ON -DBUILD_TESTING=OFF
	@cmake --build build-fuzz -j$(JOBS) --target fuzzers
	@scripts/run-fuzzers.sh build-fuzz $(FUZZ_SECONDS)

# The benchmarks, with the peers the broker is measured against (NATS
# JetStream, mosquitto): only this target installs them (setup-deps.sh
# --bench), as fuzz installs clang. Configure again so that CMake finds
# libraries installed just now.
bench:
	@scripts/setup-deps.sh --bench
	@$(CONFIGURE) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	@scripts/run-bench.sh $(BUILD)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan build-fuzz build-deb
