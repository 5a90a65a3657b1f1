#!/bin/sh
# VGA planar and banked modes through SeaBIOS's VGA BIOS, soft CPU (issue 7): a boot
# sector (tests/firmware/vga_planar.asm) on a virtio-blk disk draws, then the run's
# screendump (--vga-dump, PPM) must show the pixels at the places and in the colours of
# the VGA BIOS's default palettes:
#   planar: mode 12h, INT 10h write/read dot and a set/reset box through 0xA0000;
#   vbe:    VBE mode 101h (640x480x8) through the bank window (INT 10h 4F05);
#   mode13: mode 13h (chain-4) through 0xA0000 and INT 10h write/read dot;
#   grub:   a BIOS GRUB ISO (grub-mkrescue, no kernel) whose menu is drawn by gfxterm on
#           GRUB's "vga" video driver (mode 12h, planar writes): the screendump is 640x480
#           with the menu on it (the highlighted entry's bar, text), not one colour.
# usage: vga_planar.sh LODGE planar|vbe|mode13|grub
set -u
LODGE=$1 WHAT=$2
T=$(mktemp -d /tmp/lodge-vgap.XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
fails=0
fail() { echo "FAIL: $WHAT: $*"; fails=$((fails + 1)); }
[ -r /usr/share/seabios/bios.bin ] || { echo "skipped: apt-get install seabios"; exit 77; }
command -v nasm >/dev/null || { echo "skipped: nasm missing"; exit 77; }
command -v python3 >/dev/null || { echo "skipped: python3 missing"; exit 77; }

case "$WHAT" in
planar) def= ;;
vbe) def=-DVBE_BANK ;;
mode13) def=-DMODE13 ;;
grub) def= ;;
*)
    echo "usage: vga_planar.sh LODGE planar|vbe|mode13|grub" >&2
    exit 2
    ;;
esac
if [ "$WHAT" = grub ]; then
    for tool in grub-mkrescue xorriso mformat; do
        command -v $tool >/dev/null || { echo "skipped: $tool missing"; exit 77; }
    done
    [ -d /usr/lib/grub/i386-pc ] || { echo "skipped: apt-get install grub-pc-bin"; exit 77; }
    mkdir -p "$T/iso/boot/grub"
    cat >"$T/iso/boot/grub/grub.cfg" <<'CFG'
serial --unit=0 --speed=115200
insmod vga
insmod gfxterm
set gfxmode=640x480
terminal_input console serial
terminal_output gfxterm serial
set timeout=-1
menuentry "Lodge planar entry one" {
    echo one
}
menuentry "Lodge planar entry two" {
    echo two
}
CFG
    grub-mkrescue -d /usr/lib/grub/i386-pc -o "$T/boot.iso" "$T/iso" >"$T/mkrescue.log" 2>&1 ||
        { cat "$T/mkrescue.log"; echo "FAIL: grub-mkrescue"; exit 1; }
    : >"$T/com1"
    "$LODGE" run --accel soft --mem 256M --firmware bios --cdrom "$T/boot.iso" --boot cdrom \
        --serial "file:$T/com1" --vga-dump "$T/screen.ppm" 2>"$T/err" </dev/null &
    pid=$!
    log="$T/com1" marker="entry two"
else
    nasm -f bin $def -o "$T/mbr.bin" "$(dirname "$0")/vga_planar.asm" || fail "nasm"
    truncate -s 1M "$T/disk.img"
    dd if="$T/mbr.bin" of="$T/disk.img" conv=notrunc 2>/dev/null
    "$LODGE" run --accel soft --drive "file=$T/disk.img,format=raw" --boot disk --mem 128M \
        --serial none --debugcon "file:$T/fw.log,iobase=0x402" --vga-dump "$T/screen.ppm" \
        2>"$T/err" &
    pid=$!
    log="$T/fw.log" marker="LODGE-VGA-"
fi
i=0
while [ "$i" -lt 120 ] && ! grep -aq "$marker" "$log" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
    i=$((i + 1))
done
if [ "$WHAT" = grub ]; then
    grep -aq "$marker" "$log" || fail "no GRUB menu on the serial console"
    sleep 5 # the menu waits forever: let the VGA side finish drawing
fi
# The screendump is written when the run ends.
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=
if [ "$WHAT" != grub ]; then
    grep -aq "LODGE-VGA-DONE" "$T/fw.log" ||
        fail "the boot sector did not finish: $(grep -a LODGE-VGA "$T/fw.log" 2>/dev/null)"
fi

# check W H X Y RRGGBB ...: the PPM's size and pixels; X "lit" Y: more than 1/8 of line Y
# not black, X "colours" N: at least N distinct colours.
check() {
    python3 - "$T/screen.ppm" "$@" <<'PY'
import sys
data = open(sys.argv[1], 'rb').read()
magic, size, maxval, pixels = data.split(b'\n', 3)
w, h = map(int, size.split())
bad = []
want_w, want_h = int(sys.argv[2]), int(sys.argv[3])
if magic != b'P6' or (w, h) != (want_w, want_h):
    bad.append('screen is %s %dx%d, want P6 %dx%d' % (magic.decode(), w, h, want_w, want_h))
else:
    args = sys.argv[4:]
    for i in range(0, len(args), 3):
        if args[i + 1] == 'lit':
            y = int(args[i + 2])
            line = pixels[y * w * 3:(y + 1) * w * 3]
            lit = sum(1 for x in range(w) if line[x * 3:x * 3 + 3] != b'\0\0\0')
            if lit * 8 < w:
                bad.append('line %d has %d lit pixels' % (y, lit))
            continue
        if args[i + 1] == 'colours':
            n = len(set(pixels[j:j + 3] for j in range(0, w * h * 3, 3)))
            if n < int(args[i + 2]):
                bad.append('%d colours, want at least %s' % (n, args[i + 2]))
            continue
        x, y, want = int(args[i]), int(args[i + 1]), args[i + 2]
        o = (y * w + x) * 3
        got = pixels[o:o + 3].hex()
        if got != want:
            bad.append('pixel (%d,%d) is %s, want %s' % (x, y, got, want))
print('; '.join(bad))
sys.exit(1 if bad else 0)
PY
}
if [ -s "$T/screen.ppm" ]; then
    case "$WHAT" in
    planar)
        # EGA palette: 4 red, 9 light blue, 14 yellow; the rest black.
        out=$(check 640 480 100 50 a80000 101 50 5454fc 99 50 000000 102 50 000000 \
            80 200 fcfc54 159 209 fcfc54 79 200 000000 160 200 000000 80 210 000000 \
            0 0 000000) || fail "$out"
        ;;
    vbe)
        out=$(check 640 480 0 0 a80000 1 0 000000 512 102 5454fc 511 102 000000 \
            513 102 000000) || fail "$out"
        ;;
    mode13)
        out=$(check 320 200 100 50 a80000 101 50 5454fc 99 50 000000 102 50 000000) ||
            fail "$out"
        ;;
    grub)
        # The highlighted first entry is a bar across the menu box (GRUB's 16-colour
        # gfxterm layout at 640x480: rows 72-88); the screen's corner is black.
        out=$(check 640 480 0 0 000000 - colours 2 - lit 80) || fail "$out"
        ;;
    esac
else
    fail "no screendump"
fi
if [ "$fails" -ne 0 ]; then
    sed 's/^/    stderr: /' "$T/err" | tail -20
    exit 1
fi
echo "ok: $WHAT"
