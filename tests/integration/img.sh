#!/bin/sh
# Disk images end to end: images made with `lodge img`, data written and read back
# through snapshot/image.h (imgio), and qemu-img as the outside checker (check,
# compare, and making VMDK/VDI inputs). qemu-img steps are skipped with a message
# when it is missing. Ends with a crash-consistency run: a writer SIGKILLed at
# random moments must leave an image qemu-img check finds free of corruption, with
# every acknowledged (flushed) write readable.
# usage: img.sh PATH/TO/lodge PATH/TO/imgio [CRASH_ROUNDS]
set -u
LODGE=${1:?usage: img.sh PATH/TO/lodge PATH/TO/imgio}
IMGIO=${2:?usage: img.sh PATH/TO/lodge PATH/TO/imgio}
ROUNDS=${3:-12}
LODGE=$(readlink -f "$LODGE")
IMGIO=$(readlink -f "$IMGIO")
T=$(mktemp -d /tmp/lodge-img.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
cd "$T" || exit 1
fails=0
QEMU_IMG=$(command -v qemu-img || true)
[ -n "$QEMU_IMG" ] || echo "note: qemu-img not found; skipping the qemu-img cross-checks"

ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
run() { # NAME CMD... : expect success
    name=$1; shift
    if "$@" >"$T/out" 2>&1; then ok "$name"; else bad "$name"; cat "$T/out"; fi
}
status() { # NAME WANT CMD... : expect exit status WANT
    name=$1; want=$2; shift 2
    "$@" >"$T/out" 2>&1; got=$?
    cp "$T/out" "$T/last"
    if [ "$got" = "$want" ]; then ok "$name"; else bad "$name (exit $got, want $want)"; cat "$T/out"; fi
}
qcheck() { # qemu-img check must find no corruption (leaks, exit 3, are fine)
    [ -n "$QEMU_IMG" ] || return 0
    "$QEMU_IMG" check "$1" >"$T/qc" 2>&1; rc=$?
    if [ $rc = 0 ] || [ $rc = 3 ]; then ok "qemu-img check $1"; else bad "qemu-img check $1 ($rc)"; cat "$T/qc"; fi
}
qcompare() {
    [ -n "$QEMU_IMG" ] || return 0
    run "qemu-img compare $1 $2" "$QEMU_IMG" compare "$1" "$2"
}
# the same writes into an image and a raw reference
both() { # IMG REF OFF LEN SEED
    "$IMGIO" "$1" write "$3" "$4" "$5" && "$IMGIO" "$2" write "$3" "$4" "$5"
}

# --- create, write, read back, cross-check -----------------------------------------
run "create raw" "$LODGE" img create -f raw ref.raw 24M
for spec in "64k:cluster_size=64K" "512:cluster_size=512" "v2:compat=0.10,cluster_size=4K"; do
    tag=${spec%%:*}; opts=${spec#*:}
    img=a-$tag.qcow2
    cp ref.raw ref-$tag.raw
    run "create qcow2 $tag" "$LODGE" img create -f qcow2 -o "$opts" "$img" 24M
    # unaligned writes across cluster boundaries, overwrites, zeroes, a write at the end
    # unaligned writes across cluster boundaries, overwrites, zeroes, a write at the end
    wfail=0
    for w in '1 70000 11' '65530 12 12' '4095 8194 13' '1000000 3000000 14' \
             '2000000 10 15' '25165000 824 16' '12582912 4194304 17' '300 1 18'; do
        set -- $w
        both "$img" "ref-$tag.raw" "$1" "$2" "$3" || wfail=1
    done
    for z in '1500000 1000000' '12582912 4194304'; do
        set -- $z
        "$IMGIO" "$img" zero "$1" "$2" && "$IMGIO" "ref-$tag.raw" zero "$1" "$2" || wfail=1
    done
    [ $wfail = 0 ] && ok "writes $tag" || bad "writes $tag"
    run "read back $tag" "$IMGIO" "$img" read 4095 8194 13
    run "zeroes read $tag" "$IMGIO" "$img" iszero 1500000 1000000
    status "lodge img check $tag" 0 "$LODGE" img check "$img"
    qcheck "$img"
    qcompare "$img" "ref-$tag.raw"
done

# --- backing chains: relative names, zero clusters over backing, COW --------------
mkdir -p chain sub
run "chain base" "$LODGE" img create -f raw chain/base.raw 4M
run "chain base data" "$IMGIO" chain/base.raw write 0 4194304 21
run "chain mid" "$LODGE" img create -f qcow2 -b base.raw -F raw chain/mid.qcow2
run "chain top" "$LODGE" img create -f qcow2 -b mid.qcow2 chain/top.qcow2
run "chain mid write" "$IMGIO" chain/mid.qcow2 write 65536 100000 22
run "chain top write" "$IMGIO" chain/top.qcow2 write 131000 10 23
run "chain top zero" "$IMGIO" chain/top.qcow2 zero 1048576 1048576
(cd sub && run "chain read base via top (other cwd)" "$IMGIO" ../chain/top.qcow2 read 0 65536 21)
run "chain read mid via top" "$IMGIO" chain/top.qcow2 read 65536 65464 22
run "chain read top COW cluster" sh -c "$IMGIO chain/top.qcow2 read 131000 10 23 &&
    $IMGIO chain/top.qcow2 read 131010 34526 22 && $IMGIO chain/top.qcow2 read 165536 100 21"
run "chain zero over backing" "$IMGIO" chain/top.qcow2 iszero 1048576 1048576
run "chain info" sh -c "$LODGE img info --json chain/top.qcow2 | grep -q '\"backing-chain\": \\[{\"filename\": \"chain/mid.qcow2\"'"
qcheck chain/top.qcow2
if [ -n "$QEMU_IMG" ]; then
    run "qemu-img reads our chain" sh -c "$QEMU_IMG convert -O raw chain/top.qcow2 qtop.raw &&
        $LODGE img convert chain/top.qcow2 ltop.raw && $QEMU_IMG compare qtop.raw ltop.raw"
fi

# --- convert (plain and compressed) -------------------------------------------------
run "convert qcow2 -> raw" "$LODGE" img convert a-64k.qcow2 conv.raw
run "convert -> raw same data" cmp conv.raw ref-64k.raw
run "convert -c" "$LODGE" img convert -c -O qcow2 a-64k.qcow2 conv-c.qcow2
status "check compressed" 0 "$LODGE" img check conv-c.qcow2
run "read compressed" "$IMGIO" conv-c.qcow2 read 1000000 500000 14
qcheck conv-c.qcow2
qcompare conv-c.qcow2 ref-64k.raw
run "write over compressed" "$IMGIO" conv-c.qcow2 write 1000100 5 31
run "neighbours survive" sh -c "$IMGIO conv-c.qcow2 read 1000000 100 14 && $IMGIO conv-c.qcow2 read 1000105 200000 14"
qcheck conv-c.qcow2
run "convert chain -> standalone qcow2" "$LODGE" img convert -O qcow2 chain/top.qcow2 flat.qcow2
if [ -n "$QEMU_IMG" ]; then
    qcompare flat.qcow2 chain/top.qcow2
    run "qemu-img compressed input" "$QEMU_IMG" convert -c -O qcow2 ref-512.raw qc.qcow2
    run "convert from qemu compressed" "$LODGE" img convert qc.qcow2 qc.raw
    run "qemu compressed data" cmp qc.raw ref-512.raw
    for f in "vmdk:subformat=monolithicSparse" "vmdk:subformat=streamOptimized" "vdi:static=off" "vdi:static=on"; do
        fmt=${f%%:*}; o=${f#*:}; n=in-${o#*=}.$fmt
        if "$QEMU_IMG" convert -O "$fmt" -o "$o" ref-64k.raw "$n" >/dev/null 2>&1; then
            run "convert from $fmt ($o)" "$LODGE" img convert "$n" "$n.raw"
            qcompare "$n.raw" ref-64k.raw
            run "convert $fmt -> qcow2" "$LODGE" img convert -O qcow2 "$n" "$n.qcow2"
            qcompare "$n.qcow2" "$n"
        else
            echo "skip $fmt $o: qemu-img cannot make it"
        fi
    done
fi

# --- images qemu-img made: other refcount widths, preallocation, snapshots ----------
if [ -n "$QEMU_IMG" ]; then
    for rb in 1 8 64; do
        "$QEMU_IMG" create -q -f qcow2 -o refcount_bits=$rb,cluster_size=4096 rb$rb.qcow2 8M
        "$LODGE" img create rb$rb.raw 8M
        run "refcount_bits=$rb writes" sh -c "$IMGIO rb$rb.qcow2 write 1000 3000000 71 &&
            $IMGIO rb$rb.raw write 1000 3000000 71 && $IMGIO rb$rb.qcow2 zero 5000 100000 &&
            $IMGIO rb$rb.raw zero 5000 100000"
        qcheck rb$rb.qcow2
        qcompare rb$rb.qcow2 rb$rb.raw
    done
    "$QEMU_IMG" create -q -f qcow2 -o preallocation=metadata pm.qcow2 8M
    run "preallocated metadata" sh -c "$IMGIO pm.qcow2 write 100 200000 72 &&
        $IMGIO pm.qcow2 zero 300000 70000 && $IMGIO pm.qcow2 iszero 300000 70000 &&
        $IMGIO pm.qcow2 read 100 200000 72"
    qcheck pm.qcow2
    "$QEMU_IMG" create -q -f qcow2 sn.qcow2 8M
    "$IMGIO" sn.qcow2 write 0 300000 73
    "$QEMU_IMG" snapshot -c s1 sn.qcow2
    status "internal snapshots: read-only" 1 "$IMGIO" sn.qcow2 write 100000 10 74
    run "internal snapshots: read" "$IMGIO" sn.qcow2 read 0 300000 73
    status "internal snapshots: check" 0 "$LODGE" img check sn.qcow2
    if "$QEMU_IMG" create -q -f qcow2 -o extended_l2=on ext.qcow2 8M 2>/dev/null; then
        status "extended L2 refused" 1 "$IMGIO" ext.qcow2 read 0 1 0
        run "extended L2 message" grep -q "ext.qcow2: qcow2 incompatible features 0x10 (extended L2 entries) not supported" "$T/last"
    fi
fi

# --- resize, commit, rebase -----------------------------------------------------------
run "create small" "$LODGE" img create -f qcow2 -o cluster_size=512 small.qcow2 64K
run "resize grow" "$LODGE" img resize small.qcow2 +20M
run "write past old end" "$IMGIO" small.qcow2 write 20000000 1000000 41
run "resized length" sh -c "$LODGE img info --json small.qcow2 | grep -q '\"virtual-size\": 21037056'"
qcheck small.qcow2
status "qcow2 shrink refused" 1 "$LODGE" img resize --shrink small.qcow2 1M
status "shrink needs --shrink" 2 "$LODGE" img resize ref.raw 1M
run "raw shrink" "$LODGE" img resize --shrink ref.raw 1M

run "commit setup" sh -c "$LODGE img create -f qcow2 cbase.qcow2 4M && $IMGIO cbase.qcow2 write 0 4194304 51 &&
    $LODGE img create -f qcow2 -b cbase.qcow2 ctop.qcow2 && $IMGIO ctop.qcow2 write 70000 200000 52 &&
    $IMGIO ctop.qcow2 zero 2097152 65536"
run "commit" "$LODGE" img commit ctop.qcow2
run "committed data" sh -c "$IMGIO cbase.qcow2 read 70000 200000 52 && $IMGIO cbase.qcow2 read 0 70000 51 &&
    $IMGIO cbase.qcow2 iszero 2097152 65536 && $IMGIO cbase.qcow2 read 2162688 100000 51"
qcheck cbase.qcow2

run "rebase setup" sh -c "$LODGE img create -f raw rb1.raw 4M && $IMGIO rb1.raw write 0 4194304 61 &&
    $LODGE img create -f raw rb2.raw 4M && $IMGIO rb2.raw write 0 2097152 61 &&
    $IMGIO rb2.raw write 2097152 2097152 62 && $LODGE img create -f qcow2 -b rb1.raw rbtop.qcow2 &&
    $IMGIO rbtop.qcow2 write 100 100 63 && $LODGE img convert rbtop.qcow2 rbtop-before.raw"
run "rebase" "$LODGE" img rebase -b rb2.raw rbtop.qcow2
run "rebase keeps content" sh -c "$LODGE img convert rbtop.qcow2 rbtop-after.raw && cmp rbtop-before.raw rbtop-after.raw"
run "rebase new backing name" sh -c "$LODGE img info rbtop.qcow2 | grep -q 'backing file: rb2.raw'"
qcheck rbtop.qcow2
run "rebase to none" "$LODGE" img rebase -b "" rbtop.qcow2
run "standalone keeps content" sh -c "$LODGE img convert rbtop.qcow2 rbtop-none.raw && cmp rbtop-before.raw rbtop-none.raw"

# --- errors: one line naming the file, exit 2 usage / 1 failure ----------------------
status "no subcommand" 2 "$LODGE" img
status "create without size" 2 "$LODGE" img create -f qcow2 x.qcow2
status "bad size" 2 "$LODGE" img create x.raw 12Q
status "bad format" 2 "$LODGE" img create -f qed x.qed 1M
status "missing file" 1 "$LODGE" img info nosuch.qcow2
head -c 4096 /dev/urandom > garbage.bin
status "garbage as qcow2" 1 "$LODGE" img convert -f qcow2 garbage.bin g.raw
run "bad magic message" grep -q "garbage.bin: not a qcow2 image (bad magic)" "$T/last"
cp a-64k.qcow2 broken.qcow2
# L1 table at 0x30000 (cluster 3); point entry 0 far past the end of the file
printf '\200\000\000\000\177\000\000\000' | dd of=broken.qcow2 bs=1 seek=196608 conv=notrunc status=none
status "L2 outside the file" 1 "$IMGIO" broken.qcow2 read 0 512 11
run "L2 outside message" grep -q "broken.qcow2: corrupt qcow2: L2 table offset 0x7f000000 outside the file" "$T/last"
status "check finds it" 1 "$LODGE" img check broken.qcow2
cp a-64k.qcow2 marked.qcow2
printf '\002' | dd of=marked.qcow2 bs=1 seek=79 conv=notrunc status=none
status "corrupt bit: no writes" 1 "$IMGIO" marked.qcow2 write 0 1 1
run "corrupt bit message" grep -q "marked corrupt" "$T/last"
run "corrupt bit: reads" "$IMGIO" marked.qcow2 read 1 299 11
for n in 0 50 72 104 200; do
    head -c $n a-64k.qcow2 > trunc.qcow2
    status "truncated at $n" 1 "$LODGE" img info -f qcow2 trunc.qcow2
done

# leak repair: a leaked cluster (refcount without reference) is counted and fixed
cp a-64k.qcow2 leak.qcow2
sz=$(stat -c %s leak.qcow2)
refblock=$((0x20000))
cl=$(((sz + 65535) / 65536))
printf '\000\001' | dd of=leak.qcow2 bs=1 seek=$((refblock + cl * 2)) conv=notrunc status=none
truncate -s $(((cl + 1) * 65536)) leak.qcow2
status "leak found" 3 "$LODGE" img check leak.qcow2
status "leak repaired" 0 "$LODGE" img check --repair leak.qcow2
status "clean after repair" 0 "$LODGE" img check leak.qcow2
qcheck leak.qcow2

# --- crash consistency --------------------------------------------------------------
# Two images take turns: 4 KiB clusters over a raw backing file (copy-on-write, zero
# clusters over backing), and 512-byte clusters without backing, filled up to just
# below what the first refcount table covers (8 MiB), so the writer soon makes new
# refcount blocks and grows the table.
run "crash setup" sh -c "$LODGE img create -f raw crash-base.raw 4M && $IMGIO crash-base.raw write 0 4194304 1 &&
    $LODGE img create -f qcow2 -o cluster_size=4K -b crash-base.raw crash-a.qcow2 &&
    $LODGE img create -f qcow2 -o cluster_size=512 crash-b.qcow2 12M &&
    $IMGIO crash-b.qcow2 write 0 7864320 9 && printf 'R\nW 0 7864320 9\nF\n' > crash-b.log"
i=1
while [ $i -le "$ROUNDS" ]; do
    if [ $((i % 2)) = 1 ]; then c=a; base=1; else c=b; base=0; fi
    "$IMGIO" crash-$c.qcow2 crash-writer crash-$c.log $((i + 1)) 2>>crash.err &
    pid=$!
    sleep "0.$(( (i * 7919) % 9 + 1 ))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    if [ -n "$QEMU_IMG" ]; then
        "$QEMU_IMG" check crash-$c.qcow2 >"$T/qc" 2>&1; rc=$?
        if [ $rc != 0 ] && [ $rc != 3 ]; then bad "crash round $i: qemu-img check ($rc)"; cat "$T/qc"; fi
    fi
    "$LODGE" img check crash-$c.qcow2 >"$T/lc" 2>&1; rc=$?
    if [ $rc != 0 ] && [ $rc != 3 ]; then bad "crash round $i: lodge img check ($rc)"; cat "$T/lc"; fi
    "$IMGIO" crash-$c.qcow2 crash-verify crash-$c.log $base >"$T/cv-$c" 2>&1 ||
        { bad "crash round $i: verify"; cat "$T/cv-$c"; }
    i=$((i + 1))
done
ok "crash rounds: $ROUNDS; a: $(tail -n 1 "$T/cv-a" 2>/dev/null); b: $(tail -n 1 "$T/cv-b" 2>/dev/null)"
[ -s crash.err ] && { bad "crash writer errors"; cat crash.err; }
rct=$(od -A n -t u1 -j 59 -N 1 crash-b.qcow2 | tr -d ' ')
[ "$ROUNDS" -lt 8 ] || [ "$rct" -gt 1 ] || echo "note: crash-b's refcount table did not grow"

echo "img: $fails failed"
[ $fails = 0 ]
