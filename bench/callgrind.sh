#!/usr/bin/env bash
# Instructions per operation of one benchmark, deterministic: the
# callgrind count of a run of 2N operations minus that of N, divided by N
# (start and stop cancel), on one worker that does not spin.
#
#   bench/callgrind.sh BENCH NAME N [ARGS after N]
#
# Example (docs/performance.md, "Observability: the cost of the stats"):
#   bash bench/callgrind.sh build/release/bench/xoscar-bench pingpong 50000
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: callgrind.sh BENCH NAME N [ARGS]" >&2; exit 2; }
bench=$1 name=$2 n=$3
shift 3
rest=("$@")
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 2; }
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$bench" --pools 1 --spin-ns 0 "$name" "$1" "${rest[@]}" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
a=$(count "$n")
b=$(count $((2 * n)) "$@")
echo "$name $(((b - a) / n))"
