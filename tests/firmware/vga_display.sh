#!/bin/sh
# The firmware's VGA on the live display surface (issues 7 and 8), soft CPU:
#   banner: SeaBIOS with --ctl; a text-mode screendump (FILE.txt) taken while the VM runs
#           shows the firmware banner, and the PNG screendump is the 720x400 text screen;
#   bochs:  --kernel through SeaBIOS; the guest loads bochs-drm (tests/guest/scripts/
#           bochs_drm.sh); the PNG screendump then has the driver's resolution (the one the
#           guest reports from /sys/class/graphics/fb0) and is not one colour, and a text
#           dump is refused (graphics mode);
#   sdl:    SeaBIOS with --display sdl under Xvfb: the window shows the firmware's screen
#           (not one colour) and has the text screen's size;
#   ovmf:   OVMF's GOP (QemuVideoDxe on the Bochs VBE LFB) at the UEFI shell: the PNG
#           screendump has the VBE mode's size (as status reports it, 1280x800) and is not
#           one colour.
# usage: vga_display.sh LODGE banner|bochs|sdl|ovmf
set -u
LODGE=$1 WHAT=$2
T=$(mktemp -d /tmp/lodge-vgad.XXXXXX)
pid=
xpid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    if [ -n "$xpid" ]; then kill "$xpid" 2>/dev/null; wait "$xpid" 2>/dev/null; fi
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
fails=0
fail() { echo "FAIL: $WHAT: $*"; fails=$((fails + 1)); }
[ -r /usr/share/seabios/bios.bin ] || { echo "skipped: apt-get install seabios"; exit 77; }

# wait_for FILE TEXT SECONDS
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

# wait_text TEXT SECONDS: poll text screendumps until one contains TEXT.
wait_text() {
    i=0
    while [ "$i" -lt "$2" ]; do
        "$LODGE" ctl "$T/vm.sock" screendump "$T/screen.txt" >/dev/null 2>&1
        if grep -q "$1" "$T/screen.txt" 2>/dev/null; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 1
        i=$((i + 1))
    done
    return 1
}

# png_info FILE: "WIDTH HEIGHT COLOURS" (ImageMagick, else a python3 PNG header read with
# COLOURS 0 when it cannot count).
png_info() {
    if command -v identify >/dev/null; then
        identify -format "%w %h %k" "$1" 2>/dev/null
    else
        python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(24); print(*struct.unpack(">II", d[16:24]), 0)' "$1"
    fi
}

case "$WHAT" in
banner)
    "$LODGE" run --accel soft --firmware bios --mem 128M --serial none --display none \
        --ctl "$T/vm.sock" 2>"$T/err" &
    pid=$!
    wait_text "SeaBIOS (version" 120 || fail "no SeaBIOS banner in the text screendump"
    grep -q "^SeaBIOS (version" "$T/screen.txt" || fail "the banner is not at the start of a line"
    [ "$(wc -l <"$T/screen.txt")" -eq 25 ] || fail "text dump is not 25 rows"
    "$LODGE" ctl "$T/vm.sock" screendump "$T/screen.png" || fail "PNG screendump refused"
    set -- $(png_info "$T/screen.png")
    [ "${1:-}" = 720 ] && [ "${2:-}" = 400 ] || fail "text screen PNG is ${1:-?}x${2:-?}, want 720x400"
    [ "${3:-0}" = 0 ] || [ "${3:-0}" -gt 1 ] || fail "text screen PNG is one colour"
    "$LODGE" ctl --json "$T/vm.sock" status | grep -q '"width":720' ||
        fail "status does not report the 720x400 display"
    ;;
bochs)
    [ -r /usr/share/qemu/linuxboot_dma.bin ] || {
        echo "skipped: apt-get install qemu-system-data"
        exit 77
    }
    here=$(cd "$(dirname "$0")/.." && pwd)
    env=$("$here/guest/kit.sh") || { echo "skipped: test guest kit unavailable"; exit 77; }
    . "$env"
    "$LODGE" run --accel soft --firmware bios --mem 256M \
        --kernel "$LODGE_GUEST_KERNEL" --initrd "$LODGE_GUEST_INITRD" \
        --append "console=ttyS0 quiet lodge.test=bochs_drm" --serial "file:$T/com1" \
        --display none --ctl "$T/vm.sock" 2>"$T/err" &
    pid=$!
    wait_for "$T/com1" "LODGE-BOCHS-READY\|LODGE-TEST-EXIT" 400 || fail "the guest never got ready"
    grep -aq "LODGE-FB-NAME=bochs-drmdrmfb" "$T/com1" || fail "bochs-drm did not register fb0"
    size=$(sed -n 's/.*LODGE-FB-SIZE=\([0-9]*\),\([0-9]*\).*/\1 \2/p' "$T/com1" | tr -d '\r')
    [ -n "$size" ] || fail "no fb0 size from the guest"
    # fbcon draws through the refresher; give it a frame or two.
    sleep 1
    "$LODGE" ctl "$T/vm.sock" screendump "$T/drm.png" || fail "PNG screendump refused"
    set -- $(png_info "$T/drm.png")
    [ "${1:-} ${2:-}" = "$size" ] || fail "screendump is ${1:-?}x${2:-?}, the guest says $size"
    [ "${3:-0}" = 0 ] || [ "${3:-0}" -gt 1 ] || fail "screendump is one colour"
    if "$LODGE" ctl "$T/vm.sock" screendump "$T/drm.txt" 2>/dev/null; then
        fail "a text dump of a graphics mode was accepted"
    fi
    ;;
ovmf)
    [ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] || { echo "skipped: apt-get install ovmf"; exit 77; }
    "$LODGE" run --accel soft --firmware uefi --mem 256M --serial "file:$T/com1" \
        --display none --ctl "$T/vm.sock" 2>"$T/err" &
    pid=$!
    wait_for "$T/com1" "Shell> " 240 || fail "no UEFI shell prompt"
    sleep 1
    "$LODGE" ctl "$T/vm.sock" screendump "$T/gop.png" || fail "PNG screendump refused"
    set -- $(png_info "$T/gop.png")
    [ "${1:-} ${2:-}" = "1280 800" ] || fail "GOP screendump is ${1:-?}x${2:-?}, want 1280x800"
    [ "${3:-0}" = 0 ] || [ "${3:-0}" -gt 1 ] || fail "GOP screendump is one colour"
    "$LODGE" ctl --json "$T/vm.sock" status | grep -q '"width":1280,"height":800' ||
        fail "status does not report the 1280x800 mode"
    ;;
sdl)
    command -v Xvfb >/dev/null && command -v import >/dev/null && command -v xdotool >/dev/null ||
        { echo "skipped: needs xvfb, imagemagick, xdotool"; exit 77; }
    dpy=:$((90 + $$ % 100))
    Xvfb "$dpy" -screen 0 1024x768x24 -nolisten tcp >/dev/null 2>&1 &
    xpid=$!
    sleep 1
    DISPLAY=$dpy "$LODGE" run --accel soft --firmware bios --mem 128M --serial none \
        --display sdl --name "vgad$$" --ctl "$T/vm.sock" 2>"$T/err" &
    pid=$!
    wait_text "No bootable device" 120 || fail "SeaBIOS did not reach 'No bootable device'"
    sleep 1
    win=$(DISPLAY=$dpy xdotool search --name "vgad$$" 2>/dev/null | head -n1)
    [ -n "$win" ] || fail "no SDL window"
    if [ -n "$win" ]; then
        DISPLAY=$dpy import -window "$win" "$T/win.png" 2>/dev/null || fail "import failed"
        set -- $(png_info "$T/win.png")
        [ "${3:-0}" -gt 1 ] || fail "the window is one colour (${1:-?}x${2:-?})"
        # The banner's row: white text pixels in the window's top 16 lines.
        lit=$(convert "$T/win.png" -crop "${1:-720}x16+0+0" -format "%[fx:maxima.r]" info: 2>/dev/null)
        [ "${lit:-0}" != 0 ] || fail "no text in the window's first text row"
    fi
    ;;
*)
    echo "usage: vga_display.sh LODGE banner|bochs|sdl|ovmf" >&2
    exit 2
    ;;
esac
if [ "$fails" -ne 0 ]; then
    [ -f "$T/err" ] && sed 's/^/    stderr: /' "$T/err" | tail -20
    [ -f "$T/com1" ] && sed 's/^/    com1: /' "$T/com1" | tail -20
    exit 1
fi
echo "ok: $WHAT"
