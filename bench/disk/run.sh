#!/usr/bin/env bash
# Benchmark: disk I/O inside the guest and image conversion on the host, Lodge against QEMU.
#  1. The Debian test guest (tests/guest/kit.sh) runs tests/guest/scripts/disk_bench.sh on two
#     virtio-blk disks, a raw and a qcow2 image, all O_DIRECT in the guest: sequential 4 x 32 MiB
#     write/read (dd), rand4k: 2048 random 4 KiB writes (then fdatasync) and reads from one
#     process (lodge-randio, the device's per-request latency), and dd-per-op: 256 random 4 KiB
#     writes/reads with one dd process per op (mostly the guest's fork + exec; null-4k is the
#     same loop against /dev/null). `lodge run --accel soft` against
#     `qemu-system-x86_64 -accel tcg` with the same kernel, initrd, memory and fresh images. Each
#     phase is timed on the host clock from the guest's console markers.
#  2. `lodge img convert` against `qemu-img convert` on a 1 GiB image full of data:
#     raw -> qcow2 and qcow2 -> raw.
# Ratios are QEMU time / Lodge time: 1.0 or more means Lodge is at least as fast. Each figure
# is given twice: wall seconds and CPU seconds of the VM process (every thread) or of the
# convert command; the machine's load average is printed too, since neighbours inflate the
# wall clock far more than the CPU time.
#   bench/disk/run.sh [LODGE] [rand]     (rand: only the rand4k phases, no convert)
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
lodge=${1:-$top/build/lodge}
only=${2:-}
# shellcheck disable=SC1090
source "$("$top/tests/guest/kit.sh")" || exit 1
command -v qemu-system-x86_64 >/dev/null || { echo "bench: qemu-system-x86_64 missing"; exit 1; }
command -v qemu-img >/dev/null || { echo "bench: qemu-img missing"; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time missing (Debian package time)"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/lodge-disk-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
append="console=ttyS0 quiet lodge.test=disk_bench"
phases="raw-seq-write raw-seq-read raw-rand4k-write raw-rand4k-read
    qcow2-seq-write qcow2-seq-read qcow2-rand4k-write qcow2-rand4k-read
    raw-dd-per-op-write raw-dd-per-op-read qcow2-dd-per-op-write qcow2-dd-per-op-read null-4k"
if [ "$only" = rand ]; then
    append="$append lodge.diskbench=rand"
    phases="raw-rand4k-write raw-rand4k-read qcow2-rand4k-write qcow2-rand4k-read"
fi

# Host clock stamps on every console line, so a slow or fast guest clock cannot skew the result,
# and the CPU time the VM process (all its threads) has used so far: on a loaded machine the wall
# clock also measures the neighbours, CPU time much less so. The VM is the process whose stdout
# is our stdin.
stamp() {
    python3 -u -c '
import os, sys, time
t0 = time.monotonic()
me = os.stat("/proc/self/fd/0").st_ino
vm = None
def cpu():
    global vm
    if vm is None:
        for p in filter(str.isdigit, os.listdir("/proc")):
            try:
                if int(p) != os.getpid() and os.stat("/proc/%s/fd/1" % p).st_ino == me:
                    vm = p
                    break
            except OSError:
                pass
    ns = 0
    try:
        for t in os.listdir("/proc/%s/task" % vm):
            with open("/proc/%s/task/%s/schedstat" % (vm, t)) as f:
                ns += int(f.read().split()[0])
    except (OSError, TypeError):
        pass
    return ns / 1e9
for line in sys.stdin:
    print("%.3f %.3f %s" % (time.monotonic() - t0, cpu(), line.rstrip("\r\n")), flush=True)
'
}
fresh_images() {
    rm -f "$work/raw.img" "$work/disk.qcow2"
    truncate -s 64M "$work/raw.img"
    qemu-img create -q -f qcow2 "$work/disk.qcow2" 96M
}
fresh_images
load0=$(cut -d' ' -f1-3 /proc/loadavg)
"$lodge" run --accel soft --cpus 1 --mem 512M --kernel "$LODGE_GUEST_KERNEL" \
    --initrd "$LODGE_GUEST_INITRD" --append "$append" --serial stdio --display none \
    --drive "file=$work/raw.img,format=raw" --drive "file=$work/disk.qcow2,format=qcow2" \
    </dev/null 2>&1 | stamp > "$work/lodge.log"
fresh_images
qemu-system-x86_64 -accel tcg -smp 1 -m 512M -nographic -no-reboot -nodefaults -serial stdio \
    -kernel "$LODGE_GUEST_KERNEL" -initrd "$LODGE_GUEST_INITRD" -append "$append" \
    -drive "file=$work/raw.img,format=raw,if=virtio" \
    -drive "file=$work/disk.qcow2,format=qcow2,if=virtio" </dev/null 2>&1 | stamp > "$work/qemu.log"
for e in lodge qemu; do
    if ! grep -q "BENCH-DONE" "$work/$e.log" || grep -q "BENCH-NO-RANDIO\|BENCH-RANDIO-FAILED" \
        "$work/$e.log"; then
        echo "bench: the $e run did not finish the guest benchmark:"
        tail -n 20 "$work/$e.log"
        exit 1
    fi
done
grep -h "BENCH-DIRECT" "$work/lodge.log" | sed 's/^[0-9.]* [0-9.]* /guest dd O_DIRECT: /'
phase() { # log name field -> host seconds (field 1: wall, 2: VM CPU) between BEGIN and END
    awk -v n="$2" -v f="$3" '$3 == "BENCH-BEGIN" && $4 == n {b = $f} $3 == "BENCH-END" && $4 == n {e = $f}
        END {printf "%.3f", e - b}' "$1"
}
ratio() { awk "BEGIN{print ($1 > 0) ? $2 / $1 : 0}"; }
echo "load average before the guest runs: $load0"
printf '%-22s %9s %9s %7s | %9s %9s %7s\n' "guest phase" "lodge s" "qemu s" "ratio" \
    "lodge cpu" "qemu cpu" "ratio"
for p in $phases; do
    l=$(phase "$work/lodge.log" $p 1)
    q=$(phase "$work/qemu.log" $p 1)
    lc=$(phase "$work/lodge.log" $p 2)
    qc=$(phase "$work/qemu.log" $p 2)
    printf '%-22s %9.2f %9.2f %7.2f | %9.2f %9.2f %7.2f\n' "$p" "$l" "$q" "$(ratio "$l" "$q")" \
        "$lc" "$qc" "$(ratio "$lc" "$qc")"
done
echo "(rand4k: 2048 x 4 KiB from one guest process; dd-per-op: 256 x 4 KiB, one dd process per" \
    "op, null-4k is that loop against /dev/null; cpu: CPU seconds of the whole VM process," \
    "every thread)"
echo "load average after the guests: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$only" = rand ] && exit 0

# Host conversion of a 1 GiB image that is all data.
yes "LODGE-CONVERT-BENCH-PATTERN-0123456789abcdef" | head -c 1G > "$work/src.raw"
qemu-img convert -O qcow2 "$work/src.raw" "$work/src.qcow2"
cat "$work/src.raw" "$work/src.qcow2" > /dev/null # both warm in the page cache for both tools
timed() { # command... -> "wall cpu" seconds (cpu: user + system of the command)
    local s e
    s=$(date +%s.%N)
    /usr/bin/time -f "%U %S" -o "$work/time" "$@" >/dev/null 2>&1 || { echo "nan nan"; return; }
    e=$(date +%s.%N)
    awk -v s="$s" -v e="$e" '{printf "%.3f %.3f", e - s, $1 + $2}' "$work/time"
}
printf '%-22s %9s %9s %7s | %9s %9s %7s\n' "1 GiB convert" "lodge s" "qemu s" "ratio" \
    "lodge cpu" "qemu cpu" "ratio"
for c in "raw qcow2 src.raw" "qcow2 raw src.qcow2"; do
    set -- $c
    rm -f "$work/out.l" "$work/out.q"
    read -r l lc < <(timed "$lodge" img convert -O "$2" "$work/$3" "$work/out.l")
    read -r q qc < <(timed qemu-img convert -O "$2" "$work/$3" "$work/out.q")
    if ! qemu-img compare -q "$work/out.l" "$work/out.q"; then
        echo "bench: lodge img convert $1 -> $2 output differs from qemu-img's"
    fi
    rm -f "$work/out.l" "$work/out.q"
    printf '%-22s %9.2f %9.2f %7.2f | %9.2f %9.2f %7.2f\n' "$1 -> $2" "$l" "$q" \
        "$(ratio "$l" "$q")" "$lc" "$qc" "$(ratio "$lc" "$qc")"
done
echo "(both tools write the copy without fdatasync: qemu-img's default cache=unsafe, lodge's -t" \
    "unsafe; load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
