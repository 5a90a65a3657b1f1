#!/bin/bash
# Exit round-trip benchmark: Lodge vs QEMU, both on KVM, same firmware image.
#
# The image does N port writes (each a KVM_EXIT_IO to the VMM and back) and powers
# off. Each VMM runs it for two values of N; the difference of the wall times divided
# by the difference of N is the cost of one exit, with start-up and tear-down
# cancelled out. Best of REPS runs each.
#
# usage: bench/exit_roundtrip/run.sh [BUILD_DIR]     (default: build)
# env:   N1, N2 (exit counts, default 2000 and 20000), REPS (default 3)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
lodge=$build/lodge
N1=${N1:-2000}
N2=${N2:-20000}
REPS=${REPS:-3}
qemu=${QEMU:-qemu-system-x86_64}

for tool in nasm "$qemu"; do
    command -v "$tool" >/dev/null || { echo "exit_roundtrip: $tool not found" >&2; exit 1; }
done
[ -x "$lodge" ] || { echo "exit_roundtrip: $lodge not built" >&2; exit 1; }
[ -w /dev/kvm ] || { echo "exit_roundtrip: /dev/kvm not usable" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for n in "$N1" "$N2"; do
    nasm -f bin -DN="$n" -o "$tmp/fw$n.bin" "$here/guest.asm"
done

# best_time VAR EXPECTED_STATUS CMD...: best wall time in seconds over REPS runs;
# fails when the command does not end with EXPECTED_STATUS.
best_time() {
    local var=$1 want=$2 best="" t0 t1 dt rc
    shift 2
    for _ in $(seq "$REPS"); do
        t0=$(date +%s%N)
        set +e
        timeout 300 "$@" </dev/null >"$tmp/out" 2>&1
        rc=$?
        set -e
        t1=$(date +%s%N)
        if [ "$rc" != "$want" ]; then
            echo "exit_roundtrip: '$*' exited $rc, expected $want:" >&2
            tail -5 "$tmp/out" >&2
            return 1
        fi
        dt=$((t1 - t0))
        if [ -z "$best" ] || [ "$dt" -lt "$best" ]; then
            best=$dt
        fi
    done
    printf -v "$var" '%s' "$best"
}

lodge_cmd=("$lodge" run --accel kvm --bios)
# isa-debug-exit ends QEMU with status (value << 1) | 1: 0x3400 -> 1.
qemu_cmd=("$qemu" -accel kvm -display none -nodefaults -no-reboot
    -device isa-debug-exit,iobase=0x604,iosize=2 -bios)

per_exit_us() { # ns1 ns2 -> microseconds per exit
    awk -v a="$1" -v b="$2" -v n1="$N1" -v n2="$N2" \
        'BEGIN { printf "%.2f", (b - a) / (n2 - n1) / 1000 }'
}

echo "exit round trip: $N1 and $N2 port writes, best of $REPS"
lodge_ok=1
best_time l1 0 "${lodge_cmd[@]}" "$tmp/fw$N1.bin" &&
    best_time l2 0 "${lodge_cmd[@]}" "$tmp/fw$N2.bin" || lodge_ok=0
best_time q1 1 "${qemu_cmd[@]}" "$tmp/fw$N1.bin"
best_time q2 1 "${qemu_cmd[@]}" "$tmp/fw$N2.bin"

report() { # NAME NS1 NS2 US_PER_EXIT
    awk -v name="$1" -v a="$2" -v b="$3" -v us="$4" -v n1="$N1" -v n2="$N2" \
        'BEGIN { printf "%-6s N=%-6d %8.3f s   N=%-6d %8.3f s   %8s us/exit\n",
                 name, n1, a / 1e9, n2, b / 1e9, us }'
}

qus=$(per_exit_us "$q1" "$q2")
report qemu "$q1" "$q2" "$qus"
if [ "$lodge_ok" = 1 ]; then
    lus=$(per_exit_us "$l1" "$l2")
    report lodge "$l1" "$l2" "$lus"
    awk -v l="$lus" -v q="$qus" 'BEGIN { printf "ratio lodge/qemu per exit: %.2f\n", l / q }'
else
    echo "lodge: run failed (see above); no ratio"
    exit 1
fi
