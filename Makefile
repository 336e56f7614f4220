# sharehub: a thin layer over CMake. On a fresh Debian 12 machine (as root or
# with sudo) `make demo` and `make test` install what is missing, configure,
# build, and run. Both are idempotent and quick when nothing changed.
BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
BUILD_TYPE ?= RelWithDebInfo
FUZZ_SECONDS ?= 60

# The build under CMake is a recursive make: keep its output to what it does.
MAKEFLAGS += --no-print-directory

.PHONY: all setup build test demo asan fuzz bench format clean

all: build

setup:
	@scripts/setup-deps.sh

# Configure once; CMake re-runs itself when a CMakeLists.txt changes.
$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: setup $(BUILD)/CMakeCache.txt
	@cmake --build $(BUILD) -j$(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

demo: build
	@scripts/demo.sh $(BUILD)

# The same tests under AddressSanitizer and UndefinedBehaviorSanitizer.
asan: setup
	@test -f build-asan/CMakeCache.txt || \
	    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSHUB_SANITIZE=ON
	@cmake --build build-asan -j$(JOBS)
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j$(JOBS)

# libFuzzer targets (clang), each run for FUZZ_SECONDS; any crash, leak or
# sanitizer report fails the run and leaves the input under tests/fuzz/.
fuzz:
	@scripts/setup-deps.sh clang libclang-rt-14-dev
	@test -f build-fuzz/CMakeCache.txt || \
	    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DSHUB_FUZZ=ON \
	        -DSHUB_SANITIZE=ON -DBUILD_TESTING=OFF
	@cmake --build build-fuzz -j$(JOBS) --target fuzz_msg_decode fuzz_yaml_load
	@scripts/run-fuzzers.sh build-fuzz $(FUZZ_SECONDS)

bench: build
	@scripts/run-bench.sh $(BUILD)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan build-fuzz
