#!/bin/sh
# virtio-console both ways (host side: tests/guest/virtio_console.sh). The host listens on a UNIX
# socket behind the port org.lodge.echo.0: the guest sends a greeting, then answers each line the
# host sends with "ECHO:" + the line upper-cased, until the host sends "BYE".
mods=/lib/modules/virtio
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
    virtio_console; do
    insmod "$mods/$m.ko" || { echo "LODGE-INSMOD-FAIL=$m"; exit 1; }
done
# No udev, so no /dev/virtio-ports/NAME link: find the vportNpM whose sysfs name matches.
port=""
n=0
while [ -z "$port" ] && [ $n -lt 30 ]; do
    for p in /sys/class/virtio-ports/*; do
        if [ "$(cat "$p/name" 2>/dev/null)" = org.lodge.echo.0 ]; then
            port=/dev/$(basename "$p")
        fi
    done
    [ -n "$port" ] || sleep 1
    n=$((n + 1))
done
if [ -z "$port" ] || [ ! -c "$port" ]; then
    echo "LODGE-ECHO-PORT-MISSING: $(ls /sys/class/virtio-ports 2>&1)"
    exit 1
fi
echo "LODGE-ECHO-PORT=$port"
exec 3<>"$port"
echo "LODGE-GUEST-HELLO" >&3
got=0
while read -r line <&3; do
    [ "$line" = BYE ] && break
    echo "ECHO:$(echo "$line" | tr a-z A-Z)" >&3
    got=$((got + 1))
done
exec 3>&-
echo "LODGE-ECHO-LINES=$got"
exit 0
