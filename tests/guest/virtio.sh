#!/usr/bin/env bash
# Guest-level virtio test: boots the test guest with a virtio-blk disk, virtio-rng and a
# virtio-serial port, runs scripts/virtio_blk.sh inside, and checks both sides: the markers on the
# console and the effects on the host (the guest's write in the disk image, its bytes in the port's
# file).   virtio.sh LODGE ACCEL CPUS
set -uo pipefail
lodge=$1 accel=$2 cpus=$3
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

truncate -s 8M "$work/disk.img"
printf 'LODGE-DISK-MAGIC' | dd of="$work/disk.img" conv=notrunc status=none
out="$work/boot.log"
"$here/boot.sh" "$lodge" "$accel" "$cpus" virtio_blk \
    --drive "file=$work/disk.img,format=raw" --device virtio-rng \
    --virtio-port "name=org.lodge.test.0,chardev=file:$work/port.out" > "$out" 2>&1
rc=$?
cat "$out"
[ $rc -eq 77 ] && exit 77
fail=$rc
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
check "guest read the disk's first bytes" grep -qF "LODGE-VDA-HEAD=LODGE-DISK-MAGIC" "$out"
check "guest saw 16384 sectors" grep -qF "LODGE-VDA-SECTORS=16384" "$out"
check "guest write read back" grep -qF "LODGE-VIRTIO-BLK-RW-OK" "$out"
check "guest write reached the image" \
    test "$(dd if="$work/disk.img" bs=512 skip=1 count=1 status=none | head -c 16)" = \
    "LODGE-WRITE-TEST"
check "virtio-rng gave bytes" grep -qF "LODGE-VIRTIO-RNG-OK" "$out"
check "virtio-serial port bytes reached the host" grep -qF "LODGE-PORT-DATA" "$work/port.out"
exit $fail
