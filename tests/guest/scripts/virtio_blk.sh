#!/bin/sh
# virtio guest test (host side: tests/guest/virtio.sh). Loads the virtio modules the kit put in
# /lib/modules/virtio, then checks /dev/vda: size, first bytes (printed for the host to compare)
# and a write that must read back after the page cache is dropped; then, when present, reads
# /dev/hwrng (virtio-rng) and writes to the virtio-serial port org.lodge.test.0.
mods=/lib/modules/virtio
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk \
    virtio-rng virtio_console; do
    if [ -f "$mods/$m.ko" ]; then
        insmod "$mods/$m.ko" || { echo "LODGE-INSMOD-FAIL=$m"; exit 1; }
    else
        echo "LODGE-INSMOD-MISSING=$m"
        exit 1
    fi
done
n=0
while [ ! -b /dev/vda ] && [ $n -lt 30 ]; do
    sleep 1
    n=$((n + 1))
done
if [ ! -b /dev/vda ]; then
    echo "LODGE-VDA-MISSING"
    exit 1
fi
echo "LODGE-VDA-SECTORS=$(cat /sys/block/vda/size)"
echo "LODGE-VDA-HEAD=$(head -c 16 /dev/vda)"
printf 'LODGE-WRITE-TEST' | dd of=/dev/vda bs=512 seek=1 conv=sync,fsync 2>/dev/null
blockdev --flushbufs /dev/vda
echo 3 > /proc/sys/vm/drop_caches
back=$(dd if=/dev/vda bs=512 skip=1 count=1 2>/dev/null | head -c 16)
if [ "$back" != "LODGE-WRITE-TEST" ]; then
    echo "LODGE-VIRTIO-BLK-RW-FAIL=$back"
    exit 1
fi
echo "LODGE-VIRTIO-BLK-RW-OK"
awk '/virtio/ && $2 > 0' /proc/interrupts
if [ -c /dev/hwrng ] && grep -q virtio /sys/class/misc/hw_random/rng_current 2>/dev/null; then
    [ "$(head -c 16 /dev/hwrng | wc -c)" = 16 ] && echo "LODGE-VIRTIO-RNG-OK"
fi
# virtio-serial: a host port named org.lodge.test.0 (--virtio-port name=org.lodge.test.0,...).
# Without udev there is no /dev/virtio-ports/NAME link: find the vportNpM whose sysfs name matches.
port=""
n=0
while [ -d /sys/class/virtio-ports ] && [ -z "$port" ] && [ $n -lt 10 ]; do
    for p in /sys/class/virtio-ports/*; do
        if [ "$(cat "$p/name" 2>/dev/null)" = org.lodge.test.0 ]; then
            port=/dev/$(basename "$p")
        fi
    done
    [ -n "$port" ] || sleep 1
    n=$((n + 1))
done
if [ -n "$port" ] && [ -c "$port" ]; then
    echo "LODGE-PORT-DATA" > "$port" && echo "LODGE-VIRTIO-PORT-OK"
else
    echo "LODGE-VIRTIO-PORT-MISSING: $(ls /sys/class/virtio-ports 2>&1)"
    dmesg | grep -i virtio | tail -n 5
fi
exit 0
