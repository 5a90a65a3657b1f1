#!/bin/sh
# qcow2 overlay guest test (host side: tests/guest/virtio_qcow2.sh). /dev/vda is a qcow2 overlay on
# a qcow2 base: write a 4 MiB pattern at 1 MiB, check it reads back after the page cache is
# dropped, and print hashes of the region and of the first MiB (still the base's bytes) so the
# host can compare them with what its image layer reads after power-off.
mods=/lib/modules/virtio
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk; do
    insmod "$mods/$m.ko" || { echo "LODGE-INSMOD-FAIL=$m"; exit 1; }
done
n=0
while [ ! -b /dev/vda ] && [ $n -lt 30 ]; do
    sleep 1
    n=$((n + 1))
done
[ -b /dev/vda ] || { echo "LODGE-VDA-MISSING"; exit 1; }
head=$(dd if=/dev/vda bs=65536 count=16 2>/dev/null | sha256sum | cut -d" " -f1)
echo "LODGE-OVL-BASE-HEAD=$head"
yes LODGE-OVERLAY-PATTERN | head -c 4194304 > /tmp/pat
want=$(sha256sum < /tmp/pat | cut -d' ' -f1)
if ! dd if=/tmp/pat of=/dev/vda bs=65536 seek=16 conv=fsync 2>/dev/null; then
    echo "LODGE-OVL-WRITE-FAIL"
    exit 1
fi
sync
blockdev --flushbufs /dev/vda
echo 3 > /proc/sys/vm/drop_caches
got=$(dd if=/dev/vda bs=65536 skip=16 count=64 2>/dev/null | sha256sum | cut -d' ' -f1)
echo "LODGE-OVL-SUM=$got"
if [ "$got" != "$want" ]; then
    echo "LODGE-OVL-RW-FAIL"
    exit 1
fi
echo "LODGE-OVL-RW-OK"
exit 0
