#!/bin/sh
# Crash-safety guest test (host side: tests/guest/virtio_crash.sh, which SIGKILLs lodge run at a
# random moment). Round R (lodge.round=R on the command line) writes 64 KiB blocks R*200+N, each
# filled with "LODGE-CRASH-R-N" lines, and prints "FLUSHED N" only after dd's fsync (a virtio-blk
# FLUSH) and sync returned: every block whose marker the host saw must survive the kill.
round=0
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    lodge.round=*) round=${arg#lodge.round=} ;;
    esac
done
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
echo "LODGE-CRASH-ROUND=$round"
# Until the kill: after block 199 start over. A rewrite stores the same bytes, so a block flushed
# once stays checkable whatever the kill interrupts (and a fast engine cannot finish first).
n=0
while :; do
    yes "LODGE-CRASH-$round-$n" | head -c 65536 > /tmp/blk
    dd if=/tmp/blk of=/dev/vda bs=65536 seek=$((round * 200 + n)) conv=fsync 2>/dev/null || break
    sync
    echo "FLUSHED $n"
    n=$(((n + 1) % 200))
done
echo "LODGE-CRASH-WRITE-FAIL"
exit 1
