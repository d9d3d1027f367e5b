#!/usr/bin/env bash
# run-cuda.sh SUITE -- the GPU suite on the CUDA backend, as ctest runs it.
# Each test checks for the devices it needs and skips, saying why, where
# they are not there; this says how many skipped, and reports the run as
# skipped (exit 77, which ctest counts apart) when no device was visible
# at all, so a machine without a GPU shows "Skipped", never a silent pass.
set -u
out=$("$1" 2>&1)
rc=$?
printf '%s\n' "$out"
skipped=$(printf '%s\n' "$out" | grep -c '^skipped: ' || true)
[ "$rc" -eq 0 ] || exit "$rc"
if [ "$skipped" -gt 0 ]; then
    why=$(printf '%s\n' "$out" | grep -m1 '^skipped: ' | sed 's/^skipped: //')
    echo "$(basename "$1"): $skipped CUDA test(s) skipped: $why"
    if printf '%s\n' "$out" | grep -q '^skipped: needs [0-9]* CUDA device(s), 0 visible'; then
        exit 77
    fi
fi
exit 0
