#!/usr/bin/env bash
# Benchmark: the Debian kernel + test initramfs, direct boot to the init marker and power-off,
# `lodge run --accel soft` against `qemu-system-x86_64 -accel tcg` with the same kernel, initrd,
# memory and command line. Wall time of each (best of N runs), printed as a ratio Lodge/QEMU.
#   bench/boot/run.sh [LODGE] [RUNS]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
lodge=${1:-$top/build/lodge}
runs=${2:-3}
# shellcheck disable=SC1090
source "$("$top/tests/guest/kit.sh")"
append="console=ttyS0 quiet lodge.test=hello"

best() { # command... -> "WALL CPU" of the run with the best wall time over $runs runs (CPU:
    # user + system seconds of the process), requires LODGE-INIT-OK in output
    local b="" t out tf
    tf=$(mktemp)
    for _ in $(seq "$runs"); do
        out=$( { TIMEFORMAT='%R %U %S'; time "$@" 2>&1 </dev/null; } 2>"$tf" || true)
        if ! grep -q LODGE-INIT-OK <<<"$out"; then
            echo "bench: run did not reach the init marker: $*" >&2
            echo "$out" | tail -5 >&2
            rm -f "$tf"
            echo "nan nan"
            return
        fi
        t=$(tail -1 "$tf" | awk '{print $1, $2 + $3}')
        if [ -z "$b" ] || awk "BEGIN{exit !(${t%% *} < ${b%% *})}"; then b=$t; fi
    done
    rm -f "$tf"
    echo "$b"
}

command -v qemu-system-x86_64 >/dev/null || apt-get install -y -q qemu-system-x86 >/dev/null
l=$(best "$lodge" run --accel soft --mem 512M --kernel "$LODGE_GUEST_KERNEL" \
    --initrd "$LODGE_GUEST_INITRD" --append "$append" --serial stdio)
q=$(best qemu-system-x86_64 -accel tcg -m 512M -nographic -no-reboot -nodefaults -serial stdio \
    -kernel "$LODGE_GUEST_KERNEL" -initrd "$LODGE_GUEST_INITRD" -append "$append")
lw=${l%% *} lc=${l##* } qw=${q%% *} qc=${q##* }
printf 'boot to init + poweroff (best of %s): lodge soft %.2f s, qemu tcg %.2f s, ratio lodge/qemu %.2f; CPU %.2f s vs %.2f s, ratio %.2f (load %s)\n' \
    "$runs" "$lw" "$qw" "$(awk "BEGIN{print $lw / $qw}")" "$lc" "$qc" "$(awk "BEGIN{print $lc / $qc}")" \
    "$(cut -d' ' -f1 /proc/loadavg)"
