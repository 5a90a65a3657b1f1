#!/usr/bin/env bash
# Guest-level qcow2 overlay test: a qcow2 base filled with imgio's pattern, a qcow2 overlay on it
# (lodge img create -b), the guest writes 4 MiB through the overlay (scripts/virtio_overlay.sh).
# After power-off: the base file is byte-for-byte unchanged, the overlay read through Lodge's image
# layer (imgio) holds the guest's pattern where it wrote and the base's bytes elsewhere, and
# `qemu-img check` (the outside checker, when installed) and `lodge img check` find both clean.
#   virtio_qcow2.sh LODGE IMGIO ACCEL CPUS
set -uo pipefail
lodge=$1 imgio=$2 accel=$3 cpus=$4
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
check() { # what, command...
    local what=$1
    shift
    if "$@"; then
        echo "ok: $what"
    else
        echo "FAIL: $what"
        fail=1
    fi
}
size=$((16 << 20)) wr_off=$((1 << 20)) wr_len=$((4 << 20))
"$lodge" img create -f qcow2 "$work/base.qcow2" 16M >/dev/null || exit 1
"$imgio" "$work/base.qcow2" write 0 $size 7 || exit 1
"$lodge" img create -f qcow2 -b "$work/base.qcow2" "$work/ovl.qcow2" >/dev/null || exit 1
base_sum=$(sha256sum < "$work/base.qcow2")

out="$work/boot.log"
"$here/boot.sh" "$lodge" "$accel" "$cpus" virtio_overlay \
    --drive "file=$work/ovl.qcow2,format=qcow2" > "$out" 2>&1
rc=$?
cat "$out"
[ $rc -eq 77 ] && exit 77
[ $rc -eq 0 ] || fail=1

want=$(yes LODGE-OVERLAY-PATTERN | head -c $wr_len | sha256sum | cut -d' ' -f1)
head_sum=$("$imgio" "$work/base.qcow2" dump 0 $wr_off | sha256sum | cut -d' ' -f1)
check "guest wrote and read back through the overlay" grep -qF "LODGE-OVL-RW-OK" "$out"
check "guest read the base's bytes through the overlay" \
    grep -qF "LODGE-OVL-BASE-HEAD=$head_sum" "$out"
check "guest checksum is the host's" grep -qF "LODGE-OVL-SUM=$want" "$out"
check "base file unchanged" test "$(sha256sum < "$work/base.qcow2")" = "$base_sum"
check "base still holds its pattern" "$imgio" "$work/base.qcow2" read 0 $size 7
check "overlay holds the guest's pattern (host checksum after power-off)" \
    test "$("$imgio" "$work/ovl.qcow2" dump $wr_off $wr_len | sha256sum | cut -d' ' -f1)" = "$want"
check "overlay shows the base below the write" "$imgio" "$work/ovl.qcow2" read 0 $wr_off 7
check "overlay shows the base above the write" \
    "$imgio" "$work/ovl.qcow2" read $((wr_off + wr_len)) $((size - wr_off - wr_len)) 7
check "guest data went to the overlay, not the base (overlay allocated clusters)" \
    test "$(stat -c %s "$work/ovl.qcow2")" -gt $wr_len
for f in base ovl; do
    check "lodge img check $f.qcow2" "$lodge" img check "$work/$f.qcow2"
    if command -v qemu-img >/dev/null; then
        check "qemu-img check $f.qcow2" qemu-img check "$work/$f.qcow2"
    fi
done
if command -v qemu-img >/dev/null; then
    check "qemu-img reads the guest's pattern through the chain" \
        sh -c "qemu-img convert -O raw '$work/ovl.qcow2' '$work/ovl.raw' &&
            test \"\$(dd if='$work/ovl.raw' bs=1M skip=1 count=4 status=none | sha256sum |
                cut -d' ' -f1)\" = $want"
fi
exit $fail
