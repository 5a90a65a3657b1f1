#!/bin/bash
# The stock Debian kernel (tests/guest/kit.sh) on the soft CPU takes the framebuffer
# described in boot_params.screen_info: vesafb registers at 0xFD000000 and the text
# console appears in a screendump, without any firmware.
# usage: ui_linux.sh LODGE KIT_SH      Exit 0 pass, 1 fail, 77 skipped.
set -uo pipefail
lodge=$1
kit=$2
if ! command -v convert >/dev/null; then
    echo "skipped: imagemagick is missing (scripts/deps.sh installs it)"
    exit 77
fi
env=$("$kit") || { echo "skipped: the guest kit could not be built"; exit 77; }
# shellcheck disable=SC1090
source "$env"
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
failed=0
fail() {
    echo "FAIL $*"
    failed=1
}
sock=$tmp/vm.sock
"$lodge" run --accel soft --mem 512M --kernel "$LODGE_GUEST_KERNEL" \
    --initrd "$LODGE_GUEST_INITRD" --append "console=tty0 console=ttyS0 lodge.shell=1" \
    --display none --ctl "$sock" --serial "file:$tmp/serial.log" </dev/null \
    >"$tmp/run.out" 2>&1 &
pid=$!
for _ in $(seq 600); do
    grep -q "LODGE-INIT-OK" "$tmp/serial.log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
done
grep -q "LODGE-INIT-OK" "$tmp/serial.log" 2>/dev/null || {
    fail "guest did not reach init"
    tail -n 20 "$tmp/serial.log" "$tmp/run.out"
    exit 1
}
grep -q "vesafb: framebuffer at 0xfd000000" "$tmp/serial.log" ||
    fail "no vesafb at 0xfd000000: $(grep -i -E 'vesafb|simplefb|fb0' "$tmp/serial.log")"
grep -q "vesafb: mode is 1024x768x32, linelength=4096" "$tmp/serial.log" ||
    fail "vesafb mode: $(grep -i 'vesafb: mode' "$tmp/serial.log")"
sleep 1
"$lodge" ctl "$sock" screendump "$tmp/screen.png" || fail "screendump"
# fbcon draws grey text on black: a screen of boot messages has many lit pixels.
lit=$(convert "$tmp/screen.png" -fill white +opaque black -format '%[fx:round(mean*w*h)]' info:)
[ "${lit:-0}" -gt 5000 ] || fail "console text not on the framebuffer ($lit lit pixels)"
"$lodge" ctl "$sock" quit >/dev/null
wait "$pid"
pid=
if [ $failed = 0 ]; then
    echo "ui_linux: all checks passed"
fi
exit $failed
