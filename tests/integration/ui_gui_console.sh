#!/bin/bash
# lodge gui console tab under Xvfb (issue 8), soft CPU, the Debian test kernel:
#   mode:  a VM with --firmware bios started from the manager (Return); its console tab
#          first shows SeaBIOS's 720x400 text screen drawn with that aspect, and after the
#          guest loads bochs-drm (tests/guest/scripts/bochs_drm.sh) the tab draws the
#          driver's mode (the size the guest reports from fb0) with the new aspect, and the
#          library thumbnail follows too (~1-2 min);
#   mouse: a direct-boot VM printing its /dev/input events (tests/guest/scripts/input.sh);
#          pointing into the console tab and clicking arrives in the guest as EV_ABS
#          positions on the virtio tablet matching the point over the drawn screen, and
#          BTN_LEFT 1/0 (~30 s).
# The tab's letterbox bars have their own colour (#101010), so the drawn screen is the area
# between them, black text screens included.
# usage: ui_gui_console.sh LODGE KIT_SH mode|mouse      Exit 0 pass, 1 fail, 77 skipped.
set -uo pipefail
lodge=$1
kit=$2
what=$3
[ -r /usr/share/seabios/bios.bin ] || { echo "skipped: apt-get install seabios"; exit 77; }
if [ "$what" = mode ] && [ ! -r /usr/share/qemu/linuxboot_dma.bin ]; then
    echo "skipped: apt-get install qemu-system-data"
    exit 77
fi
env=$("$kit") || { echo "skipped: the guest kit could not be built"; exit 77; }
# shellcheck disable=SC1090
source "$env"
# shellcheck source-path=SCRIPTDIR source=ui_gui_lib.sh
source "$(dirname "$0")/ui_gui_lib.sh"

kernel=$(readlink -f "$LODGE_GUEST_KERNEL")
initrd=$(readlink -f "$LODGE_GUEST_INITRD")
LETTERBOX='#101010'
GUI_THUMB_COLUMN=150 # the Screen column: 128-pixel thumbnails with padding

# wait_serial FILE TEXT SECONDS
wait_serial() {
    local _
    for _ in $(seq $(($3 * 5))); do
        grep -aq -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# page_geometry PNG: "W H X Y" of the console page, the bounding box of the letterbox
# colour (there is a bar on both sides of the drawn screen, so the box is the whole page).
page_geometry() {
    convert "$1" -fill black +opaque "$LETTERBOX" -fill white -opaque "$LETTERBOX" \
        "$tmp/mask.png"
    convert "$tmp/mask.png" -bordercolor black -border 1 -format '%@' info: |
        awk -F'[x+]' '{ print $1, $2, $3 - 1, $4 - 1 }'
}

# drawn_size PNG: "PAGE_W PAGE_H DRAWN_W DRAWN_H X Y": the page and the part of its middle
# row and middle column that is not letterbox, i.e. the scaled guest screen.
drawn_size() {
    local g pw ph px py dw dh
    g=$(page_geometry "$1")
    read -r pw ph px py <<<"$g"
    if [ -z "${py:-}" ] || [ "${pw:-0}" -le 50 ] || [ "${ph:-0}" -le 50 ]; then
        echo "0 0 0 0 0 0"
        return
    fi
    dw=$(convert "$tmp/mask.png" -crop "${pw}x1+${px}+$((py + ph / 2))" +repage \
        -format '%[fx:round(w*(1-mean))]' info:)
    dh=$(convert "$tmp/mask.png" -crop "1x${ph}+$((px + pw / 2))+${py}" +repage \
        -format '%[fx:round(h*(1-mean))]' info:)
    echo "$pw $ph $dw $dh $px $py"
}

# check_aspect LABEL PNG GW GH: the drawn screen has the guest's aspect and fills the page
# in one direction.
check_aspect() {
    local pw ph dw dh px py
    read -r pw ph dw dh px py <<<"$(drawn_size "$2")"
    echo "$1: page ${pw}x$ph, drawn ${dw}x$dh, guest $3x$4"
    if [ "$dw" -le 0 ] || [ "$dh" -le 0 ]; then
        fail "$1: no drawn screen in the console tab"
        return
    fi
    awk -v dw="$dw" -v dh="$dh" -v gw="$3" -v gh="$4" \
        'BEGIN { r = (dw / dh) / (gw / gh); exit !(r > 0.98 && r < 1.02) }' ||
        fail "$1: drawn ${dw}x$dh does not have the aspect of $3x$4"
    [ $((pw - dw)) -le 1 ] || [ $((ph - dh)) -le 1 ] ||
        fail "$1: drawn ${dw}x$dh fills neither side of the ${pw}x$ph page"
}

# thumb_size NAME: "W H" of the dark (screen) pixels in the library's Screen column.
thumb_size() {
    import -window "$win" "$tmp/$1-win.png"
    local wh
    wh=$(convert "$tmp/$1-win.png" -format '%h' info:)
    convert "$tmp/$1-win.png" -crop "${GUI_THUMB_COLUMN}x$wh+0+0" +repage \
        -colorspace gray -threshold 12% -negate -bordercolor black -border 1 \
        -format '%@' info: | awk -F'[x+]' '{ print $1, $2 }'
}

status_size() {
    "$lodge" ctl --json "$1" status 2>/dev/null |
        sed -n 's/.*"width":\([0-9]*\),"height":\([0-9]*\).*/\1 \2/p'
}

case "$what" in
mode)
    "$lodge" create modevm --firmware bios --mem 256M --disk-size 0 >/dev/null ||
        fail "create"
    serial=$vmdir/modevm/logs/serial.log
    # No NIC: SeaBIOS would run iPXE's boot ROM before the kernel (fw_cfg) boot.
    sed -i 's/^mode=user$/mode=none/' "$vmdir/modevm/vm.conf"
    "$lodge" gui --start-option=--accel=soft --start-option="--kernel=$kernel" \
        --start-option="--initrd=$initrd" \
        --start-option="--append=console=ttyS0 quiet lodge.test=bochs_drm lodge.text_hold=10" \
        >"$tmp/gui.out" 2>&1 &
    pids+=($!)
    win=$(wait_window '^Lodge$')
    [ -n "$win" ] || { fail "no 'Lodge' window: $(cat "$tmp/gui.out")"; exit 1; }
    focus "$win"
    vms+=(modevm)
    keys Return
    for _ in $(seq 100); do
        "$lodge" ctl modevm status >/dev/null 2>&1 && break
        sleep 0.1
    done
    "$lodge" ctl modevm status >/dev/null 2>&1 ||
        { fail "Return did not start modevm: $(cat "$vmdir/modevm/logs/lodge.log")"; exit 1; }
    # SeaBIOS's text screen, while the guest kernel is still loading.
    sleep 1.5
    before=$(status_size modevm)
    import -window "$win" "$tmp/text.png"
    after=$(status_size modevm)
    if [ "$before" = "720 400" ] && [ "$after" = "720 400" ]; then
        check_aspect "text mode" "$tmp/text.png" 720 400
        keys ctrl+Page_Up
        sleep 3.5 # a library refresh (2 s) and a thumbnail (1 s)
        read -r tw th <<<"$(thumb_size thumb-text)"
        echo "text mode thumbnail: ${tw}x$th"
        [ "${tw:-0}" = 128 ] && [ "${th:-0}" -ge 70 ] && [ "${th:-0}" -le 72 ] ||
            fail "text mode thumbnail is ${tw:-?}x${th:-?}, want 128x71"
        keys ctrl+Page_Down
    else
        fail "the display was not in the 720x400 text mode at first ($before, then $after)"
    fi
    if wait_serial "$serial" "LODGE-BOCHS-READY\|LODGE-TEST-EXIT" 600; then
        size=$(sed -n 's/.*LODGE-FB-SIZE=\([0-9]*\),\([0-9]*\).*/\1 \2/p' "$serial" | tr -d '\r')
        [ -n "$size" ] || fail "no fb0 size from the guest"
        [ "$(status_size modevm)" = "$size" ] ||
            fail "status says $(status_size modevm), the guest says $size"
        sleep 1.5 # a status poll (250 ms) and a few frames
        import -window "$win" "$tmp/drm.png"
        # shellcheck disable=SC2086
        check_aspect "bochs-drm" "$tmp/drm.png" $size
        keys ctrl+Page_Up
        sleep 3.5
        read -r tw th <<<"$(thumb_size thumb-drm)"
        echo "bochs-drm thumbnail: ${tw}x$th"
        read -r gw gh <<<"$size"
        want_h=$((128 * gh / gw))
        [ "${tw:-0}" = 128 ] && [ $((${th:-0} - want_h)) -ge -1 ] &&
            [ $((${th:-0} - want_h)) -le 1 ] ||
            fail "bochs-drm thumbnail is ${tw:-?}x${th:-?}, want 128x$want_h"
    else
        fail "the guest never loaded bochs-drm: $(tail -5 "$serial" 2>&1)"
    fi
    ;;
mouse)
    "$lodge" create mousevm --kernel "$kernel" --initrd "$initrd" --mem 256M --disk-size 0 \
        --append "console=ttyS0 quiet lodge.test=input" >/dev/null || fail "create"
    serial=$vmdir/mousevm/logs/serial.log
    vms+=(mousevm)
    "$lodge" start mousevm --display none --accel soft >"$tmp/vm.out" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        "$lodge" ctl mousevm status >/dev/null 2>&1 && break
        sleep 0.1
    done
    "$lodge" ctl mousevm status >/dev/null 2>&1 ||
        { fail "mousevm did not start: $(cat "$tmp/vm.out")"; exit 1; }
    "$lodge" gui --console mousevm >"$tmp/gui.out" 2>&1 &
    pids+=($!)
    win=$(wait_window '^Lodge$')
    [ -n "$win" ] || { fail "no 'Lodge' window: $(cat "$tmp/gui.out")"; exit 1; }
    if ! wait_serial "$serial" LODGE-INPUT-READY 400; then
        fail "the guest never said LODGE-INPUT-READY: $(tail -5 "$serial")"
        exit 1
    fi
    import -window "$win" "$tmp/mouse.png"
    read -r pw ph dw dh px py <<<"$(drawn_size "$tmp/mouse.png")"
    read -r gw gh <<<"$(status_size mousevm)"
    echo "page ${pw}x$ph at $px,$py, drawn ${dw}x$dh, guest ${gw}x$gh"
    [ "$dw" -gt 0 ] && [ "$dh" -gt 0 ] || { fail "no drawn screen in the console tab"; exit 1; }
    # A quarter into the drawn screen from its top-left corner.
    ox=$((px + (pw - dw) / 2)) oy=$((py + (ph - dh) / 2))
    cx=$((ox + dw / 4)) cy=$((oy + dh / 4))
    xdotool mousemove --window "$win" "$cx" "$cy"
    sleep 0.3
    xdotool click 1
    sleep 0.3
    # More motion and PS/2 reports, so the guest has the events it waits for.
    xdotool mousemove --window "$win" $((ox + dw / 2)) $((oy + dh / 2))
    sleep 0.3
    "$lodge" ctl mousevm input '{"type":"mouse","dx":10,"dy":-5,"buttons":1}' >/dev/null
    "$lodge" ctl mousevm input '{"type":"mouse","dx":0,"dy":0,"buttons":0,"wheel":1}' >/dev/null
    wait_serial "$serial" LODGE-INPUT-DONE 90 || fail "the guest never said LODGE-INPUT-DONE"
    # The tablet's position when the button went down, and the button's press and release.
    read -r ax ay press release <<<"$(tr -d '\r' <"$serial" | awk '
        $1 == "LODGE-EV" && $2 == "tablet" && $3 == 3 && $4 == 0 { x = $5 }
        $1 == "LODGE-EV" && $2 == "tablet" && $3 == 3 && $4 == 1 { y = $5 }
        $1 == "LODGE-EV" && $2 == "tablet" && $3 == 1 && $4 == 272 && $5 == 1 && !p {
            p = 1; px = x; py = y }
        $1 == "LODGE-EV" && $2 == "tablet" && $3 == 1 && $4 == 272 && $5 == 0 && p { r = 1 }
        END { print px + 0, py + 0, p + 0, r + 0 }')"
    echo "press at abs $ax,$ay"
    [ "$press" = 1 ] || fail "no BTN_LEFT press from the tab in the guest"
    [ "$release" = 1 ] || fail "no BTN_LEFT release from the tab in the guest"
    # A quarter of the range, within a few drawn pixels' worth of rounding.
    tol=$((32767 * 4 / dw + 64))
    for v in "$ax" "$ay"; do
        [ $((v - 8192)) -le "$tol" ] && [ $((8192 - v)) -le "$tol" ] ||
            fail "the click arrived at abs $ax,$ay, want about 8192,8192 (+-$tol)"
    done
    ;;
*)
    echo "usage: ui_gui_console.sh LODGE KIT_SH mode|mouse" >&2
    exit 2
    ;;
esac
if [ $failed = 0 ]; then
    echo "ui_gui_console $what: all checks passed"
fi
exit $failed
