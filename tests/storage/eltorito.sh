#!/usr/bin/env bash
# Firmware boot from AHCI (joint proof with SeaBIOS): builds an El Torito no-emulation ISO
# around eltorito.asm and boots it with `lodge run --cdrom` (SeaBIOS is picked when only
# drives are given), then the -DDISK variant as the MBR of a `--disk` image; checks the boot
# image's markers on the debug port and its test-exit status.   eltorito.sh LODGE ACCEL
set -uo pipefail
lodge=$1 accel=$2
here=$(cd "$(dirname "$0")" && pwd)
for tool in xorriso nasm; do
    command -v $tool >/dev/null || { echo "SKIP: $tool missing (scripts/deps.sh)"; exit 77; }
done
[ -f /usr/share/seabios/bios.bin ] || { echo "SKIP: SeaBIOS missing"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/iso"
nasm -f bin -o "$work/iso/boot.img" "$here/eltorito.asm" || exit 1
printf 'not the boot image\n' > "$work/iso/readme.txt"
xorriso -as mkisofs -quiet -V LODGEBOOT -b boot.img -no-emul-boot -boot-load-size 4 \
    -o "$work/boot.iso" "$work/iso" >/dev/null 2>&1 || { echo "FAIL: xorriso"; exit 1; }
fail=0
boot() { # name, lodge drive args...
    local name=$1
    shift
    rm -f "$work/debug.log"
    timeout 300 "$lodge" run --accel "$accel" --mem 128M --serial none "$@" \
        --device test-exit --debugcon "file:$work/debug.log" </dev/null
    local rc=$?
    echo "--- $name: debug port ---"
    cat "$work/debug.log" 2>/dev/null
    echo "--- $name: lodge exit status $rc ---"
    for m in LODGE-ELTORITO-BOOT-OK LODGE-INT13-READ-OK; do
        if grep -qF "$m" "$work/debug.log" 2>/dev/null; then
            echo "ok: $name: saw $m"
        else
            echo "FAIL: $name: did not see $m"
            fail=1
        fi
    done
    if [ $rc -ne 33 ]; then
        echo "FAIL: $name: expected test-exit status 33, got $rc"
        fail=1
    fi
}
boot cdrom --cdrom "$work/boot.iso"
nasm -f bin -DDISK -o "$work/mbr.bin" "$here/eltorito.asm" || exit 1
truncate -s 4M "$work/disk.img"
dd if="$work/mbr.bin" of="$work/disk.img" conv=notrunc status=none
printf 'LODGE-LBA1' | dd of="$work/disk.img" bs=512 seek=1 conv=notrunc status=none
boot disk --disk "$work/disk.img,format=raw"
exit $fail
