#!/usr/bin/env bash
# Fuzz targets (libFuzzer): the disk image parsers (fuzz_qcow2.c) and the virtqueue walker
# (fuzz_virtq.c). Compiles each with clang -fsanitize=fuzzer,address,undefined over just the
# sources it needs, writes a seed corpus (valid qcow2 images made with `lodge img create`/imgio,
# and well-formed rings), and runs each target for a bounded time. Any crash, leak, sanitizer
# report or timeout fails the test; the reproducer is left in the output folder.
#   run.sh SRCDIR OUTDIR LODGE IMGIO [SECONDS]
set -uo pipefail
src=$1 out=$2 lodge=$3 imgio=$4 secs=${5:-${LODGE_FUZZ_SECONDS:-30}}
clang=${CLANG:-clang}
if ! command -v "$clang" >/dev/null; then
    echo "SKIP: clang not found (scripts/deps.sh installs it)"
    exit 77
fi
mkdir -p "$out"
cflags=(-std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
    -D_GNU_SOURCE -I"$src" -Wall -Wextra)
log="$out/build.log"
build() { # name, sources...
    local name=$1
    shift
    if ! "$clang" "${cflags[@]}" -o "$out/$name" "$@" -lz -lpthread >"$log" 2>&1; then
        if grep -q "fuzzer" "$log" && grep -qi "cannot find\|not found\|unsupported" "$log"; then
            echo "SKIP: clang has no libFuzzer runtime (install libclang-rt-dev)"
            cat "$log"
            exit 77
        fi
        echo "FAIL: building $name"
        cat "$log"
        exit 1
    fi
}
build fuzz_qcow2 "$src/tests/fuzz/fuzz_qcow2.c" \
    "$src"/snapshot/{image,raw,qcow2,qcow2_refcount,vmdk,vdi}.c "$src/core/log.c"
build fuzz_virtq "$src/tests/fuzz/fuzz_virtq.c" "$src/devices/virtio/virtqueue.c" \
    "$src/core/guestmem.c" "$src/core/log.c"

# Seeds: qcow2 images (small clusters so they stay small), with data, zero clusters and a
# backing reference; plus a few rings.
seeds="$out/seeds-qcow2"
rm -rf "$seeds" && mkdir -p "$seeds"
"$lodge" img create -f qcow2 -o cluster_size=512 "$seeds/empty.qcow2" 1M >/dev/null
cp "$seeds/empty.qcow2" "$seeds/data.qcow2"
"$imgio" "$seeds/data.qcow2" write 0 4096 3
"$imgio" "$seeds/data.qcow2" write 600000 1000 5
"$imgio" "$seeds/data.qcow2" zero 1024 512
"$lodge" img create -f qcow2 -o cluster_size=512 -b empty.qcow2 "$seeds/overlay.qcow2" \
    >/dev/null
"$imgio" "$seeds/overlay.qcow2" write 512 512 9
for f in "$seeds"/*.qcow2; do
    [ "$(stat -c %s "$f")" -le 65536 ] || rm -f "$f"
done
if [ -z "$(ls "$seeds")" ]; then
    echo "FAIL: no qcow2 seed small enough"
    exit 1
fi
vseeds="$out/seeds-virtq"
rm -rf "$vseeds" && mkdir -p "$vseeds"
python3 - "$vseeds" <<'PY'
import os, struct, sys
out = sys.argv[1]
def seed(name, qlog, desc, avail, used, flags, descs, avail_ring, ram_extra=b"", table=()):
    hdr = bytes([0, qlog]) + struct.pack("<HHH", desc, avail, used) + bytes([flags]) + bytes(7)
    ram = bytearray(65536)
    for i, (addr, ln, fl, nxt) in enumerate(descs):
        struct.pack_into("<QIHH", ram, desc + 16 * i, addr, ln, fl, nxt)
    for i, (addr, ln, fl, nxt) in enumerate(table):  # an indirect table at 0x4000
        struct.pack_into("<QIHH", ram, 0x4000 + 16 * i, addr, ln, fl, nxt)
    struct.pack_into("<HH", ram, avail, 0, len(avail_ring))
    for i, h in enumerate(avail_ring):
        struct.pack_into("<H", ram, avail + 4 + 2 * i, h)
    ram[0x8000:0x8000 + len(ram_extra)] = ram_extra
    # Trailing zero RAM adds nothing the fuzzer needs: cut it.
    body = bytes(ram).rstrip(b"\0")
    open(os.path.join(out, name), "wb").write(hdr + body)
# A read then write chain, an indirect table, and a loop.
seed("chain", 4, 0x1000, 0x2000, 0x3000, 0,
     [(0x8000, 16, 1, 1), (0x9000, 512, 2, 0)], [0], b"hello")
seed("indirect", 4, 0x1000, 0x2000, 0x3000, 1,
     [(0x4000, 32, 4, 0)], [0], table=[(0x8000, 16, 1, 1), (0x9000, 64, 2, 0)])
seed("loop", 3, 0x1000, 0x2000, 0x3000, 0,
     [(0x8000, 8, 1, 1), (0x8000, 8, 1, 0)], [0, 1])
PY
fail=0
run() { # name, corpus dir
    local name=$1 corpus=$2
    mkdir -p "$out/corpus-$name" "$out/crash-$name"
    echo "--- $name: ${secs}s ---"
    if (cd "$out/crash-$name" && "$out/$name" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=1024 -max_len=65552 -print_final_stats=1 "$out/corpus-$name" "$corpus") \
        >"$out/$name.log" 2>&1; then
        tail -n 12 "$out/$name.log"
        echo "ok: $name"
    else
        tail -n 60 "$out/$name.log"
        echo "FAIL: $name (reproducer in $out/crash-$name)"
        fail=1
    fi
}
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run fuzz_qcow2 "$seeds"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run fuzz_virtq "$vseeds"
exit $fail
