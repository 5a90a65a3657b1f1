#!/usr/bin/env bash
# VM-level crash safety: ROUNDS times, boot the test guest on a qcow2 disk with
# scripts/virtio_crash.sh (64 KiB writes, each followed by fsync + sync + "FLUSHED N" on the
# console), SIGKILL `lodge run` at a random moment during the writes, then check the image with
# `qemu-img check` (outside checker, when installed; leaks are fine, corruption is not) and
# `lodge img check`, and read back every block whose FLUSHED marker appeared, in this round and
# all earlier ones: each must hold exactly what the guest wrote.
#   virtio_crash.sh LODGE ACCEL [ROUNDS]
set -uo pipefail
lodge=$1 accel=$2 rounds=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
if [ -z "${LODGE_GUEST_KERNEL:-}" ] || [ ! -f "${LODGE_GUEST_KERNEL:-}" ]; then
    env_file=$("$here/kit.sh") || { echo "SKIP: test guest kit unavailable"; exit 77; }
    # shellcheck disable=SC1090
    source "$env_file"
fi
if [ "$accel" = kvm ]; then
    echo "SKIP: this test boots Linux many times; run it on the soft engine"
    exit 77
fi
fail=0
bad() {
    echo "FAIL: $*"
    fail=1
}
disk="$work/disk.qcow2"
"$lodge" img create -f qcow2 "$disk" 96M >/dev/null || exit 1
for r in $(seq 1 "$rounds"); do
    log="$work/round$r.log"
    : > "$log"
    "$lodge" run --accel "$accel" --cpus 1 --mem 256M --kernel "$LODGE_GUEST_KERNEL" \
        --initrd "$LODGE_GUEST_INITRD" --serial "file:$log" --display none \
        --drive "file=$disk,format=qcow2" \
        --append "console=ttyS0 quiet lodge.test=virtio_crash lodge.round=$r" </dev/null \
        >"$work/run$r.err" 2>&1 &
    pid=$!
    # Wait for the writes to start (boot: ~30-60 s on the soft CPU), then let a random number of
    # them happen before the kill, so the kill lands anywhere in a write/flush cycle.
    t=0
    while ! grep -q "^FLUSHED 0" "$log" && kill -0 "$pid" 2>/dev/null && [ $t -lt 600 ]; do
        sleep 1
        t=$((t + 1))
    done
    if ! grep -q "^FLUSHED 0" "$log"; then
        bad "round $r: the guest never flushed a write"
        cat "$log" "$work/run$r.err"
        break
    fi
    delay=$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.5 + rand() * 12 }')
    sleep "$delay"
    if ! kill -KILL "$pid" 2>/dev/null; then
        bad "round $r: lodge run ended before the kill"
    fi
    wait "$pid" 2>/dev/null
    pid=""
    nflushed=$(grep -c "^FLUSHED " "$log")
    echo "round $r: killed after ${delay}s of writes, $nflushed flushed blocks"
    if command -v qemu-img >/dev/null; then
        qemu-img check "$disk" >"$work/qc" 2>&1
        rc=$?
        # 0 clean, 3 leaked clusters only (allowed after a crash); anything else is corruption.
        if [ $rc = 0 ] || [ $rc = 3 ]; then
            echo "ok: round $r: qemu-img check (status $rc)"
        else
            bad "round $r: qemu-img check status $rc"
            cat "$work/qc"
        fi
    fi
    "$lodge" img check "$disk" >"$work/lc" 2>&1
    rc=$?
    if [ $rc = 0 ] || [ $rc = 3 ]; then
        echo "ok: round $r: lodge img check (status $rc)"
    else
        bad "round $r: lodge img check status $rc"
        cat "$work/lc"
    fi
    # Read the whole disk through Lodge's image layer once, then compare every flushed block.
    "$lodge" img convert -O raw "$disk" "$work/flat.raw" >/dev/null 2>&1 ||
        bad "round $r: lodge img convert failed"
    lost=0
    for rr in $(seq 1 "$r"); do
        for n in $(sed -n 's/^FLUSHED \([0-9]*\).*/\1/p' "$work/round$rr.log" | sort -un); do
            want=$(yes "LODGE-CRASH-$rr-$n" | head -c 65536 | sha256sum)
            got=$(dd if="$work/flat.raw" bs=65536 skip=$((rr * 200 + n)) count=1 status=none |
                sha256sum)
            if [ "$want" != "$got" ]; then
                lost=$((lost + 1))
                [ $lost -le 5 ] && echo "lost: round $rr block $n"
            fi
        done
    done
    if [ $lost = 0 ]; then
        echo "ok: round $r: every flushed block of rounds 1..$r is intact"
    else
        bad "round $r: $lost flushed blocks lost or corrupted"
    fi
    rm -f "$work/flat.raw"
done
exit $fail
