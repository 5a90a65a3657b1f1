#!/bin/sh
# Pointer devices (host side: tests/guest/input.sh). Loads virtio_input, evdev and psmouse,
# finds the evdev nodes of the virtio tablet and the PS/2 mouse, reads them while the host
# injects events through the control socket, and prints every event as
#   LODGE-EV tablet|mouse TYPE CODE VALUE
lodge-insmod virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
    virtio_input evdev psmouse || exit 1
# find_dev PATTERN: the /dev/input/eventN whose device name matches (no udev here).
find_dev() {
    for d in /sys/class/input/event*; do
        case "$(cat "$d/device/name" 2>/dev/null)" in
        $1)
            echo "/dev/input/${d##*/}"
            return 0
            ;;
        esac
    done
    return 1
}
tab="" mouse="" n=0
while [ $n -lt 60 ]; do
    tab=$(find_dev "*Virtio Tablet*") && mouse=$(find_dev "*PS/2*") && break
    sleep 0.5
    n=$((n + 1))
done
for d in /sys/class/input/event*; do
    echo "LODGE-INPUT-DEV ${d##*/} $(cat "$d/device/name" 2>/dev/null)"
done
if [ -z "$tab" ] || [ -z "$mouse" ] || [ ! -c "$tab" ] || [ ! -c "$mouse" ]; then
    echo "LODGE-INPUT-MISSING tablet=$tab mouse=$mouse"
    exit 1
fi
# Events a device had before it was opened are not replayed: open both, then say ready.
dd if="$tab" of=/tmp/tablet.bin bs=24 2>/dev/null &
tpid=$!
dd if="$mouse" of=/tmp/mouse.bin bs=24 2>/dev/null &
mpid=$!
sleep 1
echo "LODGE-INPUT-READY"
# The host sends 2 tablet reports (9 events) and 2 mouse reports (7 events).
n=0
while [ $n -lt 60 ]; do
    t=$(wc -c </tmp/tablet.bin) m=$(wc -c </tmp/mouse.bin)
    [ "$t" -ge $((9 * 24)) ] && [ "$m" -ge $((7 * 24)) ] && break
    sleep 0.5
    n=$((n + 1))
done
sleep 1
kill $tpid $mpid 2>/dev/null
for dev in tablet mouse; do
    # struct input_event on x86-64: 16 bytes of time, u16 type, u16 code, s32 value.
    hexdump -v -e '4/4 "%u " 2/2 " %u" 1/4 " %d" "\n"' /tmp/$dev.bin |
        while read -r s0 s1 u0 u1 type code value; do
            echo "LODGE-EV $dev $type $code $value"
        done
done
echo "LODGE-INPUT-DONE"
