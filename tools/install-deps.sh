#!/usr/bin/env bash
# Install the Debian packages xoscar builds with, if any is missing.
# Usage: tools/install-deps.sh [--tests] [--peers] [extra-package ...]
#   --tests  also what the test suites need (Criterion; Prometheus and
#            promtool, which the metrics suite runs against the endpoint;
#            tmux, for the test that runs xoscar-top on a terminal;
#            jansson, which parses the trace back; clang and libFuzzer,
#            for the wire decoder's fuzz run; iproute2, whose ip netns
#            makes the net suite's partition)
#   --peers  also the peer runtimes the benchmarks are compared with
#            (bench/peers.md): Erlang/OTP 25 (erlang-base) and CAF 0.17
#            (libcaf-dev, with g++ to build bench/caf). Developer tools
#            only: neither `make run` nor `make test` needs them.
# Runs apt-get as root, or through sudo when that is available.
set -euo pipefail

# libmicrohttpd (the /metrics endpoint) requires gnutls, whose pkg-config
# file names -lunistring for a static link (pkg-config --static xoscar),
# and Debian's libgnutls28-dev does not bring libunistring-dev along.
#
# GPU pools' CUDA backend needs NVIDIA's CUDA toolkit (nvcc and the CUDA
# runtime, cudart; 12 or later; /usr/local/cuda, or CUDAToolkit_ROOT), and
# a driver to run on a device. It is not a Debian package of main and this
# script does not install it: CMake builds the CUDA backend where it finds
# the toolkit and says so; without it the build leaves the CUDA backend out
# (configure says "GPU pools: CUDA toolkit not found") and GPU pools run on
# the host backend, on which every GPU test runs (docs/gpu.md).
packages=(cmake make gcc pkg-config liburcu-dev libjemalloc-dev
          libmicrohttpd-dev libunistring-dev libncurses-dev
          libssl-dev libck-dev)
while [ $# -gt 0 ]; do
    case $1 in
    --tests) packages+=(libcriterion-dev prometheus tmux libjansson-dev
                        clang libfuzzer-14-dev iproute2) ;;
    --peers) packages+=(erlang-base libcaf-dev g++) ;;
    *) break ;;
    esac
    shift
done
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: missing ${missing[*]}, and no apt-get here: install them by hand" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "install-deps: missing ${missing[*]}: run as root or install them" >&2
        exit 1
    fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
