#!/bin/bash
# The SDL console under Xvfb: `lodge run --display sdl` with a tiny guest that paints
# the framebuffer; the window shows the guest's pixels and its state in the title.
# usage: ui_sdl.sh LODGE UI_FB_BIN      Exit 0 pass, 1 fail, 77 skipped.
set -uo pipefail
lodge=$1
guest=$2
for tool in Xvfb xdotool import convert; do
    if ! command -v $tool >/dev/null; then
        echo "skipped: $tool is missing (scripts/deps.sh installs it)"
        exit 77
    fi
done
if ! "$lodge" run --help | grep -q -- "--display"; then
    echo "skipped: no --display option"
    exit 77
fi
tmp=$(mktemp -d)
pid=
xpid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$xpid" ] && kill "$xpid" 2>/dev/null && wait "$xpid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
failed=0
fail() {
    echo "FAIL $*"
    failed=1
}
expect() {
    if [ "$2" != "$3" ]; then
        fail "$1: want '$2', got '$3'"
    fi
}

# shellcheck source-path=SCRIPTDIR source=xvfb.sh
source "$(dirname "$0")/xvfb.sh"
start_xvfb

sock=$tmp/vm.sock
# No --display: with $DISPLAY set the default is sdl.
"$lodge" run --kernel "$guest" --accel soft --serial none --name uisdl --ctl "$sock" \
    >"$tmp/run.out" 2>&1 &
pid=$!
win=
for _ in $(seq 100); do
    win=$(xdotool search --name '^uisdl \[running\]' 2>/dev/null | head -1)
    [ -n "$win" ] && break
    sleep 0.05
done
if [ -z "$win" ]; then
    fail "no 'uisdl [running]' window"
    cat "$tmp/run.out"
    exit 1
fi
sleep 0.5 # a few frames
import -window "$win" "$tmp/win.png"
px() { convert "$tmp/win.png" -format "%[pixel:p{$1}]" info: 2>/dev/null; }
expect "window size" "1024x768" "$(identify -format %wx%h "$tmp/win.png")"
expect "pixel 10,10 (red top half)" "srgb(255,0,0)" "$(px 10,10)"
expect "pixel 120,120 (green square)" "srgb(0,255,0)" "$(px 120,120)"
expect "pixel 500,600 (blue bottom half)" "srgb(0,0,255)" "$(px 500,600)"

# Scaled to a wider window: aspect kept, so black bars left and right.
xdotool windowsize "$win" 1200 768
sleep 0.5
import -window "$win" "$tmp/wide.png"
expect "letterbox bar" "srgb(0,0,0)" "$(convert "$tmp/wide.png" -format '%[pixel:p{20,400}]' info:)"
expect "scaled blue" "srgb(0,0,255)" "$(convert "$tmp/wide.png" -format '%[pixel:p{600,700}]' info:)"
xdotool windowsize "$win" 1270 1000
sleep 0.5
import -window "$win" "$tmp/big.png"
expect "fractional scale fills the height" "srgb(255,0,0)" \
    "$(convert "$tmp/big.png" -format '%[pixel:p{635,40}]' info:)"

# Host keys reach the guest: the guest paints the make code of the last key (B: 0x30).
xdotool windowsize "$win" 1024 768
xdotool windowfocus --sync "$win" 2>/dev/null || xdotool windowfocus "$win"
xdotool key b
sleep 0.5
import -window "$win" "$tmp/key.png"
expect "guest saw B" "srgb(48,48,48)" "$(convert "$tmp/key.png" -format '%[pixel:p{320,120}]' info:)"

"$lodge" ctl "$sock" pause >/dev/null
sleep 0.3
case $(xdotool getwindowname "$win") in
"uisdl [paused]"*) ;;
*) fail "title after pause: $(xdotool getwindowname "$win")" ;;
esac
"$lodge" ctl "$sock" resume >/dev/null

# Closing the window presses the power button (this guest ignores it), and says so;
# closing it again powers off.
"$lodge" ctl "$sock" events >"$tmp/events" &
evpid=$!
sleep 0.3
wmclose=$(dirname "$0")/ui_wm_close.py
python3 "$wmclose" "$win" || fail "could not send WM_DELETE_WINDOW"
sleep 0.5
case $(xdotool getwindowname "$win") in
*"power-off requested"*) ;;
*) fail "title after one close: $(xdotool getwindowname "$win")" ;;
esac
"$lodge" ctl "$sock" status >/dev/null || fail "VM gone after the first close"
python3 "$wmclose" "$win"
wait "$pid"
rc=$?
pid=
expect "exit status after the second close" 0 "$rc"
wait "$evpid"
grep -q '^poweroff$' "$tmp/events" || fail "no poweroff event: $(cat "$tmp/events")"

# Integer scaling: a 1270x1000 window shows the guest at 1:1, centred, instead of x1.24.
"$lodge" run --kernel "$guest" --accel soft --serial none --name uiint \
    --display sdl,integer-scale=on --ctl "$tmp/int.sock" >/dev/null 2>&1 &
pid=$!
win=
for _ in $(seq 100); do
    win=$(xdotool search --name '^uiint \[running\]' 2>/dev/null | head -1)
    [ -n "$win" ] && break
    sleep 0.05
done
if [ -n "$win" ]; then
    xdotool windowsize "$win" 1270 1000
    sleep 0.7
    import -window "$win" "$tmp/int.png"
    expect "integer scale: bar above" "srgb(0,0,0)" \
        "$(convert "$tmp/int.png" -format '%[pixel:p{635,40}]' info:)"
    expect "integer scale: 1:1 green square" "srgb(0,255,0)" \
        "$(convert "$tmp/int.png" -format '%[pixel:p{255,248}]' info:)"
else
    fail "no uiint window"
fi
"$lodge" ctl "$tmp/int.sock" quit >/dev/null
wait "$pid"
pid=

# --display none opens no window even with $DISPLAY set.
"$lodge" run --kernel "$guest" --accel soft --serial none --display none --name uinone \
    --ctl "$tmp/none.sock" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do
    [ -S "$tmp/none.sock" ] && break
    sleep 0.05
done
sleep 0.3
[ -n "$(xdotool search --name '^uinone' 2>/dev/null)" ] && fail "--display none opened a window"
"$lodge" ctl "$tmp/none.sock" quit >/dev/null
wait "$pid"
pid=

if [ $failed = 0 ]; then
    echo "ui_sdl: all checks passed"
fi
exit $failed
