#!/bin/bash
# lodge gui library under Xvfb, by key presses (xdotool): Return starts the selected VM
# (the ui_fb test guest, which paints red and blue areas) and opens its console tab; the
# library row shows a live thumbnail of the guest's screen; Pause, Resume and Force off
# reach the VM; the thumbnail goes when the VM stops; Delete asks, then removes the bundle.
# usage: ui_gui_library.sh LODGE UI_FB_BIN      Exit 0 pass, 1 fail, 77 skipped.
set -uo pipefail
lodge=$1
guest=$2
# shellcheck source-path=SCRIPTDIR source=ui_gui_lib.sh
source "$(dirname "$0")/ui_gui_lib.sh"
GUI_THUMB_COLUMN=150 # the Screen column: 128-pixel thumbnails with padding

"$lodge" create fbvm --kernel "$guest" --mem 64M --disk-size 0 >/dev/null || fail "create"
"$lodge" gui --start-option=--accel=soft >"$tmp/gui.out" 2>&1 &
gui_pid=$!
pids+=("$gui_pid")
win=$(wait_window '^Lodge$')
[ -n "$win" ] || { fail "no 'Lodge' window: $(cat "$tmp/gui.out")"; exit 1; }
focus "$win"

# count FILE COLOUR: pixels of exactly that colour.
count() {
    convert "$1" -format %c histogram:info: |
        awk -v c="$2" 'index($0, c) { n += $1 } END { print n + 0 }'
}
# thumb_shot NAME: the Screen column of the library as $tmp/NAME.png
thumb_shot() {
    import -window "$win" "$tmp/$1-win.png"
    local wh
    wh=$(convert "$tmp/$1-win.png" -format '%h' info:)
    convert "$tmp/$1-win.png" -crop "${GUI_THUMB_COLUMN}x$wh+0+0" +repage "$tmp/$1.png"
}

# Ctrl+? lists the keyboard shortcuts; Escape closes the list.
keys ctrl+question
sc=$(wait_window '^Keyboard shortcuts$' 100)
if [ -z "$sc" ]; then
    fail "ctrl+?: no shortcuts window"
else
    focus "$sc"
    keys Escape
    wait_gone "$sc" || fail "Escape did not close the shortcuts window"
fi
focus "$win"

# The only VM is selected from the start: Return starts it, a console tab opens.
vms+=(fbvm)
keys Return
for _ in $(seq 100); do
    "$lodge" ctl fbvm status >/dev/null 2>&1 && break
    sleep 0.1
done
"$lodge" ctl fbvm status >/dev/null 2>&1 || fail "Return did not start fbvm: $(cat \
    "$vmdir/fbvm/logs/lodge.log" 2>&1)"
sleep 1.5
import -window "$win" "$tmp/console.png"
red=$(count "$tmp/console.png" "#FF0000")
[ "$red" -gt 50000 ] || fail "console tab: $red red pixels"

# The library: the row's thumbnail shows the guest, red and blue, at 128x96 or less.
keys ctrl+Page_Up
sleep 1.5
thumb_shot thumb
red=$(count "$tmp/thumb.png" "#FF0000")
blue=$(count "$tmp/thumb.png" "#0000FF")
[ "$red" -gt 1000 ] || fail "thumbnail: $red red pixels"
[ "$blue" -gt 1000 ] || fail "thumbnail: $blue blue pixels"
[ $((red + blue)) -le $((128 * 96)) ] || fail "thumbnail larger than 128x96 ($red + $blue)"

# Pause and Resume (Alt+P, Alt+R on the library page) reach the VM.
keys alt+p
sleep 0.5
"$lodge" ctl fbvm status 2>&1 | grep -q paused || fail "pause: $("$lodge" ctl fbvm status 2>&1)"
keys alt+r
sleep 0.5
"$lodge" ctl fbvm status 2>&1 | grep -q running ||
    fail "resume: $("$lodge" ctl fbvm status 2>&1)"

# Force off (Alt+F): the VM stops, and its thumbnail goes with the next refresh.
keys alt+f
for _ in $(seq 50); do
    [ -S "$XDG_RUNTIME_DIR/lodge/fbvm.sock" ] || break
    sleep 0.1
done
[ -S "$XDG_RUNTIME_DIR/lodge/fbvm.sock" ] && fail "force off: the VM still runs"
sleep 3
thumb_shot stopped
red=$(count "$tmp/stopped.png" "#FF0000")
[ "$red" -eq 0 ] || fail "a stopped VM keeps its thumbnail ($red red pixels)"

# Return starts it again: a fresh console tab and thumbnail from the new run.
focus "$win"
keys Return
for _ in $(seq 100); do
    "$lodge" ctl fbvm status >/dev/null 2>&1 && break
    sleep 0.1
done
sleep 1.5
import -window "$win" "$tmp/again.png"
red=$(count "$tmp/again.png" "#FF0000")
[ "$red" -gt 50000 ] || fail "restart: console tab shows $red red pixels"
keys ctrl+Page_Up
sleep 1.5
thumb_shot thumb-again
red=$(count "$tmp/thumb-again.png" "#FF0000")
[ "$red" -gt 1000 ] || fail "restart: thumbnail has $red red pixels"
"$lodge" ctl fbvm powerdown --force >/dev/null || fail "powerdown --force"
for _ in $(seq 50); do
    [ -S "$XDG_RUNTIME_DIR/lodge/fbvm.sock" ] || break
    sleep 0.1
done
sleep 2.5 # the library notices

# Delete asks first; Escape keeps the VM, the dialog's Delete removes it.
focus "$win"
keys Delete
dlg=$(wait_window '^Delete fbvm\?$')
[ -n "$dlg" ] || fail "Delete: no confirmation"
focus "$dlg"
keys Escape
wait_gone "$dlg" || fail "Escape did not close the confirmation"
[ -f "$vmdir/fbvm/vm.conf" ] || fail "Escape deleted the VM"
focus "$win"
keys Delete
dlg=$(wait_window '^Delete fbvm\?$')
focus "$dlg"
keys alt+d
for _ in $(seq 100); do
    [ -e "$vmdir/fbvm" ] || break
    sleep 0.05
done
[ -e "$vmdir/fbvm" ] && fail "the confirmed Delete left $vmdir/fbvm"

keys ctrl+q
for _ in $(seq 100); do
    kill -0 "$gui_pid" 2>/dev/null || break
    sleep 0.05
done
kill -0 "$gui_pid" 2>/dev/null && fail "ctrl+q: the manager is still running"
if [ $failed = 0 ]; then
    echo "ui_gui_library: all checks passed"
elif [ -n "${LODGE_TEST_KEEP:-}" ]; then
    cp "$tmp"/*.png "$LODGE_TEST_KEEP"/ 2>/dev/null
fi
exit $failed
