# Entry points for people; CMake does the building.
#   make run        install what it needs, build the benchmark suite
#                   (Release), run every benchmark once and print the
#                   results table: the main job
#   make bench      the suite 3 times over, results, table and chart under
#                   build/bench-results/ (BENCH_RUNS=n to change)
#   make test       install what it needs (Criterion too), build, run every
#                   test suite
#   make test-asan  the same suites under AddressSanitizer+UBSan+LeakSanitizer
#   make test-tsan  the same suites under ThreadSanitizer
#   make install    install into PREFIX (default /usr/local)
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local
CMAKE  ?= cmake

.PHONY: all deps test-deps build run bench test test-asan test-tsan install clean

all: build

deps:
	@bash tools/install-deps.sh

test-deps:
	@bash tools/install-deps.sh --tests

# Configured every time (it is quick): a tree configured before Criterion
# or bench/ were there picks them up.
configure-release = $(CMAKE) -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DXO_REQUIRE_TESTS=OFF >/dev/null

build: deps
	@$(configure-release)
	$(CMAKE) --build build/release -j $(JOBS)

# The main job builds only what it runs: no test suite, no Criterion.
XO_BENCH   = build/release/bench/xoscar-bench
BENCH_RUNS ?= 3
run: deps
	@$(configure-release)
	$(CMAKE) --build build/release -j $(JOBS) --target xoscar-bench
	bash bench/run-suite.sh $(XO_BENCH) build/run-results 1 --table

bench: deps
	@command -v gnuplot >/dev/null 2>&1 || bash tools/install-deps.sh gnuplot-nox
	@$(configure-release)
	$(CMAKE) --build build/release -j $(JOBS) --target xoscar-bench
	bash bench/run-suite.sh $(XO_BENCH) build/bench-results $(BENCH_RUNS)

# The suites' build must have them: XO_REQUIRE_TESTS makes a missing
# Criterion an error instead of a skipped folder.
test: test-deps
	@$(CMAKE) -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DXO_REQUIRE_TESTS=ON >/dev/null
	$(CMAKE) --build build/release -j $(JOBS)
	cd build/release && ctest --output-on-failure

test-asan: test-deps
	@$(CMAKE) -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DXO_SANITIZE=address -DXO_REQUIRE_TESTS=ON >/dev/null
	$(CMAKE) --build build/asan -j $(JOBS)
	cd build/asan && ctest --output-on-failure

test-tsan: test-deps
	@$(CMAKE) -S . -B build/tsan -DCMAKE_BUILD_TYPE=Debug -DXO_SANITIZE=thread -DXO_REQUIRE_TESTS=ON >/dev/null
	$(CMAKE) --build build/tsan -j $(JOBS)
	cd build/tsan && ctest --output-on-failure

# Into a system prefix as root, the loader's cache learns the new library
# (Debian's loader searches /usr/local/lib, but only through its cache).
install: build
	$(CMAKE) --install build/release --prefix $(PREFIX)
	@if [ "$$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null 2>&1 && \
	    ldconfig -v -N 2>/dev/null | grep -q "^$(PREFIX)/lib:"; then ldconfig; fi

clean:
	rm -rf build
