#!/bin/bash
# lodge gui under Xvfb: the manager window appears, and a console tab attached to a
# running VM through display-attach shows the guest's framebuffer.
# usage: ui_gui.sh LODGE UI_FB_BIN      Exit 0 pass, 1 fail, 77 skipped.
set -uo pipefail
lodge=$1
guest=$2
# shellcheck source-path=SCRIPTDIR source=ui_gui_lib.sh
source "$(dirname "$0")/ui_gui_lib.sh"

# A bundle, started headless from the command line.
"$lodge" create guivm --kernel "$guest" --mem 64M --disk-size 0 >/dev/null || fail "create"
"$lodge" start guivm --display none --serial none --accel soft >"$tmp/vm.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    [ -S "$XDG_RUNTIME_DIR/lodge/guivm.sock" ] && break
    sleep 0.05
done
"$lodge" ctl guivm status >/dev/null || fail "VM did not start: $(cat "$tmp/vm.out")"
sleep 0.3

"$lodge" gui --console guivm >"$tmp/gui.out" 2>&1 &
pids+=($!)
win=
for _ in $(seq 200); do
    win=$(xdotool search --name '^Lodge$' 2>/dev/null | head -1)
    [ -n "$win" ] && break
    sleep 0.05
done
if [ -z "$win" ]; then
    fail "no 'Lodge' window: $(cat "$tmp/gui.out")"
    exit 1
fi
sleep 1 # a few frames
import -window "$win" "$tmp/gui.png"
hist=$(convert "$tmp/gui.png" -format %c histogram:info:)
# The console tab scales the 1024x768 guest screen: expect large red, blue and green areas.
count() { echo "$hist" | awk -v c="$1" 'index($0, c) { n += $1 } END { print n + 0 }'; }
red=$(count "#FF0000")
blue=$(count "#0000FF")
green=$(count "#00FF00")
[ "$red" -gt 50000 ] || fail "console tab: $red red pixels"
[ "$blue" -gt 50000 ] || fail "console tab: $blue blue pixels"
[ "$green" -gt 500 ] || fail "console tab: $green green pixels"

# Keys typed into the console tab reach the guest (C: make code 0x2E -> grey square).
xdotool windowfocus --sync "$win" 2>/dev/null || xdotool windowfocus "$win"
xdotool key c
sleep 1
import -window "$win" "$tmp/key.png"
hist=$(convert "$tmp/key.png" -format %c histogram:info:)
grey=$(count "#2E2E2E")
[ "$grey" -gt 500 ] || fail "console tab keys: $grey pixels of the key's grey"

"$lodge" ctl guivm quit >/dev/null
"$lodge" delete guivm --yes >/dev/null || fail "delete"
if [ $failed = 0 ]; then
    echo "ui_gui: all checks passed"
fi
exit $failed
