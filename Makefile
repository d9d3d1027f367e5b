# Entry points for people; CMake does the building.
#   make run        install dependencies, build (Release), run the main job:
#                   the benchmark suite, xoscar-bench all
#   make bench      the suite 3 times over, results, table and chart under
#                   build/bench-results/ (BENCH_RUNS=n to change)
#   make test       install dependencies, build, run every test suite
#   make test-asan  the same suites under AddressSanitizer+UBSan+LeakSanitizer
#   make test-tsan  the same suites under ThreadSanitizer
#   make install    install into PREFIX (default /usr/local)
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local
CMAKE  ?= cmake

.PHONY: all deps build run bench test test-asan test-tsan install clean

all: build

deps:
	@bash tools/install-deps.sh

build/release/CMakeCache.txt: | deps
	$(CMAKE) -S . -B build/release -DCMAKE_BUILD_TYPE=Release

build/asan/CMakeCache.txt: | deps
	$(CMAKE) -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DXO_SANITIZE=address

build/tsan/CMakeCache.txt: | deps
	$(CMAKE) -S . -B build/tsan -DCMAKE_BUILD_TYPE=Debug -DXO_SANITIZE=thread

build: deps build/release/CMakeCache.txt
	$(CMAKE) --build build/release -j $(JOBS)

# The main job: every benchmark once, each checking its own result. The
# configure step picks up bench/ in a build tree made before it existed.
XO_BENCH   = build/release/bench/xoscar-bench
BENCH_RUNS ?= 3
run: build
	@$(CMAKE) -S . -B build/release >/dev/null
	$(CMAKE) --build build/release -j $(JOBS) --target xoscar-bench
	./$(XO_BENCH) all

bench: build
	@command -v gnuplot >/dev/null 2>&1 || bash tools/install-deps.sh gnuplot-nox
	@$(CMAKE) -S . -B build/release >/dev/null
	$(CMAKE) --build build/release -j $(JOBS) --target xoscar-bench
	bash bench/run-suite.sh $(XO_BENCH) build/bench-results $(BENCH_RUNS)

test: deps build/release/CMakeCache.txt
	$(CMAKE) --build build/release -j $(JOBS)
	cd build/release && ctest --output-on-failure

test-asan: deps build/asan/CMakeCache.txt
	$(CMAKE) --build build/asan -j $(JOBS)
	cd build/asan && ctest --output-on-failure

test-tsan: deps build/tsan/CMakeCache.txt
	$(CMAKE) --build build/tsan -j $(JOBS)
	cd build/tsan && ctest --output-on-failure

install: build
	$(CMAKE) --install build/release --prefix $(PREFIX)

clean:
	rm -rf build
