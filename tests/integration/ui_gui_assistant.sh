#!/bin/bash
# lodge gui end to end under Xvfb, driven only by key presses (xdotool): the new-VM
# assistant creates two VMs whose vm.conf holds exactly the settings typed in; the
# settings editor changes the memory; Return starts the Debian test kernel (soft CPU)
# from the library and its console tab shows the guest's screen; the library thumbnail
# of the running VM shows it too; Ctrl+Q closes the manager and the VM keeps running.
# usage: ui_gui_assistant.sh LODGE KIT_SH      Exit 0 pass, 1 fail, 77 skipped.
set -uo pipefail
lodge=$1
kit=$2
env=$("$kit") || { echo "skipped: the guest kit could not be built"; exit 77; }
# shellcheck disable=SC1090
source "$env"
# shellcheck source-path=SCRIPTDIR source=ui_gui_lib.sh
source "$(dirname "$0")/ui_gui_lib.sh"

kernel=$(readlink -f "$LODGE_GUEST_KERNEL")
initrd=$(readlink -f "$LODGE_GUEST_INITRD")
append="console=tty0 console=ttyS0 lodge.shell=1"
iso=$tmp/installer.iso
GUI_THUMB_COLUMN=150 # the Screen column: 128-pixel thumbnails with padding
head -c 65536 /dev/zero >"$iso"

"$lodge" gui --start-option=--accel=soft >"$tmp/gui.out" 2>&1 &
gui_pid=$!
pids+=("$gui_pid")
win=$(wait_window '^Lodge$')
[ -n "$win" ] || { fail "no 'Lodge' window: $(cat "$tmp/gui.out")"; exit 1; }
focus "$win"

# new_vm: Ctrl+N, then each field reached by its mnemonic; Return creates.
new_vm() { # name mem cpus disk fw-key [extra xdotool steps as "key:..."/"type:..."]
    local name=$1 mem=$2 cpus=$3 disk=$4 fwkey=$5
    shift 5
    focus "$win"
    keys ctrl+n
    local dlg
    dlg=$(wait_window '^New virtual machine$')
    [ -n "$dlg" ] || { fail "ctrl+n: no assistant"; return 1; }
    focus "$dlg"
    typein "$name"
    keys alt+m && typein "$mem"
    keys alt+p && typein "$cpus"
    keys alt+d && typein "$disk"
    keys "$fwkey"
    local step
    for step in "$@"; do
        case $step in
        key:*) keys "${step#key:}" ;;
        type:*) typein "${step#type:}" ;;
        esac
    done
    keys Return
    wait_gone "$dlg" || fail "$name: the assistant stayed open"
    wait_file "$vmdir/$name/vm.conf" 200 || fail "$name: no vm.conf: $(cat "$tmp/gui.out")"
    sleep 0.5 # the manager refreshes and selects the new VM
}

# An installer VM: UEFI, an ISO, no disk.
new_vm isovm 512 1 0 alt+u "key:alt+i" "type:$iso"
printf '%s\n' boot.firmware=uefi "boot.iso=$iso" hardware.cpus=1 hardware.memory-mib=512 \
    network.mode=user vm.name=isovm | sort >"$tmp/iso.want"
conf_lines "$vmdir/isovm/vm.conf" >"$tmp/iso.got"
diff -u "$tmp/iso.want" "$tmp/iso.got" >"$tmp/iso.diff" ||
    fail "isovm vm.conf: $(cat "$tmp/iso.diff")"
[ ! -e "$vmdir/isovm/disk.qcow2" ] || fail "isovm: a disk despite size 0"

# The direct-boot VM the rest of the test runs: 3 GiB disk, 2 CPUs, 384 MiB.
new_vm linuxvm 384 2 3 alt+l "key:alt+k" "type:$kernel" "key:alt+t" "type:$initrd" \
    "key:alt+o" "type:$append"
printf '%s\n' "boot.append=$append" boot.firmware=kernel "boot.initrd=$initrd" \
    "boot.kernel=$kernel" disks.disk0=disk.qcow2 disks.disk0-size=3221225472 hardware.cpus=2 \
    hardware.memory-mib=384 network.mode=user vm.name=linuxvm | sort >"$tmp/linux.want"
conf_lines "$vmdir/linuxvm/vm.conf" >"$tmp/linux.got"
diff -u "$tmp/linux.want" "$tmp/linux.got" >"$tmp/linux.diff" ||
    fail "linuxvm vm.conf: $(cat "$tmp/linux.diff")"
# qcow2 header: the virtual size is the big-endian 64-bit field at offset 24.
size=$(od -An -tx1 -j24 -N8 "$vmdir/linuxvm/disk.qcow2" 2>/dev/null | tr -d ' \n')
[ "$size" = "00000000c0000000" ] || fail "linuxvm disk.qcow2: virtual size 0x$size, not 3 GiB"

# A bad name stays in the assistant with a message; Escape cancels without a bundle.
focus "$win"
keys ctrl+n
dlg=$(wait_window '^New virtual machine$')
focus "$dlg"
typein "-bad"
keys Return
sleep 0.3
xdotool search --onlyvisible --name '^New virtual machine$' >/dev/null ||
    fail "a bad name closed the assistant"
keys Escape
wait_gone "$dlg" || fail "Escape did not close the assistant"
[ ! -e "$vmdir/-bad" ] || fail "a bundle for a bad name"

# Settings editor (Alt+Return on the selected VM): the memory changes in vm.conf.
focus "$win"
keys alt+Return
dlg=$(wait_window '^Settings of linuxvm$')
if [ -z "$dlg" ]; then
    fail "alt+Return: no settings for linuxvm"
else
    focus "$dlg"
    keys alt+m && typein 448
    keys Return
    wait_gone "$dlg" || fail "settings stayed open"
    sleep 0.3
    sed 's/^hardware.memory-mib=384$/hardware.memory-mib=448/' "$tmp/linux.want" >"$tmp/set.want"
    conf_lines "$vmdir/linuxvm/vm.conf" >"$tmp/set.got"
    diff -u "$tmp/set.want" "$tmp/set.got" >"$tmp/set.diff" ||
        fail "settings: vm.conf: $(cat "$tmp/set.diff")"
fi

# Return on the selected VM starts it; the console tab opens when it answers.
focus "$win"
vms+=(linuxvm)
keys Return
serial=$vmdir/linuxvm/logs/serial.log
for _ in $(seq 600); do
    grep -q "LODGE-INIT-OK" "$serial" 2>/dev/null && break
    sleep 0.5
done
if ! grep -q "LODGE-INIT-OK" "$serial" 2>/dev/null; then
    fail "the guest did not reach init: $(tail -n 5 "$serial" "$vmdir/linuxvm/logs/lodge.log" \
        2>&1)"
    exit 1
fi
"$lodge" ctl linuxvm status >"$tmp/status" 2>&1 || fail "status: $(cat "$tmp/status")"
sleep 2 # a few console frames and a thumbnail refresh

# The guest's own screen: fbcon text on black.
"$lodge" ctl linuxvm screendump "$tmp/screen.png" || fail "screendump"
lit=$(convert "$tmp/screen.png" -fill white +opaque black -format '%[fx:round(mean*w*h)]' info:)
[ "${lit:-0}" -gt 5000 ] || fail "the guest screen is blank ($lit lit pixels)"

# The console tab: the window below the header bar and tabs is the scaled guest screen,
# black with grey text, so not uniform.
import -window "$win" "$tmp/console.png"
geo=$(convert "$tmp/console.png" -format '%w %h' info:)
read -r ww wh <<<"$geo"
convert "$tmp/console.png" -crop "$((ww / 2))x$((wh / 3))+$((ww / 4))+$((wh / 3))" +repage \
    "$tmp/console-mid.png"
black=$(convert "$tmp/console-mid.png" -fill white +opaque black -negate \
    -format '%[fx:round(mean*w*h)]' info:)
lit=$(convert "$tmp/console-mid.png" -fill black -opaque black -threshold 25% \
    -format '%[fx:round(mean*w*h)]' info:)
total=$(((ww / 2) * (wh / 3)))
[ "${black:-0}" -gt $((total / 2)) ] || fail "console tab: only $black of $total pixels black"
[ "${lit:-0}" -gt 200 ] || fail "console tab: no guest text ($lit lit pixels)"

# Back to the library: the running VM's thumbnail is the only black area in the first
# column (the screens); its bounding box holds the guest's text, so it is not uniform.
keys ctrl+Page_Up
sleep 1.5
import -window "$win" "$tmp/library-win.png"
convert "$tmp/library-win.png" -crop "$((GUI_THUMB_COLUMN))x$wh+0+0" +repage "$tmp/library.png"
box=$(convert "$tmp/library.png" -fill white +opaque black -format '%@' info:)
tw=${box%%x*}
th=${box#*x}
th=${th%%+*}
if [ "${tw:-0}" -lt 64 ] || [ "${tw:-0}" -gt 140 ] || [ "${th:-0}" -lt 48 ]; then
    fail "library: no thumbnail-sized black area (box $box)"
else
    convert "$tmp/library.png" -crop "$box" +repage "$tmp/thumb.png"
    sd=$(convert "$tmp/thumb.png" -colorspace Gray -format '%[fx:round(standard_deviation*1000)]' \
        info:)
    [ "${sd:-0}" -gt 20 ] || fail "library thumbnail is uniform (sd $sd/1000, box $box)"
fi

# Ctrl+Q closes the manager; the VM keeps running.
focus "$win"
keys ctrl+q
for _ in $(seq 100); do
    kill -0 "$gui_pid" 2>/dev/null || break
    sleep 0.05
done
kill -0 "$gui_pid" 2>/dev/null && fail "ctrl+q: the manager is still running"
sleep 0.5
out=$("$lodge" ctl linuxvm status 2>&1)
echo "$out" | grep -q running || fail "after the manager closed: status says '$out'"
"$lodge" ctl linuxvm powerdown --force >/dev/null || fail "powerdown --force"
for _ in $(seq 100); do
    [ -S "$XDG_RUNTIME_DIR/lodge/linuxvm.sock" ] || break
    sleep 0.1
done
[ -S "$XDG_RUNTIME_DIR/lodge/linuxvm.sock" ] && fail "the VM did not power off"
if [ $failed = 0 ]; then
    echo "ui_gui_assistant: all checks passed"
elif [ -n "${LODGE_TEST_KEEP:-}" ]; then
    cp "$tmp"/*.png "$LODGE_TEST_KEEP"/ 2>/dev/null
fi
exit $failed
