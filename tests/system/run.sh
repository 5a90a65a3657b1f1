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
# #GP at the same instruction), and the #GP is then misdelivered, so the kernel triple-faults.
# Long mode (the `lm` test) is unaffected. Skip only if the guest got as far as expected.
if [ "$engine" = kvm ] && [ "$rc" != 33 ] && [ -d /sys/module/kvm_pvm ] &&
    { [ "$name" = paging ] || [ "$name" = pae ]; }; then
    size=$(stat -c %s "$tmp/out")
    if cmp -s -n "$size" "$expected" "$tmp/out"; then
        echo "skipped: this host's KVM (kvm_pvm) cannot enable paging without EFER.LME" \
            "(MOV CR0.PG -> #GP; not a Lodge bug, QEMU -accel kvm gets the same #GP)"
        echo "transcript so far (matches the expected one):"
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
