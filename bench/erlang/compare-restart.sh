#!/usr/bin/env bash
# compare-restart.sh [XOSCAR_BENCH] -- xoscar-bench's "restart" against the
# same benchmark on Erlang/OTP's supervisor (restart.erl), at 1e3 and 1e5
# restarts, 3 rounds each, the two alternating so they see the same machine.
# Builds nothing of xoscar's: pass the xoscar-bench to use (default below).
set -euo pipefail
bench=${1:-build/release/bench/xoscar-bench}
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v erl >/dev/null || ! command -v erlc >/dev/null; then
    echo "erlang not installed (apt-get install erlang-base): comparison skipped"
    exit 0
fi
[ -x "$bench" ] || { echo "$bench: not found; build xoscar-bench first" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
erlc -o "$tmp" "$here/restart.erl"   # compiled once, every round runs the same code

field() { sed -n "s/.*[ ,=]$1=\([0-9.]*\).*/\1/p" "$2"; }   # NAME=value of RESULT lines
median() { field "$1" "$2" | sort -g | sed -n 2p; }         # of the 3 rounds

for n in 1000 100000; do
    for round in 1 2 3; do
        "$bench" restart "$n" | grep '^RESULT' | tee -a "$tmp/xoscar.$n"
        erl -noshell -pa "$tmp" -run restart main "$n" -s init stop |
            grep '^RESULT' | tee -a "$tmp/erlang.$n"
    done
done

echo
printf '%-8s %14s %14s %10s %14s %14s\n' restarts xoscar/s erlang/s ratio \
    xoscar_us erlang_us
for n in 1000 100000; do
    xr=$(median rate "$tmp/xoscar.$n") er=$(median rate "$tmp/erlang.$n")
    xu=$(median us_per_restart "$tmp/xoscar.$n")
    eu=$(median us_per_restart "$tmp/erlang.$n")
    awk -v n="$n" -v xr="$xr" -v er="$er" -v xu="$xu" -v eu="$eu" 'BEGIN {
        printf "%-8d %14d %14d %9.1fx %14.3f %14.3f\n", n, xr, er, xr / er, xu, eu }'
done
for peer in xoscar erlang; do
    awk -v p="$peer" -v a="$(median us_per_restart "$tmp/$peer.1000")" \
        -v b="$(median us_per_restart "$tmp/$peer.100000")" 'BEGIN {
        printf "%s: us_per_restart 1e5/1e3 = %.2f\n", p, b / a }'
done
