#!/bin/sh
# Firmware boots on the soft CPU with Debian's packaged firmware:
#   seabios: SeaBIOS reaches "No bootable device" with the machine it should see in its
#            debug log (fw_cfg, RAM from etc/e820, CPU count, our PCI functions, the VGA
#            BIOS run) and its banner readable as text on the VGA screen;
#   ovmf:    OVMF reaches the UEFI shell prompt on the serial console;
#   linux:   --kernel through SeaBIOS's linuxboot option ROM reaches the test initramfs
#            marker (tests/guest/kit.sh) and powers off through ACPI;
#   disk:    --drive alone implies --firmware bios; SeaBIOS boots the boot sector of a
#            virtio-blk disk listed in bootorder (--boot disk).
# usage: fw_boot.sh LODGE seabios|ovmf|linux|disk
set -u
LODGE=$1 WHAT=$2
T=$(mktemp -d /tmp/lodge-fw.XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
fails=0
fail() { echo "FAIL: $WHAT: $*"; fails=$((fails + 1)); }

# wait_for FILE TEXT SECONDS: poll until FILE contains TEXT or the run ends.
wait_for() {
    i=0
    while [ "$i" -lt "$3" ]; do
        if grep -aq "$2" "$1" 2>/dev/null; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 1
        i=$((i + 1))
    done
    grep -aq "$2" "$1" 2>/dev/null
}

# stop: end the run with SIGTERM (the VGA dump is written on the way out)
stop() {
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
}

case "$WHAT" in
seabios)
    [ -r /usr/share/seabios/bios.bin ] || { echo "skipped: apt-get install seabios"; exit 77; }
    "$LODGE" run --accel soft --firmware bios --mem 128M --serial none \
        --debugcon "file:$T/fw.log,iobase=0x402" --vga-dump "$T/vga.txt" 2>"$T/err" &
    pid=$!
    wait_for "$T/fw.log" "No bootable device" 120 || fail "no 'No bootable device' in the log"
    stop
    for want in "Found QEMU fw_cfg" "QEMU fw_cfg DMA interface supported" \
        "qemu/e820: addr 0x0000000000000000 len 0x0000000008000000 \[RAM\]" \
        "Found 1 cpu(s) max supported 1 cpu(s)" \
        "PCI: init bdf=00:01.0 id=8086:7000" "PCI: init bdf=00:01.3 id=8086:7113" \
        "PCI: init bdf=00:02.0 id=1234:1111" "Using pmtimer, ioport 0x608" \
        "Running option rom at c000:0003" "Start SeaVGABIOS" "VBE DISPI: bdf 00:02.0, bar 0"; do
        grep -aq "$want" "$T/fw.log" || fail "debug log lacks '$want'"
    done
    grep -q "^SeaBIOS (version" "$T/vga.txt" 2>/dev/null || fail "VGA text lacks the banner"
    grep -q "No bootable device" "$T/vga.txt" 2>/dev/null || fail "VGA text lacks the boot failure"
    ;;
ovmf)
    [ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] || { echo "skipped: apt-get install ovmf"; exit 77; }
    # Twice with the same NVRAM file: created from the template, written by OVMF through
    # the CFI flash, then booted from again.
    for run in 1 2; do
        : >"$T/com1"
        "$LODGE" run --accel soft --firmware uefi --mem 256M --serial "file:$T/com1" \
            --uefi-vars "$T/vars.fd" --vga-dump "$T/screen.ppm" 2>"$T/err" &
        pid=$!
        wait_for "$T/com1" "Shell> " 240 || fail "run $run: no UEFI shell prompt on the serial console"
        stop
        grep -aq "UEFI Interactive Shell" "$T/com1" || fail "run $run: no shell banner"
        head -c 2 "$T/screen.ppm" 2>/dev/null | grep -q P6 || fail "run $run: no VBE screen dump"
        if [ "$run" = 1 ]; then
            cmp -s "$T/vars.fd" /usr/share/OVMF/OVMF_VARS_4M.fd &&
                fail "the NVRAM file was not written"
            strings -el "$T/vars.fd" | grep -q BootOrder || fail "no BootOrder variable stored"
        fi
    done
    ;;
linux)
    [ -r /usr/share/qemu/linuxboot_dma.bin ] || {
        echo "skipped: apt-get install qemu-system-data"
        exit 77
    }
    here=$(cd "$(dirname "$0")/.." && pwd)
    env=$("$here/guest/kit.sh") || { echo "skipped: test guest kit unavailable"; exit 77; }
    . "$env"
    timeout 600 "$LODGE" run --accel soft --firmware bios --mem 256M \
        --kernel "$LODGE_GUEST_KERNEL" --initrd "$LODGE_GUEST_INITRD" \
        --append "console=ttyS0 quiet" --serial "file:$T/com1" \
        --debugcon "file:$T/fw.log,iobase=0x402" 2>"$T/err"
    rc=$?
    [ "$rc" -eq 0 ] || fail "exit status $rc (want 0: ACPI power-off)"
    grep -aq "LODGE-INIT-OK" "$T/com1" || fail "no LODGE-INIT-OK on the console"
    grep -aq "Booting from ROM" "$T/fw.log" || fail "SeaBIOS did not boot the linuxboot ROM"
    ;;
disk)
    [ -r /usr/share/seabios/bios.bin ] || { echo "skipped: apt-get install seabios"; exit 77; }
    command -v nasm >/dev/null || { echo "skipped: nasm missing"; exit 77; }
    nasm -f bin -o "$T/mbr.bin" "$(dirname "$0")/mbr.asm" || fail "nasm"
    truncate -s 1M "$T/disk.img"
    dd if="$T/mbr.bin" of="$T/disk.img" conv=notrunc 2>/dev/null
    "$LODGE" run --accel soft --drive "file=$T/disk.img,format=raw" --boot disk --mem 128M \
        --serial none --debugcon "file:$T/fw.log,iobase=0x402" 2>"$T/err" &
    pid=$!
    wait_for "$T/fw.log" "LODGE-MBR-OK" 120 || fail "the boot sector did not run"
    stop
    grep -aq "Searching bootorder for: /pci@i0cf8/\*@3" "$T/fw.log" ||
        fail "SeaBIOS did not find the virtio-blk disk at 00:03.0"
    grep -aq "Booting from Hard Disk" "$T/fw.log" || fail "not booted from the hard disk"
    ;;
*)
    echo "usage: fw_boot.sh LODGE seabios|ovmf|linux|disk" >&2
    exit 2
    ;;
esac
if [ "$fails" -ne 0 ]; then
    [ -f "$T/err" ] && sed 's/^/    stderr: /' "$T/err" | tail -20
    exit 1
fi
echo "ok: $WHAT"
