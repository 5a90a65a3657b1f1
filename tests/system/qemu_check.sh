#!/bin/bash
# Developer aid, NOT a registered test: run the system test kernels under QEMU TCG and diff
# their transcripts with expected/*.txt, to cross-check expectations while writing them.
# QEMU 7.2 TCG is known to differ from the SDM (and from expected/) in: data-segment limit
# and type checks (exc, priv: "write through CS", "segment limit", the #GP/#DE priority
# case) and the P bit of reserved-bit page faults (paging, pae, lm: 0x8/0xa for 0x9/0xb).
#
# usage: qemu_check.sh KERNEL_DIR [TEST...]      (default: every expected/*.txt)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$1
shift
if ! command -v qemu-system-x86_64 >/dev/null; then
    echo "qemu-system-x86_64 is not installed"
    exit 77
fi
tests=("$@")
if [ ${#tests[@]} = 0 ]; then
    for f in "$here"/expected/*.txt; do
        tests+=("$(basename "$f" .txt)")
    done
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for t in "${tests[@]}"; do
    smp=1
    case "$t" in
    smp*) smp=2 ;;
    esac
    timeout 60 qemu-system-x86_64 -accel tcg -m 32 -smp "$smp" -display none -serial none \
        -monitor none -kernel "$dir/$t.bin" -debugcon "file:$tmp/$t.out" \
        -device isa-debug-exit,iobase=0xf4,iosize=4 </dev/null
    rc=$?
    echo "== $t: qemu exit status $rc (33 expected)"
    diff -u "$here/expected/$t.txt" "$tmp/$t.out"
done
