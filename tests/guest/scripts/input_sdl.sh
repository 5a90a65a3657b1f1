#!/bin/sh
# The SDL console's pointer reaches the guest (host side: tests/guest/input_sdl.sh). Reads the
# virtio tablet's evdev node (or the PS/2 mouse's with lodge.input=ps2) until a left-button
# release arrives, then prints every event as LODGE-EV TYPE CODE VALUE.
lodge-insmod virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
    virtio_input evdev psmouse || exit 1
want="*Virtio Tablet*"
grep -q "lodge.input=ps2" /proc/cmdline && want="*PS/2*"
dev="" n=0
while [ $n -lt 60 ]; do
    for d in /sys/class/input/event*; do
        case "$(cat "$d/device/name" 2>/dev/null)" in
        $want) dev="/dev/input/${d##*/}" ;;
        esac
    done
    [ -n "$dev" ] && [ -c "$dev" ] && break
    sleep 0.5
    n=$((n + 1))
done
if [ -z "$dev" ]; then
    echo "LODGE-INPUT-MISSING $want"
    exit 1
fi
dd if="$dev" of=/tmp/ev.bin bs=24 2>/dev/null &
pid=$!
sleep 1
echo "LODGE-INPUT-READY $dev"
decode() {
    hexdump -v -e '4/4 "%u " 2/2 " %u" 1/4 " %d" "\n"' /tmp/ev.bin |
        while read -r s0 s1 u0 u1 type code value; do
            echo "$type $code $value"
        done
}
n=0
while [ $n -lt 120 ]; do
    decode | grep -qx "1 272 0" && break
    sleep 0.5
    n=$((n + 1))
done
kill $pid 2>/dev/null
decode | sed 's/^/LODGE-EV /'
echo "LODGE-INPUT-DONE"
