#!/bin/sh
# Disk benchmark guest side (host side: bench/disk/run.sh, which times the markers on the console
# with host clock stamps). Two virtio disks: the raw one is 64 MiB, the qcow2 one 96 MiB (told
# apart by size). Per disk:
#  - seq-write/seq-read: 1 MiB blocks, 4 passes over 32 MiB, one dd per pass;
#  - rand4k-write/rand4k-read: 2048 x 4 KiB at pseudo-random offsets from ONE process
#    (/bin/lodge-randio, tests/guest/tools/randio.c; the write ends with fdatasync): the
#    device's per-request latency;
#  - dd-per-op-write/dd-per-op-read: 256 x 4 KiB at the same kind of offsets, one busybox dd
#    process per op: mostly fork + exec in the guest, the "null" pass times that loop against
#    /dev/null so the process cost can be told apart from disk time.
# All O_DIRECT when busybox dd supports it, else through the page cache with sync + drop_caches.
# lodge.diskbench=rand on the kernel command line runs only the rand4k phases (profiling).
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
only_rand=0
grep -q "lodge.diskbench=rand" /proc/cmdline && only_rand=1
[ -x /bin/lodge-randio ] || echo "BENCH-NO-RANDIO"
randio() { # dev read|write name: 2048 ops at the same offsets in every run
    mark BEGIN "$3"
    if [ "$2" = write ]; then
        lodge-randio "$1" write 2048 12345 sync || echo "BENCH-RANDIO-FAILED $3"
    else
        lodge-randio "$1" read 2048 12345 || echo "BENCH-RANDIO-FAILED $3"
    fi
    mark END "$3"
}
for d in vda vdb; do
    sectors=$(cat /sys/block/$d/size)
    case $sectors in
    131072) name=raw ;;
    196608) name=qcow2 ;;
    *) echo "BENCH-UNKNOWN-DISK $d $sectors"; continue ;;
    esac
    blocks=$((sectors / 8))
    if [ $only_rand = 1 ]; then
        randio /dev/$d write $name-rand4k-write
        randio /dev/$d read $name-rand4k-read
        continue
    fi
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
    randio /dev/$d write $name-rand4k-write
    settle
    randio /dev/$d read $name-rand4k-read
    mark BEGIN $name-dd-per-op-write
    randloop /dev/$d write $blocks
    sync
    mark END $name-dd-per-op-write
    settle
    mark BEGIN $name-dd-per-op-read
    randloop /dev/$d read $blocks
    mark END $name-dd-per-op-read
done
if [ $only_rand = 0 ]; then
    mark BEGIN null-4k
    randloop /dev/null null 1
    mark END null-4k
fi
echo "BENCH-DONE"
exit 0
