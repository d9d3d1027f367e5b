#!/usr/bin/env bash
# The README's "Using it from your project", word for word, into a scratch
# prefix: install, then build a program against it as a CMake project
# (find_package + xoscar::xoscar, and the static target) and with
# pkg-config (shared and static), and build and run the README's own
# examples the same way. No LD_LIBRARY_PATH: an installed program must find
# libxoscar.so by itself.
set -euo pipefail
build_dir=$1
work=$2
src_dir=$(cd "$(dirname "$0")" && pwd)
readme="$src_dir/../../README.md"
cmake_cmd=${CMAKE_COMMAND:-cmake}
unset LD_LIBRARY_PATH

rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"
"$cmake_cmd" --install "$build_dir" --prefix "$prefix" >/dev/null

expect() { # expect WHAT EXPECTED ACTUAL
    [ "$3" = "$2" ] || { echo "$1 printed: $3 (expected: $2)"; exit 1; }
}

# 1. CMake package, with CMAKE_PREFIX_PATH as the README says.
"$cmake_cmd" -S "$src_dir/consumer" -B "$work/consumer-build" \
    -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
"$cmake_cmd" --build "$work/consumer-build" >/dev/null
expect "cmake consumer" "consumer: 3 messages handled" \
    "$("$work/consumer-build/consumer")"
expect "static cmake consumer" "consumer: 3 messages handled" \
    "$("$work/consumer-build/consumer_static")"

# 2. pkg-config, with PKG_CONFIG_PATH as the README says.
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cc -std=c11 -o "$work/consumer-pc" "$src_dir/consumer/consumer.c" \
    $(pkg-config --cflags --libs xoscar)
expect "pkg-config consumer" "consumer: 3 messages handled" \
    "$("$work/consumer-pc")"
cc -std=c11 -o "$work/consumer-pc-static" "$src_dir/consumer/consumer.c" \
    $(pkg-config --cflags xoscar) "$prefix/lib/libxoscar.a" \
    $(pkg-config --static --libs-only-l --libs-only-other xoscar | sed 's/-lxoscar//')
expect "static pkg-config consumer" "consumer: 3 messages handled" \
    "$("$work/consumer-pc-static")"

# 3. The README's complete programs (the ```c blocks with a main), built
#    the same way: the code people copy compiles, runs and says what the
#    README says it does.
awk -v dir="$work" '
    /^```c$/ { n++; file = dir "/readme-" n ".c"; inblock = 1; next }
    /^```$/  { inblock = 0; next }
    inblock  { print > file }
' "$readme"
programs=0
for f in "$work"/readme-*.c; do
    grep -q 'int main' "$f" || continue
    programs=$((programs + 1))
    cc -std=c11 -Wall -Wextra -Werror -o "${f%.c}" "$f" \
        $(pkg-config --cflags --libs xoscar)
    out=$("${f%.c}")
    case "$out" in
    *"greeter #2: again"*) ;;
    *"total = 100"*"failed: cannot add -1 (EINVAL)"*) ;;
    *) echo "README program $(basename "$f") printed: $out"; exit 1 ;;
    esac
done
[ "$programs" -eq 2 ] || { echo "expected 2 README programs, found $programs"; exit 1; }
echo "installed package links via CMake and pkg-config (shared and static); the README's programs run"
