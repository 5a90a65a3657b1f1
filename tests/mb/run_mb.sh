#!/bin/bash
# End-to-end tests of multiboot boot, the test-exit device and the debug console
# through `lodge run`.
#
# usage: run_mb.sh cli|boot LODGE DIR
#   DIR holds the assembled kernels (tests/mb/meson.build builds them).
#   cli:  malformed kernels and options: one line on stderr and exit status 2 each.
#   boot: the ELF32 and a.out-kludge kernels report what the loader gave them through
#         --debugcon file:PATH and end with a chosen status through --device test-exit;
#         run on kvm (skipped when /dev/kvm is unusable) and on soft (skipped, with the
#         reason, only when the soft engine cannot run a trivial real-mode --bios image).
# Exit 0 pass, 1 fail, 77 skipped.
set -uo pipefail

mode=$1
lodge=$2
dir=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! "$lodge" run --help >/dev/null 2>&1; then
    echo "skipped: this lodge has no 'run' command yet"
    exit 77
fi

failed=0
fail() {
    echo "FAIL $*"
    failed=1
}

# Module files and their expected report lines.
printf 'first module' >"$tmp/m1.txt"
printf 'second' >"$tmp/m2.txt"

# ---- cli ---------------------------------------------------------------------------------
# expect_error NAME SUBSTRING ARGS...: exit 2, exactly one stderr line holding SUBSTRING.
expect_error() {
    local name=$1 want=$2 rc lines
    shift 2
    timeout 60 "$lodge" run --accel "$cli_accel" --mem 32M --serial none "$@" </dev/null \
        >"$tmp/out" 2>"$tmp/err"
    rc=$?
    lines=$(wc -l <"$tmp/err")
    if [ "$rc" != 2 ]; then
        fail "$name: exit status $rc, expected 2 ($(head -c 300 "$tmp/err"))"
    elif [ "$lines" != 1 ]; then
        fail "$name: $lines lines on stderr, expected 1:"
        cat "$tmp/err"
    elif ! grep -qF -- "$want" "$tmp/err"; then
        fail "$name: stderr '$(cat "$tmp/err")' lacks '$want'"
    else
        echo "ok $name"
    fi
}

run_cli() {
    # Image errors come before the engine starts; device errors after it, so pick one
    # that can start here.
    cli_accel=soft
    if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
        cli_accel=kvm
    fi
    head -c 8192 /dev/zero >"$tmp/big.bin"
    expect_error "bad checksum" \
        "bad_checksum.bin: multiboot header checksum is wrong" \
        --kernel "$dir/bad_checksum.bin"
    expect_error "segment outside RAM" \
        "outside_ram.bin: segment 0x10000000-0x" \
        --kernel "$dir/outside_ram.bin"
    expect_error "unsupported required flag" \
        "unsupported_flag.bin: multiboot header requires features this loader lacks (flags 0x8" \
        --kernel "$dir/unsupported_flag.bin"
    expect_error "overlapping ELF segments" \
        "mb_overlap.elf: segments at 0x100000 and 0x100800 overlap" \
        --kernel "$dir/mb_overlap.elf"
    expect_error "module overlapping the kernel" \
        "big.bin: module does not fit in guest RAM without overlapping the kernel" \
        --kernel "$dir/ram_filler.bin" --initrd "$tmp/big.bin"
    expect_error "missing module" \
        "nope.bin: No such file or directory" \
        --kernel "$dir/mb_elf.elf" --initrd "$tmp/m1.txt,$tmp/nope.bin arg"
    expect_error "bad --device" "--device: unknown device 'e1000'" \
        --kernel "$dir/mb_elf.elf" --device e1000
    expect_error "bad test-exit size" "--device: size '9' is not 1, 2, 3 or 4" \
        --kernel "$dir/mb_elf.elf" --device test-exit,size=9
    expect_error "test-exit port clash" "ports 0x3f8-0x3fb are taken by com1" \
        --kernel "$dir/mb_elf.elf" --device test-exit,iobase=0x3f8
    expect_error "bad --debugcon" "--debugcon: unknown sink 'unix:/x'" \
        --kernel "$dir/mb_elf.elf" --debugcon unix:/x
}

# ---- boot --------------------------------------------------------------------------------
mmap_32m='mmap 00000000:00000000 00000000:0009fc00 1
mmap 00000000:0009fc00 00000000:00000400 2
mmap 00000000:000e0000 00000000:00020000 2
mmap 00000000:00100000 00000000:01f00000 1
mmap 00000000:fec00000 00000000:00400000 2'
head_32m='magic=2badb002
cr0.pe=1 cr0.pg=0 if=0 vm=0 a20=1
cs ds ss=0008 0010 0010
flags=0000024d
mem_lower=0000027f mem_upper=00007c00'

expect_elf="$head_32m
cmdline=hello  world
loader=Lodge
$mmap_32m
mods=2
mod 0 cmdline=arg1 arg2 aligned=1 data=[first module]
mod 1 cmdline= aligned=1 data=[second]
bye"

expect_aout="$head_32m
cmdline=
loader=Lodge
$mmap_32m
mods=0
bye"

# expect_boot ACCEL NAME STATUS EXPECTED ARGS...
expect_boot() {
    local accel=$1 name=$2 status=$3 want=$4 rc
    shift 4
    rm -f "$tmp/dbg"
    timeout 120 "$lodge" run --accel "$accel" --mem 32M --serial none --device test-exit \
        --debugcon "file:$tmp/dbg" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" != "$status" ]; then
        fail "--accel $accel $name: exit status $rc, expected $status"
        tail -5 "$tmp/err"
    elif [ "$(cat "$tmp/dbg" 2>/dev/null)" != "$want" ]; then
        fail "--accel $accel $name: debug port output differs:"
        diff <(printf '%s\n' "$want") "$tmp/dbg"
    else
        echo "ok --accel $accel $name"
    fi
}

ran=0
run_engine() {
    local accel=$1
    ran=$((ran + 1))
    expect_boot "$accel" "ELF32 kernel" 33 "$expect_elf" --kernel "$dir/mb_elf.elf" \
        --append "hello  world" --initrd "$tmp/m1.txt arg1 arg2,$tmp/m2.txt"
    expect_boot "$accel" "a.out kludge kernel" 85 "$expect_aout" --kernel "$dir/mb_aout.bin"
}

run_boot() {
    if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
        run_engine kvm
    else
        echo "skipped --accel kvm: /dev/kvm is missing or not read-write for this user"
    fi
    local out rc
    out=$(timeout 60 "$lodge" run --accel soft --bios "$dir/rm_probe.bin" --serial stdio \
        </dev/null 2>"$tmp/probe_err")
    rc=$?
    if [ "$rc" = 0 ] && [ "$(printf '%s' "$out" | tr -d '\r')" = "ok" ]; then
        run_engine soft
    else
        echo "skipped --accel soft: it cannot run a trivial real-mode --bios image yet" \
            "(status $rc, output '$out': $(head -c 200 "$tmp/probe_err"))"
    fi
    if [ "$ran" = 0 ]; then
        exit 77
    fi
}

case "$mode" in
cli) run_cli ;;
boot) run_boot ;;
*)
    echo "usage: run_mb.sh cli|boot LODGE DIR" >&2
    exit 2
    ;;
esac
exit "$failed"
