#!/bin/sh
# CLI error handling of `lodge run`: every bad input gives exit status 2 and exactly
# one line "lodge: <thing>: <problem>" on stderr, before any guest runs.
# usage: cli.sh PATH/TO/lodge
set -u
LODGE=${1:?usage: cli.sh PATH/TO/lodge}
T=$(mktemp -d /tmp/lodge-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
fails=0

# put BYTES (printf escapes) at OFFSET of FILE
poke() {
    printf "$3" | dd of="$1" bs=1 seek=$(($2)) conv=notrunc status=none
}

# A synthetic bzImage header: protocol 2.15, 64-bit entry, 4 setup sectors.
mkkernel() {
    head -c 20480 /dev/zero > "$1"
    poke "$1" 0x1f1 '\004'
    poke "$1" 0x1fe '\125\252'
    poke "$1" 0x201 '\152'
    poke "$1" 0x202 'HdrS'
    poke "$1" 0x206 '\017\002'
    poke "$1" 0x211 '\001'
    poke "$1" 0x22c '\377\377\377\177'
    poke "$1" 0x236 '\001\000'
    poke "$1" 0x238 '\377\007\000\000'
    poke "$1" 0x260 '\000\000\100\000'
}

# expect_usage_error NAME ARGS...: exit 2, one stderr line starting "lodge: ".
expect_usage_error() {
    name=$1
    shift
    "$LODGE" "$@" </dev/null >"$T/out" 2>"$T/err"
    rc=$?
    lines=$(wc -l <"$T/err")
    if [ "$rc" -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q '^lodge: [^:]*: ' "$T/err"; then
        echo "FAIL: $name: status $rc, $lines stderr lines:"
        sed 's/^/    /' "$T/err"
        fails=$((fails + 1))
    else
        echo "ok: $name: $(cat "$T/err")"
    fi
}

mkkernel "$T/vmlinuz"
head -c 5000 /dev/urandom > "$T/junk"
cp "$T/vmlinuz" "$T/old"
poke "$T/old" 0x206 '\005\002'
truncate -s 40M "$T/big.initrd"
head -c 4096 /dev/zero > "$T/small.initrd"

expect_usage_error "unknown flag" run --bogus
expect_usage_error "unknown command" frobnicate
expect_usage_error "missing flag value" run --kernel
expect_usage_error "stray argument" run --kernel "$T/vmlinuz" extra
expect_usage_error "nothing to boot" run
expect_usage_error "missing kernel file" run --kernel "$T/nonexistent"
expect_usage_error "missing initrd file" run --kernel "$T/vmlinuz" --initrd "$T/nonexistent"
expect_usage_error "kernel is not a bzImage" run --kernel "$T/junk" --serial none
expect_usage_error "old boot protocol" run --kernel "$T/old" --serial none
expect_usage_error "initrd too big for RAM" run --kernel "$T/vmlinuz" --initrd "$T/big.initrd" \
    --mem 32M --serial none
expect_usage_error "too little memory" run --kernel "$T/vmlinuz" --mem 16M
expect_usage_error "bad size suffix" run --kernel "$T/vmlinuz" --mem 12X
expect_usage_error "size overflow" run --kernel "$T/vmlinuz" --mem 99999999999999G
expect_usage_error "zero cpus" run --kernel "$T/vmlinuz" --cpus 0
expect_usage_error "too many cpus" run --kernel "$T/vmlinuz" --cpus 65
expect_usage_error "unknown engine" run --kernel "$T/vmlinuz" --accel warp
expect_usage_error "unknown serial backend" run --kernel "$T/vmlinuz" --serial tcp:1
expect_usage_error "bad log spec" run --kernel "$T/vmlinuz" --log loud
expect_usage_error "kernel and bios" run --kernel "$T/vmlinuz" --bios "$T/junk"
expect_usage_error "bios too big" run --bios "$T/big.initrd" --serial none

# --help everywhere: status 0, usage on stdout.
for args in "--help" "run --help" "run -h"; do
    # shellcheck disable=SC2086
    if "$LODGE" $args >"$T/out" 2>"$T/err" && grep -q '^usage: lodge' "$T/out"; then
        echo "ok: $args"
    else
        echo "FAIL: $args"
        fails=$((fails + 1))
    fi
done

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
exit 0
