#!/bin/sh
# End-to-end `lodge run --bios` on one engine with the test firmware from
# guests/machine.asm: serial output, ACPI power-off, resets through 0xCF9 and the
# keyboard controller (with and without --no-reboot), triple fault, serial backends.
# usage: run_bios.sh LODGE ENGINE HELLO.bin CF9.bin KBD.bin TRIPLE.bin ECHO.bin
set -u
LODGE=$1 ENGINE=$2 HELLO=$3 CF9=$4 KBD=$5 TRIPLE=$6 ECHO=$7
if [ "$ENGINE" = kvm ] && ! { [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
    echo "skipped: /dev/kvm is not usable here"
    exit 77
fi
T=$(mktemp -d /tmp/lodge-bios.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
fails=0
: >"$T/in"

# check NAME WANT_STATUS WANT_STDOUT ARGS...: run lodge with a time limit, stdin from
# $T/in (empty unless a test fills it)
check() {
    name=$1 want_rc=$2 want_out=$3
    shift 3
    timeout 60 "$LODGE" run --accel "$ENGINE" "$@" <"$T/in" >"$T/out" 2>"$T/err"
    rc=$?
    printf '%b' "$want_out" >"$T/want"
    if [ "$rc" -ne "$want_rc" ] || ! cmp -s "$T/out" "$T/want"; then
        echo "FAIL: $ENGINE $name: status $rc (want $want_rc), stdout:"
        sed 's/^/    | /' "$T/out"
        sed 's/^/    stderr: /' "$T/err"
        fails=$((fails + 1))
    else
        echo "ok: $ENGINE $name"
    fi
}

check "hello + S5 power-off" 0 'hello\n' --bios "$HELLO"
check "two vCPUs" 0 'hello\n' --bios "$HELLO" --cpus 2 --mem 64M
check "serial none" 0 '' --bios "$HELLO" --serial none
check "serial to file" 0 '' --bios "$HELLO" --serial "file:$T/com1"
if [ "$(cat "$T/com1" 2>/dev/null)" != hello ]; then
    echo "FAIL: $ENGINE serial file holds '$(cat "$T/com1" 2>/dev/null)'"
    fails=$((fails + 1))
fi
check "0xCF9 reset reboots" 0 'boot\nboot\nsecond\n' --bios "$CF9"
check "0xCF9 reset with --no-reboot" 0 'boot\n' --bios "$CF9" --no-reboot
check "keyboard controller reset reboots" 0 'boot\nboot\nsecond\n' --bios "$KBD"
check "keyboard controller reset with --no-reboot" 0 'boot\n' --bios "$KBD" --no-reboot
check "triple fault is an error" 1 '' --bios "$TRIPLE"
if ! grep -q '^RIP=' "$T/err" || ! grep -q '^lodge: vCPU 0: ' "$T/err"; then
    echo "FAIL: $ENGINE triple fault report lacks the exit reason or registers"
    fails=$((fails + 1))
fi
if [ "$ENGINE" = soft ] && ! grep -q 'triple fault' "$T/err"; then
    echo "FAIL: soft triple fault not named in the report"
    fails=$((fails + 1))
fi

# Serial input: stdin -> UART RX (a 40-byte line overruns the 16-byte FIFO unless the
# host side waits for the guest), then the quit escape Ctrl-A x.
printf '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-=+.q' >"$T/in"
check "serial input with flow control" 0 '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-=+.q' \
    --bios "$ECHO"
# The escape acts when typed, so give the guest time to echo what came before it.
{ printf 'ab\001\001c'; sleep 1; printf '\001x'; } |
    timeout 60 "$LODGE" run --accel "$ENGINE" --bios "$ECHO" >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -ne 0 ] || [ "$(od -An -c "$T/out" | tr -d ' \n')" != 'ab001c' ]; then
    echo "FAIL: $ENGINE Ctrl-A Ctrl-A sends Ctrl-A, Ctrl-A x quits: status $rc, stdout:"
    od -c "$T/out" | sed 's/^/    | /'
    fails=$((fails + 1))
else
    echo "ok: $ENGINE Ctrl-A Ctrl-A sends Ctrl-A, Ctrl-A x quits"
fi

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
exit 0
