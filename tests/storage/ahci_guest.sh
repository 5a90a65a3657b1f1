#!/usr/bin/env bash
# Guest-level AHCI test: boots the test guest with a SATA disk (--disk) and an ISO in a SATA
# CD-ROM drive (--cdrom), runs tests/guest/scripts/ahci.sh inside and checks both sides: the
# disk's size and first bytes as the guest saw them, its write in the image, and the checksum
# of a file the guest read from the mounted ISO.   ahci_guest.sh LODGE ACCEL CPUS
set -uo pipefail
lodge=$1 accel=$2 cpus=$3
here=$(cd "$(dirname "$0")" && pwd)
command -v xorriso >/dev/null || { echo "SKIP: xorriso missing (scripts/deps.sh)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

truncate -s 8M "$work/disk.img"
printf 'LODGE-DISK-MAGIC' | dd of="$work/disk.img" conv=notrunc status=none
mkdir "$work/iso"
head -c 300000 /dev/urandom > "$work/iso/payload.bin"
sum=$(md5sum "$work/iso/payload.bin" | cut -d' ' -f1)
xorriso -as mkisofs -quiet -r -V LODGECD -o "$work/cd.iso" "$work/iso" >/dev/null 2>&1 ||
    { echo "FAIL: xorriso could not build the ISO"; exit 1; }
out="$work/boot.log"
"$here/../guest/boot.sh" "$lodge" "$accel" "$cpus" ahci \
    --disk "$work/disk.img,format=raw" --cdrom "$work/cd.iso" > "$out" 2>&1
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
check "guest saw 16384 sectors on sda" grep -qF "LODGE-SDA-SECTORS=16384" "$out"
check "disk model is LODGE HARDDISK" grep -qF "LODGE-SDA-MODEL=LODGE HARDDISK" "$out"
check "guest read the disk's first bytes" grep -qF "LODGE-SDA-HEAD=LODGE-DISK-MAGIC" "$out"
check "guest write read back" grep -qF "LODGE-SDA-RW-OK" "$out"
check "guest write reached the image" \
    test "$(dd if="$work/disk.img" bs=512 skip=1 count=1 status=none | head -c 16)" = \
    "LODGE-AHCI-WRITE"
check "CD-ROM drive is ours" grep -qF "LODGE-SR0-MODEL=DVD-ROM" "$out"
check "file on the ISO has the right checksum" grep -qF "LODGE-CD-MD5=$sum" "$out"
check "libata needed no error handling" grep -qF "LODGE-ATA-EXCEPTIONS=0" "$out"
exit $fail
