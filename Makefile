# Entry points for people; CMake does the building.
#   make run        install dependencies, build (Release), run the main job
#   make test       install dependencies, build, run every test suite
#   make test-asan  the same suites under AddressSanitizer+UBSan+LeakSanitizer
#   make test-tsan  the same suites under ThreadSanitizer
#   make install    install into PREFIX (default /usr/local)
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local
CMAKE  ?= cmake

.PHONY: all deps build run test test-asan test-tsan install clean

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

# The main job: the examples, until the benchmark suite takes over.
run: build
	./build/release/examples/example_hello
	./build/release/examples/example_pingpong 1000000

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
