#!/bin/sh
# Disk benchmark guest side (host side: bench/disk/run.sh, which times the markers on the console
# with host clock stamps). Two virtio disks: the raw one is 64 MiB, the qcow2 one 96 MiB (told
# apart by size). Per disk: sequential write and read (1 MiB blocks, 4 passes over 32 MiB) and
# 4 KiB random write and read (256 ops at the same pseudo-random offsets), all O_DIRECT when
# busybox dd supports it, else through the page cache with sync + drop_caches. A "null" pass
# times the 4 KiB loop against /dev/null so per-op process overhead can be told apart from disk
# time.
mods=/lib/modules/virtio
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk; do
    insmod "$mods/$m.ko" 2>/dev/null
done
n=0
while [ ! -b /dev/vdb ] && [ $n -lt 30 ]; do
    sleep 1
    n=$((n + 1))
done
direct_in="" direct_out=""
if dd if=/dev/vda of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null; then
    direct_in="iflag=direct" direct_out="oflag=direct"
fi
echo "BENCH-DIRECT=${direct_in:-no}"
# 32 copies of 1 MiB: making 32 MiB with yes alone takes a minute on the soft CPU.
yes LODGE-DISK-BENCH-PATTERN | head -c 1048576 > /tmp/mb
for i in 1 2 3 4 5 6 7 8; do
    cat /tmp/mb /tmp/mb /tmp/mb /tmp/mb
done > /tmp/seq
head -c 4096 /tmp/mb > /tmp/4k
settle() {
    if [ -z "$direct_in" ]; then
        sync
        echo 3 > /proc/sys/vm/drop_caches
    fi
}
mark() { # BEGIN|END name
    echo "BENCH-$1 $2 $(cut -d' ' -f1 /proc/uptime)"
}
randloop() { # dev read|write|null blocks
    r=12345
    i=0
    while [ $i -lt 256 ]; do
        r=$(((r * 1103515245 + 12345) % 2147483648))
        b=$((r % $3))
        case $2 in
        write) dd if=/tmp/4k of="$1" bs=4096 seek=$b count=1 $direct_out 2>/dev/null ;;
        read) dd if="$1" of=/dev/null bs=4096 skip=$b count=1 $direct_in 2>/dev/null ;;
        null) dd if=/dev/zero of=/dev/null bs=4096 count=1 2>/dev/null ;;
        esac
        i=$((i + 1))
    done
}
for d in vda vdb; do
    sectors=$(cat /sys/block/$d/size)
    case $sectors in
    131072) name=raw ;;
    196608) name=qcow2 ;;
    *) echo "BENCH-UNKNOWN-DISK $d $sectors"; continue ;;
    esac
    blocks=$((sectors / 8))
    settle
    mark BEGIN $name-seq-write
    for pass in 1 2 3 4; do
        dd if=/tmp/seq of=/dev/$d bs=1048576 count=32 $direct_out 2>/dev/null
    done
    sync
    mark END $name-seq-write
    settle
    mark BEGIN $name-seq-read
    for pass in 1 2 3 4; do
        dd if=/dev/$d of=/dev/null bs=1048576 count=32 $direct_in 2>/dev/null
    done
    mark END $name-seq-read
    mark BEGIN $name-rand-write
    randloop /dev/$d write $blocks
    sync
    mark END $name-rand-write
    settle
    mark BEGIN $name-rand-read
    randloop /dev/$d read $blocks
    mark END $name-rand-read
done
mark BEGIN null-4k
randloop /dev/null null 1
mark END null-4k
echo "BENCH-DONE"
exit 0
