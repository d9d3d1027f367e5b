#!/usr/bin/env bash
# xoscar-top on a real terminal against a real process: examples/busy
# runs a runtime that publishes its snapshot; xoscar-top runs in a tmux
# pane of 200x50; the screen is read back with capture-pane. Every wait is
# a bounded poll of the screen (or of a file); nothing is timed.
#
#   check.sh BUSY XOSCAR_TOP WORKDIR
#
# Exits 77 (ctest: skipped) when tmux is not installed.
set -euo pipefail
busy=$1
top=$2
work=$3

if ! command -v tmux >/dev/null 2>&1; then
    echo "SKIPPED: tmux is not installed (tools/install-deps.sh --tests installs it)"
    exit 77
fi

rm -rf "$work"
mkdir -p "$work"
sock="xoscar-top-check-$$"
# Our own server, its own config: the user's tmux is left alone, and the
# terminal type is one every ncurses knows.
echo 'set -g default-terminal screen' >"$work/tmux.conf"
tmux_() { tmux -L "$sock" -f "$work/tmux.conf" "$@"; }

pids=()
cleanup() {
    tmux_ kill-server 2>/dev/null || true
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    # What a failed run leaves: the killed process's segment.
    [ -n "${stale_pid:-}" ] && rm -f "/dev/shm/xoscar-$stale_pid"
    rm -f "/dev/shm/xoscar-check-version-$$"
    # Sanitizer reports of the programs, for ctest to see.
    cat "$work"/*.err 2>/dev/null || true
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    if tmux_ has-session 2>/dev/null; then
        echo "--- the screen:"
        tmux_ capture-pane -p || true
    fi
    exit 1
}

# poll WHAT CMD...: until CMD succeeds, 60 s at most; at once if
# xoscar-top, which should be on the screen, has exited.
watching=0
poll() {
    local what=$1
    shift
    for _ in $(seq 1 600); do
        if "$@"; then return 0; fi
        if [ "$watching" = 1 ] && ! tmux_ has-session 2>/dev/null; then
            fail "$what: xoscar-top exited"
        fi
        sleep 0.1
    done
    fail "$what"
}

# Start busy (a child of this shell, so `wait` sees it end), and wait
# for its first line, which names its pid.
start_busy() { # start_busy NAME SECONDS
    "$busy" "$2" >"$work/$1.out" 2>"$work/$1.err" &
    started=$!
    pids+=("$started")
    poll "$1 printed its pid" grep -q '^busy: pid' "$work/$1.out"
    [ "$(sed -n 's/^busy: pid //p' "$work/$1.out")" = "$started" ] ||
        fail "$1 printed another pid than its own"
}

screen() { tmux_ capture-pane -p 2>/dev/null || true; }
# The first row of the actor table.
first_row() { screen | awk '/^DEFINITION/ { getline; print; exit }'; }
first_is() { first_row | grep -q "$1"; }
shows() { screen | grep -Eq "$1"; }
ended() { ! tmux_ has-session 2>/dev/null; }

start_busy busy 300
pid=$started
[ -e "/dev/shm/xoscar-$pid" ] || fail "no /dev/shm/xoscar-$pid while busy runs"

# 1. The screen, sorted by rate: the busiest first.
tmux_ new-session -d -x 200 -y 50 "$top $pid 2>$work/top.err"
watching=1
poll "the screen shows the header" shows "^xoscar-top +pid $pid +running"
poll "ingest-fast first when sorted by rate" first_is '^ingest  *ingest-fast '
shows 'sort: rate' || fail "the sort is not shown as rate"
for row in '^ingest +ingest-fast +0 ' '^ingest +ingest-medium +0 ' \
           '^audit +audit-log +0 ' '^report +report-backlog +1 ' \
           '^sink +- +0 '; do
    poll "a row matching '$row'" shows "$row"
done
poll "a busy bar for each pool" shows '^pool 1 .*\[#+\.*\] +[0-9.]+%'
order=$(screen | awk '/ingest-fast|ingest-medium|audit-log/ { print $2 }' | tr '\n' ' ')
[ "$order" = "ingest-fast ingest-medium audit-log " ] ||
    fail "rates out of order: $order"

# 2. d sorts by mailbox depth: the backlog first.
tmux_ send-keys d
poll "report-backlog first when sorted by depth" \
    first_is '^report  *report-backlog '
shows 'sort: depth' || fail "the sort is not shown as depth"

# 3. One plain frame, for scripts.
"$top" --once --sort d "$pid" >"$work/once.txt" 2>>"$work/top.err" ||
    fail "--once failed"
awk '/^DEFINITION/ { getline; print; exit }' "$work/once.txt" |
    grep -q '^report  *report-backlog ' || fail "--once --sort d: $(cat "$work/once.txt")"

# 4. q quits: the pane, and with it the session, ends.
watching=0
tmux_ send-keys q
poll "the pane ended after q" ended

# 5. A clean stop (SIGTERM) unlinks the segment.
kill -TERM "$pid"
wait "$pid" || fail "busy exited with status $?"
grep -q '^busy: stopped after' "$work/busy.out" || fail "busy did not stop its runtime"
[ ! -e "/dev/shm/xoscar-$pid" ] || fail "/dev/shm/xoscar-$pid is left after a clean stop"
if "$top" --once "$pid" >"$work/after.txt" 2>&1; then
    fail "--once found a snapshot of a stopped process"
fi
grep -q "no snapshot at /dev/shm/xoscar-$pid" "$work/after.txt" ||
    fail "no plain message for a missing snapshot: $(cat "$work/after.txt")"

# 6. A process killed outright leaves its segment; xoscar-top says the
#    process is gone.
start_busy killed 300
stale_pid=$started
kill -KILL "$stale_pid"
wait "$stale_pid" 2>/dev/null || true
"$top" --once "$stale_pid" >"$work/gone.txt" 2>&1 || true
grep -q "process $stale_pid is gone" "$work/gone.txt" ||
    fail "no word that the process is gone: $(cat "$work/gone.txt")"
rm -f "/dev/shm/xoscar-$stale_pid"

# 7. A snapshot of another format version is refused, plainly.
other="/dev/shm/xoscar-check-version-$$"
{ printf 'XOSCARTP\143\0\0\0\0\0\0\0'; head -c 4096 /dev/zero; } >"$other"
if "$top" --once --name "$(basename "$other")" >"$work/version.txt" 2>&1; then
    fail "--once read a snapshot of version 99"
fi
grep -q 'format version 99; this xoscar-top reads version 1' "$work/version.txt" ||
    fail "no plain message for another version: $(cat "$work/version.txt")"

echo "xoscar-top under tmux: rows, sort keys, --once, q, clean unlink, a gone process, another version"
