#!/usr/bin/env bash
# Install the built tree into a scratch prefix, then build a small program
# against it twice: as a CMake project (find_package + xoscar::xoscar) and
# with pkg-config. Each program must run and print the expected line.
set -euo pipefail
build_dir=$1
work=$2
src_dir=$(cd "$(dirname "$0")" && pwd)
cmake_cmd=${CMAKE_COMMAND:-cmake}

rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"
"$cmake_cmd" --install "$build_dir" --prefix "$prefix" >/dev/null

libdir=$(find "$prefix" -name 'libxoscar.so' -printf '%h\n' | head -n1)
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# 1. CMake package.
"$cmake_cmd" -S "$src_dir/consumer" -B "$work/consumer-build" \
    -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
"$cmake_cmd" --build "$work/consumer-build" >/dev/null
out=$("$work/consumer-build/consumer")
[ "$out" = "consumer: 3 messages handled" ] || { echo "cmake consumer printed: $out"; exit 1; }
out=$("$work/consumer-build/consumer_static")
[ "$out" = "consumer: 3 messages handled" ] || { echo "static consumer printed: $out"; exit 1; }

# 2. pkg-config, shared and static.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c11 -o "$work/consumer-pc" "$src_dir/consumer/consumer.c" \
    $(pkg-config --cflags --libs xoscar)
out=$("$work/consumer-pc")
[ "$out" = "consumer: 3 messages handled" ] || { echo "pkg-config consumer printed: $out"; exit 1; }
cc -std=c11 -o "$work/consumer-pc-static" "$src_dir/consumer/consumer.c" \
    $(pkg-config --cflags xoscar) "$libdir/libxoscar.a" \
    $(pkg-config --static --libs-only-l --libs-only-other xoscar | sed 's/-lxoscar//')
out=$("$work/consumer-pc-static")
[ "$out" = "consumer: 3 messages handled" ] || { echo "static pkg-config consumer printed: $out"; exit 1; }
echo "installed package links via CMake and pkg-config (shared and static)"
