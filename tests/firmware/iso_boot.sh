#!/bin/sh
# Installing from an ISO (issue 7): builds at test time a GRUB ISO with grub-mkrescue holding
# the Debian kernel and the test initramfs (tests/guest/kit.sh) and boots it through firmware
# on the soft CPU to the init marker and the guest's power-off (exit status 0):
#   bios: BIOS-bootable ISO (i386-pc GRUB, El Torito) from --cdrom through SeaBIOS;
#   uefi: UEFI-bootable ISO (x86_64-efi GRUB, EFI/BOOT/BOOTX64.EFI) from --cdrom through OVMF;
#   disk: the BIOS ISO copied onto an AHCI disk (--disk, grub-mkrescue images are hybrid
#         with an MBR) through SeaBIOS.
# usage: iso_boot.sh LODGE bios|uefi|disk
set -u
LODGE=$1 WHAT=$2
case "$WHAT" in
bios | disk) plat=i386-pc fw=/usr/share/seabios/bios.bin pkg="grub-pc-bin seabios" ;;
uefi) plat=x86_64-efi fw=/usr/share/OVMF/OVMF_CODE_4M.fd pkg="grub-efi-amd64-bin ovmf" ;;
*)
    echo "usage: iso_boot.sh LODGE bios|uefi|disk" >&2
    exit 2
    ;;
esac
for tool in grub-mkrescue xorriso mformat; do
    command -v $tool >/dev/null || { echo "skipped: $tool missing (scripts/deps.sh)"; exit 77; }
done
[ -d "/usr/lib/grub/$plat" ] && [ -r "$fw" ] || { echo "skipped: apt-get install $pkg"; exit 77; }
here=$(cd "$(dirname "$0")/.." && pwd)
env=$("$here/guest/kit.sh") || { echo "skipped: test guest kit unavailable"; exit 77; }
. "$env"

T=$(mktemp -d /tmp/lodge-iso.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
fails=0
fail() { echo "FAIL: $WHAT: $*"; fails=$((fails + 1)); }

mkdir -p "$T/iso/boot/grub"
cp "$LODGE_GUEST_KERNEL" "$T/iso/vmlinuz"
cp "$LODGE_GUEST_INITRD" "$T/iso/initrd"
# Serial terminal only: GRUB's output on the VGA/GOP screen costs minutes on the soft CPU.
cat >"$T/iso/boot/grub/grub.cfg" <<'EOF'
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
menuentry "Lodge test guest" {
    echo LODGE-GRUB-BOOT
    linux /vmlinuz console=ttyS0 quiet lodge.test=hello
    initrd /initrd
}
EOF
grub-mkrescue -d "/usr/lib/grub/$plat" -o "$T/boot.iso" "$T/iso" >"$T/mkrescue.log" 2>&1 || {
    cat "$T/mkrescue.log"
    echo "FAIL: $WHAT: grub-mkrescue"
    exit 1
}

case "$WHAT" in
bios) set -- --firmware bios --cdrom "$T/boot.iso" --boot cdrom ;;
uefi) set -- --firmware uefi --cdrom "$T/boot.iso" --boot cdrom ;;
disk)
    cp "$T/boot.iso" "$T/disk.img"
    set -- --firmware bios --disk "$T/disk.img,format=raw" --boot disk
    ;;
esac
# GRUB 2.06's EFI heap is a quarter of free memory: 256M leaves it too little for the kernel.
mem=256M
[ "$WHAT" = uefi ] && mem=1G
start=$(date +%s)
timeout 900 "$LODGE" run --accel soft --mem "$mem" "$@" --serial "file:$T/com1" \
    --debugcon "file:$T/fw.log,iobase=0x402" 2>"$T/err" </dev/null
rc=$?
echo "$WHAT: lodge ran $(($(date +%s) - start)) s, exit status $rc"
[ "$rc" -eq 0 ] || fail "exit status $rc (want 0: the guest powers off)"
grep -aq "LODGE-GRUB-BOOT" "$T/com1" || fail "GRUB did not run the menu entry"
grep -aq "LODGE-INIT-OK" "$T/com1" || fail "no LODGE-INIT-OK on the console"
grep -aq "LODGE-TEST-EXIT=0" "$T/com1" || fail "the hello test did not pass in the guest"
case "$WHAT" in
bios)
    grep -aq "Searching bootorder for: /pci@i0cf8/\*@1f/drive@0/disk@0" "$T/fw.log" ||
        fail "SeaBIOS did not look up the AHCI CD-ROM in bootorder"
    grep -aq "Booting from DVD/CD" "$T/fw.log" || fail "SeaBIOS did not boot from the CD"
    ;;
disk)
    grep -aq "Booting from Hard Disk" "$T/fw.log" || fail "SeaBIOS did not boot from the disk"
    ;;
uefi)
    # OVMF's boot manager names the option it starts by its UEFI device path.
    grep -aq 'BdsDxe: starting Boot[0-9A-F]* .*Pci(0x1F,0x0)/Sata(0x0,0xFFFF,0x0)' "$T/com1" ||
        fail "OVMF did not boot from the AHCI CD-ROM"
    ;;
esac
if [ "$fails" -ne 0 ]; then
    echo "--- serial ---"
    tail -c 3000 "$T/com1" 2>/dev/null
    echo "--- firmware log (tail) ---"
    tail -40 "$T/fw.log" 2>/dev/null
    sed 's/^/    stderr: /' "$T/err" | tail -20
    exit 1
fi
echo "ok: $WHAT"
