#!/usr/bin/env bash
# Turn a results.json of bench/run-suite.sh into the results table and the
# chart, against the targets of docs/performance.md and the peers measured
# on the same kind of machine.
#
#   bench/report.sh RESULTS_JSON [OUT_DIR] [--readme README.md]
#
# OUT_DIR (default: beside RESULTS_JSON) gets table.md and, when gnuplot is
# there, chart.png. --readme replaces the README's table, between its
# "bench-results:begin" and "bench-results:end" markers, with table.md.
#
# Only awk and the shell: the JSON is the suite's own, one result object
# per line, numbers and plain words, so a field is found by its key.
set -euo pipefail

json= out= readme=
while [ $# -gt 0 ]; do
    case $1 in
        --readme) readme=${2:?--readme needs a file}; shift 2 ;;
        *) if [ -z "$json" ]; then json=$1; else out=$1; fi; shift ;;
    esac
done
[ -n "$json" ] || { echo "usage: report.sh RESULTS_JSON [OUT_DIR] [--readme FILE]" >&2; exit 2; }
out=${out:-$(dirname "$json")}
mkdir -p "$out"

# name | unit | target | CAF 0.17 | Erlang/OTP 25 (rates in ops/s). spawn's
# memory targets and peers are in the awk below.
peers='pingpong|round trips/s|10e6|0.92e6|2.3e6
threadring|hops/s|25e6|2.1e6|5.0e6
fanin|messages/s|25e6|4.0e6|4.9e6
forkjoin|messages/s|30e6|3.9e6|5.5e6
spawn|actors/s|3e6|356e3|204e3
spawn_burst|actors/s|3e6|10e3|363e3
counting|messages/s|50e6|6.0e6|12.4e6
restart|restarts/s|600e3|0|60e3
remote_pingpong|round trips/s|0|0|20e3
remote_tell|messages/s|2e6|0|210e3'

# restart's target is ten times OTP's supervisor in the same sitting
# (bench/erlang, docs/performance.md "Restarts"); CAF has no figure (0: -).
# remote_pingpong's target is not a rate: its p50 within 2x the TCP round
# trip of the same run, and a call from an actor under 30 us; remote_tell's
# is ten times Erlang distribution's 210 k messages/s (docs/net.md). The
# Erlang figures are OTP 25's distribution on the same machine.

# The awk program takes the peers from the environment and reads the
# results; it writes the markdown table to stdout and the chart's data
# files to $out.
SLOW=${XO_BENCH_SLOW_LINE_NS:-80} PEERS=$peers awk -v out="$out" '
function field(line, key,    at, rest) {
    at = index(line, "\"" key "\":")
    if (at == 0)
        return ""
    rest = substr(line, at + length(key) + 3)
    sub(/^ +/, "", rest)
    if (substr(rest, 1, 1) == "\"") {
        rest = substr(rest, 2)
        return substr(rest, 1, index(rest, "\"") - 1)
    }
    match(rest, /^[^,}]*/)
    return substr(rest, 1, RLENGTH)
}
function human(v) {
    v += 0
    if (v >= 1e6) return sprintf("%.2f M", v / 1e6)
    if (v >= 1e3) return sprintf("%.0f k", v / 1e3)
    return sprintf("%.0f", v)
}
function ns(v) {
    if (v == "") return "-"
    v += 0
    if (v >= 1e6) return sprintf("%.2f ms", v / 1e6)
    if (v >= 1e3) return sprintf("%.1f us", v / 1e3)
    return sprintf("%.0f ns", v)
}
function mark(ok) { return ok ? "met" : "**missed**" }
BEGIN {
    n = split(ENVIRON["PEERS"], rows, "\n")
    for (i = 1; i <= n; i++) {
        split(rows[i], f, "|")
        order[i] = f[1]; unit[f[1]] = f[2]
        target[f[1]] = f[3] + 0; caf[f[1]] = f[4] + 0; erl[f[1]] = f[5] + 0
    }
    npeers = n
}
/^ *"(machine|date|command|commit)":/ {
    key = $0; sub(/^ *"/, "", key); sub(/".*/, "", key)
    meta[key] = field($0, key)
    next
}
/"name":/ {
    name = field($0, "name")
    line[name] = $0
    rate[name] = field($0, "rate") + 0
}
END {
    runs = field(line["pingpong"], "runs")
    printf "Measured on %s, %s, with `%s` (commit %s)%s.\n\n", \
        meta["machine"], meta["date"], meta["command"], meta["commit"], \
        (runs > 1 ? ": each figure is the median of " runs " runs" : "")
    print "| benchmark | xoscar | target | met | CAF 0.17 | Erlang/OTP 25 | detail |"
    print "| --- | --: | --: | --- | --: | --: | --- |"
    rates = out "/chart-rates.dat"
    print "# name xoscar target caf erlang (M ops/s)" > rates
    for (i = 1; i <= npeers; i++) {
        b = order[i]
        if (!(b in line))
            continue
        ok = rate[b] >= target[b]
        t = human(target[b]); e = human(erl[b])
        c = caf[b] > 0 ? human(caf[b]) : "-"
        x = human(rate[b])
        detail = ""
        if (b == "pingpong") {
            detail = field(line[b], "ns_per_rt") " ns per round trip"
            t = t ", apart <= 2.5x line"
            if (field(line[b], "vs_line") != "") {
                detail = detail "; fixed on two cores " \
                    field(line[b], "apart_ns_per_rt") " ns, " \
                    field(line[b], "vs_line") "x the line round trip of " \
                    field(line[b], "line_rt_ns") " ns"
                ok = ok && field(line[b], "vs_line") + 0 <= 2.5
            } else {
                ok = 0  # the apart half of the target was not measured
            }
        } else if (b == "threadring") {
            detail = field(line[b], "ns_per_hop") " ns per hop"
        } else if (b == "remote_pingpong") {
            p50 = field(line[b], "p50_ns"); tcp = field(line[b], "tcp_rt_ns")
            call = field(line[b], "call_p50_ns")
            t = "p50 <= 2x TCP, call < 30 us"
            ok = tcp != "" && field(line[b], "vs_tcp") + 0 <= 2 && \
                 call != "" && call + 0 < 30000
            detail = "p50 " ns(p50) ", " field(line[b], "vs_tcp") \
                "x the TCP round trip of the run (" ns(tcp) "), p99 " \
                ns(field(line[b], "p99_ns")) "; a call from an actor p50 " \
                ns(call)
        } else if (b == "remote_tell") {
            detail = field(line[b], "bytes") "-byte messages, " \
                field(line[b], "MiB_per_s") " MiB/s, receiver peak RSS " \
                int(field(line[b], "peer_peak_rss_kib") / 1024) " MiB"
        } else if (b == "restart") {
            detail = field(line[b], "us_per_restart") " us per restart"
            t = t " (10x OTP)"
        } else if (b ~ /^spawn/) {
            bytes = field(line[b], "bytes_per_actor") + 0
            if (b == "spawn") {
                ok = ok && bytes <= 256
                x = x ", " bytes " B"; t = t ", 256 B"
                c = c ", 1230 B"; e = e ", 2740 B"
            }
            detail = bytes " B per actor"
        }
        if (detail != "")
            detail = detail ", "
        detail = detail "peak RSS " int(field(line[b], "peak_rss_kib") / 1024) " MiB"
        lrt = field(line[b], "line_rt_ns")
        if (lrt != "" && b != "pingpong") {
            detail = detail ", line " lrt " ns"
        }
        if (lrt != "") {
            nstate++
            if (field(line[b], "machine") == "slow") nslow++
            if (lmin == "" || lrt + 0 < lmin + 0) lmin = lrt
            if (lmax == "" || lrt + 0 > lmax + 0) lmax = lrt
        }
        printf "| %s (%s) | %s | %s | %s | %s | %s | %s |\n", \
            b, unit[b], x, t, mark(ok), c, e, detail
        printf "%s %g %g %g %g\n", b, rate[b] / 1e6, target[b] / 1e6, \
            caf[b] / 1e6, erl[b] / 1e6 > rates
    }
    close(rates)
    if ("latency" in line) {
        l = line["latency"]
        print ""
        print "| one message, tell to handler | p50 | p99 | p99.9 |"
        print "| --- | --: | --: | --: |"
        lat = out "/chart-latency.dat"
        print "# phase p50 p99 p999 (ns)" > lat
        split("within across wake", ph, " ")
        split("within a pool|across pools|to a parked worker", label, "|")
        for (i = 1; i <= 3; i++) {
            p50 = field(l, ph[i] "_p50_ns"); p99 = field(l, ph[i] "_p99_ns")
            p999 = field(l, ph[i] "_p999_ns")
            printf "| %s | %s | %s | %s |\n", label[i], ns(p50), ns(p99), ns(p999)
            printf "%s %s %s %s\n", ph[i], p50, p99, p999 > lat
        }
        close(lat)
    }
    if ("hw" in line) {
        h = line["hw"]
        printf "\nThe floor of the machine, measured in the same run (`hw`): the round trip of a cache line between two cores %s ns, an atomic exchange %s ns, a futex wake until the sleeper runs %s, a clock read %s ns, a 64-byte TCP round trip on loopback %s.\n", \
            field(h, "line_rt_ns"), field(h, "xchg_ns"), \
            ns(field(h, "futex_wake_ns")), field(h, "clock_ns"), \
            ns(field(h, "tcp_rt_ns"))
        print field(h, "line_rt_ns") > (out "/chart-line.dat")
        close(out "/chart-line.dat")
    }
    if (nstate > 0) {
        printf "\nThe line round trip measured just before each benchmark (\"line\" above) ranged from %s to %s ns: the machine was in its %s.\n", \
            lmin, lmax, \
            (nslow == 0 ? "usual state throughout" : \
             nslow == nstate ? "slow cross-core state throughout (over " ENVIRON["SLOW"] " ns)" : \
             "slow cross-core state (over " ENVIRON["SLOW"] " ns) for " nslow " of " nstate " benchmarks")
    }
}' "$json" >"$out/table.md"

chart() {
    local title
    title=$(awk -F'"' '/"machine":/ { m = $4 } /"date":/ { d = $4 } END { print m ", " d }' "$json")
    local line_one_way
    line_one_way=$(awk '{ print $1 / 2 }' "$out/chart-line.dat" 2>/dev/null || echo 0)
    gnuplot <<EOF
set terminal pngcairo size 1200,1000 font ",10" noenhanced
set output '$out/chart.png'
set multiplot layout 2,1 title "xoscar-bench: $title"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set grid ytics
set key outside right top
set yrange [0.005:*]
set ylabel "million operations per second (log scale)"
set title "Throughput against the targets and the peers"
plot '$out/chart-rates.dat' using 2:xtic(1) title 'xoscar', \
     '' using 3 title 'target', '' using 4 title 'CAF 0.17', \
     '' using 5 title 'Erlang/OTP 25'
set yrange [10:*]
set ylabel "nanoseconds (log scale)"
set title "One message, tell to handler: percentiles (line: half the cache-line round trip)"
plot '$out/chart-latency.dat' using 2:xtic(1) title 'p50', \
     '' using 3 title 'p99', '' using 4 title 'p99.9', \
     ($line_one_way > 0 ? $line_one_way : 1/0) with lines lw 2 title 'one cache-line transfer'
unset multiplot
EOF
}

if command -v gnuplot >/dev/null 2>&1 && [ -s "$out/chart-rates.dat" ] &&
   [ -s "$out/chart-latency.dat" ]; then
    chart
else
    echo "report: no gnuplot (or no data): chart.png not drawn" >&2
fi

if [ -n "$readme" ]; then
    grep -q 'bench-results:begin' "$readme" ||
        { echo "report: no bench-results markers in $readme" >&2; exit 1; }
    awk -v table="$out/table.md" '
        /bench-results:begin/ { print; print ""
            while ((getline l < table) > 0) print l
            print ""; skip = 1; next }
        /bench-results:end/ { skip = 0 }
        !skip { print }' "$readme" >"$readme.tmp"
    mv "$readme.tmp" "$readme"
fi
