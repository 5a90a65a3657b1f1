#!/bin/bash
# Run one guest-level system test kernel and compare its debug console transcript.
#
# usage: run.sh LODGE ENGINE TEST [KERNEL_DIR]
#   LODGE       the lodge executable
#   ENGINE      soft or kvm (passed to --accel)
#   TEST        name: KERNEL_DIR/TEST.bin is the kernel, expected/TEST.txt (next to this
#               script) the transcript it must print byte for byte
#   KERNEL_DIR  where meson put the assembled kernels (default: this script's directory)
# The kernel must end through --device test-exit with value 0x10 (exit status 33).
# Exit 0 pass, 1 fail, 77 skip: kvm only, when /dev/kvm is unusable or the host's KVM
# (a nested emulator here) reports an emulation failure / internal error and what the
# guest printed until then matches the start of the expected transcript. The soft
# engine is never skipped.
set -uo pipefail

lodge=$1
engine=$2
name=$3
here=$(cd "$(dirname "$0")" && pwd)
dir=${4:-$here}
kernel="$dir/$name.bin"
expected="$here/expected/$name.txt"
cpus=1
case "$name" in
smp*) cpus=2 ;;
esac

if [ "$engine" = kvm ] && ! { [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
    echo "skipped: /dev/kvm is missing or not read-write for this user"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

timeout "${SYSTEST_TIMEOUT:-240}" "$lodge" run --accel "$engine" --mem 32M --cpus "$cpus" \
    --serial none --kernel "$kernel" --debugcon "file:$tmp/out" --device test-exit \
    </dev/null >"$tmp/stdout" 2>"$tmp/stderr"
rc=$?
touch "$tmp/out"
if [ "$engine" = kvm ] && [ "$rc" = 1 ] &&
    grep -qiE 'internal error|emulation failure' "$tmp/stderr"; then
    # What the guest printed before the host gave up must still be a prefix of the
    # expected transcript: a difference there is a real failure, not a host limit.
    size=$(stat -c %s "$tmp/out")
    if ! cmp -s -n "$size" "$expected" "$tmp/out"; then
        echo "FAIL $name on $engine: transcript before the emulation failure differs:"
        diff -u "$expected" "$tmp/out" | head -60
        exit 1
    fi
    echo "skipped: the host's KVM could not run this guest:"
    grep -iE 'internal error|emulation failure' "$tmp/stderr" | head -3
    echo "transcript so far (matches the expected one):"
    cat "$tmp/out"
    exit 77
fi
# 32-bit and PAE paging on kvm_pvm (a software "pagetable-based VM" KVM, no VT-x/AMD-V):
# its MOV CR0 refuses PG without EFER.LME with #GP (QEMU -accel kvm, any -cpu, gets the same
# #GP at the same instruction). The handler then has no TRY to resume at, so the kernel
# triple-faults; Lodge and QEMU print the same transcript. Long mode (`lm`) is unaffected.
# Skip only when the transcript is the expected one up to that "exc 0d err 00000000" line.
if [ "$engine" = kvm ] && [ "$rc" != 33 ] && [ -d /sys/module/kvm_pvm ] &&
    { [ "$name" = paging ] || [ "$name" = pae ]; } &&
    tail -n 1 "$tmp/out" | grep -qE '^exc 0d err 00000000 at \+[0-9a-f]{8} cpl 0$'; then
    head -n -1 "$tmp/out" >"$tmp/before"
    size=$(stat -c %s "$tmp/before")
    if cmp -s -n "$size" "$expected" "$tmp/before"; then
        echo "skipped: this host's KVM (kvm_pvm) cannot enable paging without EFER.LME" \
            "(MOV CR0.PG -> #GP; not a Lodge bug, QEMU -accel kvm gets the same #GP)"
        echo "transcript (the expected one up to the #GP line):"
        cat "$tmp/out"
        exit 77
    fi
fi
failed=0
if [ "$rc" != 33 ]; then
    echo "FAIL $name on $engine: exit status $rc, expected 33 (test-exit 0x10)"
    tail -20 "$tmp/stderr"
    failed=1
fi
if ! cmp -s "$expected" "$tmp/out"; then
    diff -u "$expected" "$tmp/out" | head -60
    echo "FAIL $name on $engine: transcript differs from $expected"
    failed=1
fi
if [ "$failed" = 0 ]; then
    echo "ok $name on $engine"
fi
exit "$failed"
