#!/bin/sh
# Keys reach GRUB's menu (issue 7): a BIOS GRUB ISO (grub-mkrescue, like iso_boot.sh) whose
# menu has two entries and a 30 s timeout; entry 1 boots lodge.test=first, entry 2
# lodge.test=second. GRUB reads the PC console (INT 16h: SeaBIOS's PS/2 keyboard driver) and
# the serial line. When the menu is on serial, the test presses Down then Enter through
# `lodge ctl SOCK send-keys` (the PS/2 keyboard) and checks that the second entry booted.
# usage: grub_keys.sh LODGE
set -u
LODGE=$1
plat=i386-pc
for tool in grub-mkrescue xorriso mformat; do
    command -v $tool >/dev/null || { echo "skipped: $tool missing (scripts/deps.sh)"; exit 77; }
done
[ -d "/usr/lib/grub/$plat" ] && [ -r /usr/share/seabios/bios.bin ] ||
    { echo "skipped: apt-get install grub-pc-bin seabios"; exit 77; }
here=$(cd "$(dirname "$0")/.." && pwd)
env=$("$here/guest/kit.sh") || { echo "skipped: test guest kit unavailable"; exit 77; }
. "$env"

T=$(mktemp -d /tmp/lodge-grubkeys.XXXXXX)
vm=""
cleanup() {
    [ -n "$vm" ] && kill "$vm" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

mkdir -p "$T/iso/boot/grub"
cp "$LODGE_GUEST_KERNEL" "$T/iso/vmlinuz"
cp "$LODGE_GUEST_INITRD" "$T/iso/initrd"
# Menu on serial only (drawing on VGA costs minutes on the soft CPU); input from both.
cat >"$T/iso/boot/grub/grub.cfg" <<'CFG'
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output serial
set timeout=30
set default=0
menuentry "Lodge first entry" {
    echo LODGE-GRUB-FIRST
    linux /vmlinuz console=ttyS0 quiet lodge.test=first
    initrd /initrd
}
menuentry "Lodge second entry" {
    echo LODGE-GRUB-SECOND
    linux /vmlinuz console=ttyS0 quiet lodge.test=second
    initrd /initrd
}
CFG
grub-mkrescue -d "/usr/lib/grub/$plat" -o "$T/boot.iso" "$T/iso" >"$T/mkrescue.log" 2>&1 || {
    cat "$T/mkrescue.log"
    echo "FAIL: grub-mkrescue"
    exit 1
}

sock="$T/ctl.sock"
: >"$T/com1"
start=$(date +%s)
timeout 600 "$LODGE" run --accel soft --mem 256M --firmware bios --cdrom "$T/boot.iso" \
    --boot cdrom --display none --ctl "$sock" --serial "file:$T/com1" \
    --debugcon "file:$T/fw.log,iobase=0x402" 2>"$T/err" </dev/null &
vm=$!

wait_for() { # text seconds
    i=0
    while [ $i -lt $(($2 * 10)) ]; do
        grep -aqF -- "$1" "$T/com1" && return 0
        kill -0 "$vm" 2>/dev/null || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
# GRUB's menu footer ends with the countdown line.
if wait_for "executed automatically" 300; then
    echo "menu on serial after $(($(date +%s) - start)) s"
    "$LODGE" ctl "$sock" send-keys down || fail "send-keys down"
    sleep 0.5
    "$LODGE" ctl "$sock" send-keys ret || fail "send-keys ret"
else
    fail "GRUB's menu did not appear on serial"
fi
wait_for "LODGE-TEST-EXIT=" 400
wait "$vm"
rc=$?
vm=""
echo "lodge ran $(($(date +%s) - start)) s, exit status $rc"
[ "$rc" -eq 0 ] || fail "exit status $rc (want 0: the guest powers off)"
grep -aq "LODGE-GRUB-SECOND" "$T/com1" || fail "GRUB did not run the second entry"
grep -aq "LODGE-GRUB-FIRST" "$T/com1" && fail "GRUB ran the first entry"
grep -aq "LODGE-ENTRY=second cmdline: .*lodge.test=second" "$T/com1" ||
    fail "the guest did not boot with lodge.test=second"
grep -aq "LODGE-TEST-EXIT=0" "$T/com1" || fail "the guest test did not pass"
if [ "$fails" -ne 0 ]; then
    echo "--- serial (tail) ---"
    tail -c 3000 "$T/com1" 2>/dev/null
    echo "--- firmware log (tail) ---"
    tail -20 "$T/fw.log" 2>/dev/null
    sed 's/^/    stderr: /' "$T/err" | tail -20
    exit 1
fi
echo "ok: Down + Enter through the PS/2 keyboard chose GRUB's second entry"
