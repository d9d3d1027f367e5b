#!/usr/bin/env bash
# gpu/check.sh DIR -- the GPU check: on a machine with an NVIDIA GPU (an
# H100 or H200 takes about three minutes), build the CUDA backend
# (Release), run the GPU suites on both backends, the example, and the GPU
# benchmarks, and write everything under DIR:
#
#   summary.txt     one line per step (PASS, FAIL or SKIP, and why), then
#                   the benchmarks' RESULT lines: read this first
#   machine.txt     the GPU (nvidia-smi), driver, toolkit, CPU
#   configure.txt   CMake's output (it says whether the CUDA backend is on)
#   build.txt       the build's
#   tests.txt       the GPU suites, every test's line (the CUDA one skips
#                   where no device is visible, and says how many and why)
#   example.txt     examples/gpu_pipeline on the default backend
#   bench.txt       gpu_launch and gpu_pipeline, CUDA and host, 3 runs each
#
# Where no device is visible it runs all the same and reports the skips,
# so it can be tried anywhere first. Exit status: 0 when every step that
# could run passed.
#
# Dependencies: CMake, a C compiler, the CUDA toolkit (nvcc; CUDAToolkit_ROOT
# or /usr/local/cuda), and liburcu and libmicrohttpd through pkg-config.
# Where the last two are not installed and cannot be (no network), the
# Debian packages gpu/fetch-deps.sh downloads into gpu/deps/ on a machine
# that has apt are unpacked into DIR/sysroot and used from there. Criterion
# and jemalloc are optional: the suites build against test/harness/ and the
# system malloc without them.
set -uo pipefail

out=${1:?usage: gpu/check.sh DIR}
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
build="$out/build"
summary="$out/summary.txt"
: >"$summary"
status=0
step() { # step RESULT WHAT
    printf '%-5s %s\n' "$1" "$2" | tee -a "$summary"
    [ "$1" = FAIL ] && status=1
    return 0
}

# ---- the machine ----------------------------------------------------------
{
    date -u
    uname -a
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=name,memory.total,driver_version,pci.bus_id \
            --format=csv 2>&1
    else
        echo "nvidia-smi: not found"
    fi
    for nvcc in "${CUDAToolkit_ROOT:-/usr/local/cuda}/bin/nvcc" nvcc; do
        command -v "$nvcc" >/dev/null 2>&1 && { "$nvcc" --version; break; }
    done
    cmake --version | head -1
    grep -m1 'model name' /proc/cpuinfo
    echo "cpus: $(nproc)"
} >"$out/machine.txt" 2>&1
gpu=$(grep -m1 -i 'nvidia\|h100\|h200' "$out/machine.txt" | grep -v '^nvidia-smi: not' || true)
step INFO "machine: ${gpu:-no NVIDIA GPU listed by nvidia-smi}, $(nproc) CPUs"

# ---- dependencies -----------------------------------------------------------
have_deps() { pkg-config --exists liburcu-bp liburcu-cds libmicrohttpd 2>/dev/null; }
if ! have_deps && compgen -G "$src/gpu/deps/*.deb" >/dev/null; then
    sysroot="$out/sysroot"
    rm -rf "$sysroot"
    mkdir -p "$sysroot"
    for deb in "$src"/gpu/deps/*.deb; do
        dpkg-deb -x "$deb" "$sysroot" || step FAIL "unpacking $deb"
    done
    # Their .pc files name /usr; gnutls, which libmicrohttpd requires
    # privately, is only needed for a static link.
    for pc in $(find "$sysroot" -name '*.pc'); do
        sed -i -e "s|^prefix=/usr|prefix=$sysroot/usr|" \
            -e '/^Requires.private:/d' "$pc"
    done
    pcdir=$(dirname "$(find "$sysroot" -name liburcu-bp.pc | head -1)")
    libdir=$(dirname "$(find "$sysroot" -name 'liburcu-bp.so*' | head -1)")
    export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    step INFO "liburcu and libmicrohttpd from gpu/deps/*.deb (unpacked into $sysroot)"
fi
if ! have_deps; then
    step FAIL "liburcu and libmicrohttpd are not found by pkg-config: install liburcu-dev and libmicrohttpd-dev, or run gpu/fetch-deps.sh where apt works and bring gpu/deps/ along"
    exit 2
fi

args=(-DCMAKE_BUILD_TYPE=Release -DXO_BUILD_TESTS=ON -DXO_CUDA=ON)
if ! pkg-config --exists criterion 2>/dev/null; then
    args+=(-DXO_TEST_HARNESS=ON)
    step INFO "Criterion not installed: the suites run on test/harness/"
fi
pkg-config --exists jemalloc 2>/dev/null || args+=(-DXO_USE_JEMALLOC=OFF)
command -v ninja >/dev/null 2>&1 && args+=(-G Ninja)
[ -d /usr/local/cuda ] && [ -z "${CUDAToolkit_ROOT:-}" ] &&
    args+=(-DCUDAToolkit_ROOT=/usr/local/cuda)

# ---- configure and build ----------------------------------------------------
rm -rf "$build"
if ! cmake -S "$src" -B "$build" "${args[@]}" >"$out/configure.txt" 2>&1; then
    step FAIL "configure (configure.txt)"
    exit 1
fi
cuda_line=$(grep 'GPU pools:' "$out/configure.txt" | sed 's/^-- //')
if grep -q 'CUDA backend on' "$out/configure.txt"; then
    step PASS "configure: $cuda_line"
else
    step FAIL "configure: $cuda_line"
fi
targets=(test_gpu xoscar-bench example_gpu_pipeline)
cuda_suite_built=
grep -q 'nvcc for the GPU tests: ON' "$out/configure.txt" &&
    targets+=(test_gpu_cuda) && cuda_suite_built=yes
if cmake --build "$build" -j "$(nproc)" --target "${targets[@]}" \
    >"$out/build.txt" 2>&1; then
    step PASS "build (Release, -Werror): ${targets[*]}"
else
    step FAIL "build (build.txt)"
    exit 1
fi

# ---- tests ---------------------------------------------------------------
: >"$out/tests.txt"
run_suite() { # run_suite NAME COMMAND...
    local name=$1 rc
    shift
    echo "==== $name" >>"$out/tests.txt"
    timeout 300 "$@" >>"$out/tests.txt" 2>&1
    rc=$?
    local line
    line=$(grep -E 'Synthesis|passed, .*failed' "$out/tests.txt" | tail -1)
    local skips
    skips=$(grep -E '^test_[a-z_]+: [0-9]+ CUDA test' "$out/tests.txt" | tail -1)
    case $rc in
    0) step PASS "$name: $line${skips:+; $skips}" ;;
    77) step SKIP "$name: ${skips:-skipped}" ;;
    124) step FAIL "$name: timed out after 300 s (tests.txt)" ;;
    *) step FAIL "$name: exit $rc: $line (tests.txt)" ;;
    esac
}
run_suite "gpu suite, host backend" "$build/test/test_gpu"
if [ -x "$build/test/test_gpu_cuda" ]; then
    run_suite "gpu suite, CUDA backend" bash "$src/test/gpu/run-cuda.sh" \
        "$build/test/test_gpu_cuda"
else
    step SKIP "gpu suite, CUDA backend: not built (no nvcc)"
fi
# Buffers across nodes (test/test_net_gpu.c): built where the net layer is
# (OpenSSL's libcrypto and Concurrency Kit found at configure time).
net_targets=(test_net_gpu)
[ -n "${cuda_suite_built:-}" ] && net_targets+=(test_net_gpu_cuda)
if cmake --build "$build" -j "$(nproc)" --target "${net_targets[@]}" \
    >>"$out/build.txt" 2>&1; then
    run_suite "net_gpu suite (buffers across nodes), host backend" \
        "$build/test/test_net_gpu"
    if [ -x "$build/test/test_net_gpu_cuda" ]; then
        run_suite "net_gpu suite, CUDA backend" bash \
            "$src/test/gpu/run-cuda.sh" "$build/test/test_net_gpu_cuda"
    fi
else
    step SKIP "net_gpu suites: not built (no net layer in this configuration: build.txt)"
fi

# ---- the example -------------------------------------------------------------
if timeout 120 "$build/examples/gpu_pipeline" 64 4 >"$out/example.txt" 2>&1 &&
    grep -q 'all correct' "$out/example.txt"; then
    step PASS "example: $(grep -m1 '^backend:' "$out/example.txt"); $(grep -m1 'buffers of' "$out/example.txt")"
else
    step FAIL "example (example.txt)"
fi

# ---- benchmarks ---------------------------------------------------------------
bench="$build/bench/xoscar-bench"
: >"$out/bench.txt"
run_bench() { # run_bench BACKEND ARGS...
    local backend=$1 rc one="$out/bench.one"
    shift
    echo "==== --gpu $backend $*" >>"$out/bench.txt"
    timeout 180 "$bench" --runs 3 --gpu "$backend" "$@" >"$one" 2>&1
    rc=$?
    cat "$one" >>"$out/bench.txt"
    if [ $rc -eq 0 ]; then
        step PASS "bench --gpu $backend $*"
    elif [ "$backend" = cuda ] && grep -q 'no GPU pool' "$one"; then
        step SKIP "bench --gpu $backend $*: $(grep -m1 'no GPU pool' "$one")"
    else
        step FAIL "bench --gpu $backend $* (exit $rc, bench.txt)"
    fi
    rm -f "$one"
}
run_bench cuda gpu_launch 1e5
run_bench cuda gpu_pipeline 1e5 65536 64
run_bench host gpu_launch 1e5
run_bench host gpu_pipeline 2e4 65536 64

echo >>"$summary"
grep '^RESULT' "$out/bench.txt" >>"$summary"
echo "status: $status" >>"$summary"
exit $status
