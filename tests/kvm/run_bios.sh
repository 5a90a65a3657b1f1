#!/bin/bash
# Runs guest (a) (hello.bin: prints "hello", then ACPI S5 through PM1a_CNT at 0x604)
# as firmware through `lodge run --bios` and checks the serial output and exit status
# 0, on the kvm engine and, when `lodge doctor --json` reports it usable, the soft one.
# Exit 77 (skipped) when neither could run.
#
# usage: run_bios.sh LODGE HELLO_BIN
set -uo pipefail

lodge=$1
img=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! "$lodge" run --help >/dev/null 2>&1; then
    echo "skipped: this lodge has no 'run' command yet"
    exit 77
fi

doctor=$("$lodge" doctor --json 2>/dev/null || true)
json_bool() { # KEY -> true/false/"" from the doctor's one-line JSON
    printf '%s' "$doctor" | grep -o "\"$1\": [a-z]*" | sed 's/.*: //'
}

ran=0
failed=0
run_one() {
    local accel=$1 rc out
    timeout 120 "$lodge" run --accel "$accel" --bios "$img" --serial stdio \
        </dev/null >"$tmp/out" 2>"$tmp/err"
    rc=$?
    out=$(tr -d '\r' <"$tmp/out")
    ran=$((ran + 1))
    if [ "$rc" != 0 ]; then
        echo "FAIL --accel $accel: exit status $rc (expected 0 from the ACPI S5 write)"
        tail -5 "$tmp/err"
        failed=1
    elif [ "$out" != "hello" ]; then
        echo "FAIL --accel $accel: serial output '$out', expected 'hello'"
        failed=1
    else
        echo "ok --accel $accel"
    fi
}

if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ "$(json_bool kvm_usable)" != false ]; then
    run_one kvm
else
    echo "skipped --accel kvm: /dev/kvm unusable"
fi
if [ "$(json_bool soft_usable)" = true ]; then
    run_one soft
else
    echo "skipped --accel soft: the soft engine does not report available"
fi

if [ "$ran" = 0 ]; then
    exit 77
fi
exit "$failed"
