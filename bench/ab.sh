#!/usr/bin/env bash
# Compare two builds of xoscar-bench on the same benchmarks in one sitting,
# alternated so that the machine's drift falls on both alike.
#
#   bench/ab.sh [-r ROUNDS] [-f FLAGS] BENCH_A BENCH_B "NAME ARGS" ...
#
# Each round runs every benchmark once with A and once with B, the order
# of the two swapped from one round to the next (A B, B A, ...). It prints
# per benchmark: the median rate of each side, B/A of the medians, and the
# lowest and highest B/A of one round's pair (how far one pair can be
# trusted), with the median line round trip measured beside the runs
# (xoscar-bench's line_rt_ns: the machine's state). ROUNDS defaults to 7;
# FLAGS go to both sides (e.g. "--pools 2").
#
# Example, the cost of the stats (docs/performance.md, "The cost of the
# stats"):
#   cmake -S . -B build/nostats -DCMAKE_BUILD_TYPE=Release -DXO_STATS=OFF
#   cmake --build build/nostats --target xoscar-bench
#   bash bench/ab.sh build/nostats/bench/xoscar-bench \
#       build/release/bench/xoscar-bench "counting 1e7" "threadring 1e7 1000"
set -euo pipefail

rounds=7 flags=
while getopts r:f: o; do
    case $o in
        r) rounds=$OPTARG ;;
        f) flags=$OPTARG ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 3 ] || { echo "usage: ab.sh [-r ROUNDS] [-f FLAGS] BENCH_A BENCH_B \"NAME ARGS\" ..." >&2; exit 2; }
a=$1 b=$2
shift 2

# The rate and line round trip of one run: "RATE LINE".
one() {
    local out
    # shellcheck disable=SC2086 # flags and the spec are word lists
    out=$("$1" $flags $2 2>/dev/null | grep '^RESULT') || {
        echo "ab: $1 $2 failed" >&2
        exit 1
    }
    awk '{
        for (i = 1; i <= NF; i++) if ($i ~ /^rate=/) r = substr($i, 6)
        l = "-"; if (match($0, /line_rt_ns=[0-9.]+/)) l = substr($0, RSTART + 11, RLENGTH - 11)
        print r, l
    }' <<<"$out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '| benchmark | A (median) | B (median) | B/A | pair B/A, min-max | line rt (median ns) |\n'
printf '| --- | --: | --: | --: | --: | --: |\n'
for spec in "$@"; do
    ra=() rb=() pairs=() lines=()
    for ((k = 0; k < rounds; k++)); do
        if ((k % 2 == 0)); then
            read -r x lx < <(one "$a" "$spec"); read -r y ly < <(one "$b" "$spec")
        else
            read -r y ly < <(one "$b" "$spec"); read -r x lx < <(one "$a" "$spec")
        fi
        ra+=("$x") rb+=("$y") lines+=("$lx" "$ly")
        pairs+=("$(awk -v x="$x" -v y="$y" 'BEGIN { printf "%.4f", y / x }')")
    done
    ma=$(printf '%s\n' "${ra[@]}" | median)
    mb=$(printf '%s\n' "${rb[@]}" | median)
    ml=$(printf '%s\n' "${lines[@]}" | grep -v '^-$' | median || true)
    lo=$(printf '%s\n' "${pairs[@]}" | sort -g | head -n1)
    hi=$(printf '%s\n' "${pairs[@]}" | sort -g | tail -n1)
    awk -v s="$spec" -v a="$ma" -v b="$mb" -v lo="$lo" -v hi="$hi" -v l="${ml:--}" \
        'BEGIN { printf "| %s | %.3g | %.3g | %.3f | %.3f-%.3f | %s |\n", s, a, b, b / a, lo, hi, l }'
done
