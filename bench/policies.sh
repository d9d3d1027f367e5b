#!/usr/bin/env bash
# Every benchmark under each scheduling policy, in one sitting: the table
# behind the default of docs/scheduler.md ("Locality").
#
#   bench/policies.sh [-r RUNS] [XOSCAR_BENCH]
#
# Policies (xoscar-bench flags):
#   fixed        --move fixed          every actor on its home pool's worker
#                                      (the default before locality)
#   local        --no-steal            movable: runs where a send woke it,
#                                      no stealing
#   steal-0      --steal-wait-ns 0     movable, an idle worker takes queued
#                                      actors at once
#   steal-20     --steal-wait-ns 20000 movable, taken after 20 us
#   default      (none)                movable, taken after 200 us of waiting
#   one          --placement one       every actor in pool 0: the best a
#                                      placement that learned which actors
#                                      talk could do for a sequential graph
# For each benchmark the policies run one after the other (RUNS runs each,
# default 3, the median kept), and `hw` measures the line round trip
# before each benchmark, so that the columns of a row share a machine
# state. Prints a markdown table of rates (M ops/s; call: actor to actor;
# fanout: its parallelism, the cores' worth of jobs run at once; latency:
# p50 ns within a pool / across pools).
set -euo pipefail

runs=3
while getopts r: o; do
    case $o in
        r) runs=$OPTARG ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
bin=${1:-build/release/bench/xoscar-bench}

names=(fixed local steal-0 steal-20 default one)
flags=("--move fixed" "--no-steal" "--steal-wait-ns 0" \
       "--steal-wait-ns 20000" "" "--placement one")
benches=("pingpong" "threadring" "fanin" "forkjoin" "counting" "spawn" \
         "spawn_burst" "fanout" "fanout 20000 5 16" "call" \
         "latency 300000 300")

field() { sed 's/ extra=/ /' | tr ' ,' '\n\n' | awk -F= -v k="$1" '$1 == k { print $2; exit }'; }

printf '| benchmark | line rt (ns) |'
printf ' %s |' "${names[@]}"
printf '\n| --- | --: |'
for _ in "${names[@]}"; do printf ' --: |'; done
printf '\n'
for spec in "${benches[@]}"; do
    name=${spec%% *}
    line=$("$bin" hw 200000 | field line_rt_ns)
    printf '| %s | %s |' "$spec" "$line"
    for i in "${!names[@]}"; do
        # shellcheck disable=SC2086 # the flags and the spec are word lists
        out=$("$bin" --runs "$runs" ${flags[$i]} $spec 2>/dev/null |
              grep '^RESULT') || out=
        if [ -z "$out" ]; then
            printf ' FAILED |'
        elif [ "$name" = latency ]; then
            printf ' %s / %s |' "$(field within_p50_ns <<<"$out")" \
                "$(field across_p50_ns <<<"$out")"
        elif [ "$name" = fanout ]; then
            printf ' %s |' "$(field parallelism <<<"$out")"
        elif [ "$name" = call ]; then
            printf ' %s |' "$(field actor_rate <<<"$out" |
                              awk '{ printf "%.2f", $1 / 1e6 }')"
        else
            printf ' %s |' "$(field rate <<<"$out" |
                              awk '{ printf "%.2f", $1 / 1e6 }')"
        fi
    done
    printf '\n'
done
