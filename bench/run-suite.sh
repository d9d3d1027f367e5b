#!/usr/bin/env bash
# Run the whole benchmark suite and keep what it measured: `make bench`.
#
#   bench/run-suite.sh XOSCAR_BENCH OUT_DIR [RUNS] [--table]
#
# Every benchmark runs RUNS times (default 3, each in its own process) and
# the run with the median rate is kept. --table ends with the results
# table, each benchmark against its target (`make run`). OUT_DIR gets:
#   results.txt   the RESULT lines, as printed
#   results.json  the same as JSON, with the machine, date and command
#   table.md      the README's results table (bench/report.sh)
#   chart.png     rates against targets and peers, latency percentiles
set -euo pipefail

bin=${1:?usage: run-suite.sh XOSCAR_BENCH OUT_DIR [RUNS]}
out=${2:?usage: run-suite.sh XOSCAR_BENCH OUT_DIR [RUNS]}
runs=${3:-3}
table=${4:-}
here=$(cd "$(dirname "$0")" && pwd)

mkdir -p "$out"
rm -f "$out/results.jsonl"

# One line that says what ran where.
machine() {
    local model cpus kernel
    model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    cpus=$(nproc)
    kernel=$(uname -sr)
    if grep -q '^flags.* hypervisor' /proc/cpuinfo; then
        model="$model (virtual machine)"
    fi
    echo "${model:-unknown CPU}, $cpus CPUs, $kernel"
}

status=0
"$bin" all --runs "$runs" --json-file "$out/results.jsonl" |
    tee "$out/results.txt" || status=$?

# JSON text needs its quotes and backslashes escaped.
json_string() {
    local s=${1//\\/\\\\}
    printf '"%s"' "${s//\"/\\\"}"
}

commit=$(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown)
{
    printf '{\n'
    printf '  "machine": %s,\n' "$(json_string "$(machine)")"
    printf '  "date": %s,\n' "$(json_string "$(date -u +%Y-%m-%d)")"
    printf '  "command": %s,\n' \
        "$(json_string "xoscar-bench all --runs $runs")"
    printf '  "commit": %s,\n' "$(json_string "$commit")"
    printf '  "results": [\n'
    sed -e 's/^/    /' -e '$!s/$/,/' "$out/results.jsonl"
    printf '  ]\n}\n'
} >"$out/results.json"
rm -f "$out/results.jsonl"

bash "$here/report.sh" "$out/results.json" "$out"
if [ "$table" = "--table" ]; then
    echo
    cat "$out/table.md"
    echo
fi
echo "results: $out/results.txt $out/results.json"
echo "table:   $out/table.md (bash bench/report.sh $out/results.json" \
     "--readme README.md puts it in the README)"
[ -f "$out/chart.png" ] && echo "chart:   $out/chart.png"
exit "$status"
