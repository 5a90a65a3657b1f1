#!/bin/sh
# Network boot (--boot net) on the soft CPU: the firmware runs Debian's iPXE ROM from
# the NIC's expansion ROM BAR, first in the boot order.
#   uefi: OVMF + efi-MODEL.rom: iPXE gets its boot file name from slirp's DHCP
#         (--net user,tftp=DIR,bootfile=boot.ipxe), fetches the script, the Debian kernel
#         and the test initramfs over slirp's TFTP; Linux reaches the init marker and
#         powers off.
#   bios: SeaBIOS + pxe-MODEL.rom: the ROM is mapped, listed in bootorder, run and
#         booted (iPXE's banner and start on the VGA text screen).
#   bios-boot: SeaBIOS + pxe-MODEL.rom all the way to the init marker, like uefi (needs
#         the soft CPU to deliver IRQ0 at vector 8 without an error code: docs/net.md).
# usage: pxe_boot.sh LODGE bios|bios-boot|uefi [e1000|virtio]
set -u
LODGE=$1 WHAT=$2 MODEL=${3:-e1000}
T=$(mktemp -d /tmp/lodge-pxe.XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
fails=0
fail() { echo "FAIL: $WHAT/$MODEL: $*"; fails=$((fails + 1)); }

case "$WHAT" in
bios | bios-boot) fw=/usr/share/seabios/bios.bin fwpkg=seabios rom=pxe firmware=bios ;;
uefi) fw=/usr/share/OVMF/OVMF_CODE_4M.fd fwpkg=ovmf rom=efi firmware=uefi ;;
*)
    echo "usage: pxe_boot.sh LODGE bios|bios-boot|uefi [e1000|virtio]" >&2
    exit 2
    ;;
esac
[ -r "$fw" ] || { echo "skipped: apt-get install $fwpkg"; exit 77; }
[ -r "/usr/lib/ipxe/qemu/$rom-$MODEL.rom" ] || { echo "skipped: apt-get install ipxe-qemu"; exit 77; }
here=$(cd "$(dirname "$0")/.." && pwd)
env=$("$here/guest/kit.sh") || { echo "skipped: test guest kit unavailable"; exit 77; }
. "$env"

mkdir "$T/tftp"
cp "$LODGE_GUEST_KERNEL" "$T/tftp/vmlinuz"
cp "$LODGE_GUEST_INITRD" "$T/tftp/initrd.img"
# initrd= names the image for the kernel's EFI stub (iPXE's EFI build hands it over as
# a file); under BIOS iPXE loads it itself and the option is ignored.
cat >"$T/tftp/boot.ipxe" <<'EOF'
#!ipxe
echo LODGE-PXE-SCRIPT
kernel vmlinuz initrd=initrd.img console=ttyS0 quiet
initrd initrd.img
boot
EOF

# A tftp= that is not a directory stops the run at start (exit status 2) naming it.
"$LODGE" run --accel soft --firmware "$firmware" --boot net --net user,model=e1000,tftp=/nonexistent \
    --serial none 2>"$T/err1"
rc=$?
[ "$rc" -eq 2 ] || fail "tftp=/nonexistent: exit status $rc (want 2)"
grep -q "tftp=/nonexistent: not a directory" "$T/err1" || fail "no error naming tftp="

if [ "$WHAT" = bios ]; then
    # SeaBIOS runs iPXE from the NIC's ROM BAR and boots it first (bootorder). The
    # firmware side only: the whole boot is bios-boot.
    "$LODGE" run --accel soft --firmware bios --boot net --mem 512M \
        --net "user,model=$MODEL,tftp=$T/tftp,bootfile=boot.ipxe" --serial none \
        --debugcon "file:$T/fw.log,iobase=0x402" --ctl "$T/ctl" 2>"$T/err" &
    pid=$!
    i=0
    while [ "$i" -lt 120 ] && ! grep -aq "Booting from ROM" "$T/fw.log" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
        i=$((i + 1))
    done
    sleep 3
    "$LODGE" ctl "$T/ctl" screendump "$T/screen.txt" || fail "no screendump"
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    grep -aq "PCI: map device bdf=00:10.0  bar 6" "$T/fw.log" ||
        fail "SeaBIOS did not map the NIC's expansion ROM BAR"
    grep -aq "Searching bootorder for: /pci@i0cf8/\*@10" "$T/fw.log" ||
        fail "SeaBIOS did not look up the NIC's ROM in bootorder"
    grep -aq "Booting from ROM" "$T/fw.log" || fail "SeaBIOS did not boot the NIC's ROM first"
    grep -q "^iPXE (http://ipxe.org) 00:10.0" "$T/screen.txt" 2>/dev/null ||
        fail "no iPXE ROM banner on the screen"
    grep -q "iPXE (PCI 00:10.0) starting execution" "$T/screen.txt" 2>/dev/null ||
        fail "iPXE did not start from the boot entry"
else
    timeout 300 "$LODGE" run --accel soft --firmware "$firmware" --boot net --mem 512M \
        --net "user,model=$MODEL,tftp=$T/tftp,bootfile=boot.ipxe" --serial "file:$T/com1" \
        2>"$T/err"
    rc=$?
    [ "$rc" -eq 0 ] || fail "exit status $rc (want 0: ACPI power-off)"
    grep -aq "LODGE-INIT-OK" "$T/com1" || fail "console lacks LODGE-INIT-OK"
    # OVMF's console is on serial too (under SeaBIOS iPXE writes to the VGA screen).
    if [ "$WHAT" = uefi ]; then
        for want in "Filename: boot.ipxe" "LODGE-PXE-SCRIPT" "vmlinuz\.\.\. ok" \
            "initrd.img\.\.\. ok"; do
            grep -aq "$want" "$T/com1" || fail "console lacks '$want'"
        done
    fi
fi
if [ "$fails" -ne 0 ]; then
    sed 's/^/    stderr: /' "$T/err" | tail -20
    [ -f "$T/com1" ] && tail -c 1500 "$T/com1" | sed 's/^/    com1: /'
    exit 1
fi
echo "ok: $WHAT/$MODEL"
