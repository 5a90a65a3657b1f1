#!/usr/bin/env bash
# Pointer input reaches a Linux guest: the Debian kernel loads virtio_input, evdev and psmouse
# (scripts/input.sh); this script injects events through the control socket
# (`lodge ctl SOCK input JSON`) and checks the evdev events the guest decoded:
#   tablet: abs x=16384 arrives as EV_ABS ABS_X 16384, buttons as BTN_LEFT, wheel as REL_WHEEL
#   mouse:  PS/2 relative motion through the psmouse driver (REL_X, REL_Y, BTN_LEFT, wheel)
#   input.sh LODGE ACCEL CPUS
set -uo pipefail
lodge=$1 accel=$2 cpus=$3
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${LODGE_GUEST_KERNEL:-}" ] || [ ! -f "${LODGE_GUEST_KERNEL:-}" ]; then
    env_file=$("$here/kit.sh") || { echo "SKIP: test guest kit unavailable"; exit 77; }
    # shellcheck disable=SC1090
    source "$env_file"
fi
work=$(mktemp -d)
vm=""
cleanup() {
    [ -n "$vm" ] && kill "$vm" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
out="$work/serial.log" sock="$work/ctl.sock"
: >"$out"
timeout 600 "$lodge" run --accel "$accel" --cpus "$cpus" --mem 256M --display none \
    --ctl "$sock" --tablet on --kernel "$LODGE_GUEST_KERNEL" --initrd "$LODGE_GUEST_INITRD" \
    --serial file:"$out" --append "console=ttyS0 quiet lodge.test=input" </dev/null \
    >"$work/lodge.log" 2>&1 &
vm=$!

wait_for() { # text seconds
    local i=0
    while [ $i -lt $(($2 * 10)) ]; do
        grep -qF -- "$1" "$out" && return 0
        kill -0 "$vm" 2>/dev/null || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
fail=0
send() {
    if ! "$lodge" ctl "$sock" input "$1"; then
        echo "FAIL: lodge ctl input $1"
        fail=1
    fi
}
if wait_for LODGE-INPUT-READY 400; then
    send '{"type":"abs","x":16384,"y":8192,"buttons":1}'
    send '{"type":"abs","x":32767,"y":0,"buttons":0,"wheel":-1}'
    send '{"type":"mouse","dx":10,"dy":-5,"buttons":1}'
    send '{"type":"mouse","dx":0,"dy":0,"buttons":0,"wheel":1}'
    # Bad values get an error reply (exit status 1), the VM keeps running.
    if "$lodge" ctl "$sock" input '{"type":"abs","x":40000,"y":0}' 2>"$work/err"; then
        echo "FAIL: x=40000 was accepted"
        fail=1
    else
        echo "ok: x=40000 refused: $(cat "$work/err")"
    fi
else
    echo "FAIL: the guest never said LODGE-INPUT-READY"
    fail=1
fi
wait_for LODGE-TEST-EXIT 120
wait "$vm"
rc=$?
vm=""
echo "--- guest console ---"
cat "$out"
echo "--- lodge (exit status $rc) ---"
cat "$work/lodge.log"

expect() { # what, line
    if grep -qxF -- "$2" <(tr -d '\r' <"$out"); then
        echo "ok: $1"
    else
        echo "FAIL: $1 (no line '$2')"
        fail=1
    fi
}
# Linux event codes: EV_KEY 1, EV_REL 2, EV_ABS 3; BTN_LEFT 272, REL_X 0, REL_Y 1, REL_WHEEL 8.
expect "tablet ABS_X 16384" "LODGE-EV tablet 3 0 16384"
expect "tablet ABS_Y 8192" "LODGE-EV tablet 3 1 8192"
expect "tablet BTN_LEFT down" "LODGE-EV tablet 1 272 1"
expect "tablet ABS_X 32767" "LODGE-EV tablet 3 0 32767"
expect "tablet ABS_Y 0" "LODGE-EV tablet 3 1 0"
expect "tablet BTN_LEFT up" "LODGE-EV tablet 1 272 0"
expect "tablet wheel down" "LODGE-EV tablet 2 8 -1"
expect "PS/2 REL_X 10" "LODGE-EV mouse 2 0 10"
expect "PS/2 REL_Y -5 (up)" "LODGE-EV mouse 2 1 -5"
expect "PS/2 BTN_LEFT down" "LODGE-EV mouse 1 272 1"
expect "PS/2 BTN_LEFT up" "LODGE-EV mouse 1 272 0"
expect "PS/2 wheel up (IntelliMouse)" "LODGE-EV mouse 2 8 1"
expect "guest test passed" "LODGE-TEST-EXIT=0"
[ $rc -eq 0 ] || { echo "FAIL: lodge run exit status $rc"; fail=1; }
exit $fail
