#!/usr/bin/env bash
# The SDL console routes the host pointer (under Xvfb, driven with xdotool) to a Linux guest:
#   tablet: with the guest's virtio_input driver up, moving to window pixel (512,384) of the
#           1024x768 screen arrives as EV_ABS ABS_X 16399 / ABS_Y 16404 (x * 32767 / 1023),
#           a click as BTN_LEFT 1/0, without a grab;
#   ps2:    with --tablet off, the first click grabs (and is not passed on), then a click and
#           motion reach the psmouse driver as BTN_LEFT 1/0 and REL_X/REL_Y.
#   input_sdl.sh LODGE tablet|ps2      Exit 0 pass, 1 fail, 77 skipped.
set -uo pipefail
lodge=$1 mode=$2
here=$(cd "$(dirname "$0")" && pwd)
for tool in Xvfb xdotool; do
    command -v $tool >/dev/null || { echo "skipped: $tool is missing (scripts/deps.sh)"; exit 77; }
done
if [ -z "${LODGE_GUEST_KERNEL:-}" ] || [ ! -f "${LODGE_GUEST_KERNEL:-}" ]; then
    env_file=$("$here/kit.sh") || { echo "SKIP: test guest kit unavailable"; exit 77; }
    # shellcheck disable=SC1090
    source "$env_file"
fi
tmp=$(mktemp -d)
pid="" xpid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$xpid" ] && kill "$xpid" 2>/dev/null && wait "$xpid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
# shellcheck source-path=SCRIPTDIR source=../integration/xvfb.sh
source "$(dirname "$0")/../integration/xvfb.sh"
start_xvfb

out="$tmp/serial.log"
: >"$out"
append="console=ttyS0 quiet lodge.test=input_sdl"
tablet=on
if [ "$mode" = ps2 ]; then
    append="$append lodge.input=ps2"
    tablet=off
fi
timeout 600 "$lodge" run --accel soft --mem 256M --display sdl --name inputsdl \
    --ctl "$tmp/ctl.sock" --tablet $tablet --kernel "$LODGE_GUEST_KERNEL" \
    --initrd "$LODGE_GUEST_INITRD" --serial file:"$out" --append "$append" </dev/null \
    >"$tmp/run.log" 2>&1 &
pid=$!
fail=0
wait_for() { # text seconds
    local i=0
    while [ $i -lt $(($2 * 10)) ]; do
        grep -qF -- "$1" "$out" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
win=""
for _ in $(seq 200); do
    win=$(xdotool search --name '^inputsdl \[' 2>/dev/null | head -1)
    [ -n "$win" ] && break
    sleep 0.05
done
[ -n "$win" ] || { echo "FAIL: no SDL window"; cat "$tmp/run.log"; exit 1; }
if wait_for LODGE-INPUT-READY 400; then
    xdotool windowfocus --sync "$win" 2>/dev/null || xdotool windowfocus "$win"
    if [ "$mode" = tablet ]; then
        xdotool mousemove --window "$win" 512 384
        sleep 0.5
        xdotool click 1
    else
        xdotool mousemove --window "$win" 300 300
        sleep 0.3
        xdotool click 1 # grabs: not passed on
        sleep 0.5
        case $(xdotool getwindowname "$win") in
        *"press Ctrl+Alt to release"*) echo "ok: the click grabbed the mouse" ;;
        *) echo "FAIL: no grab after the first click: $(xdotool getwindowname "$win")"; fail=1 ;;
        esac
        for _ in 1 2 3 4 5; do
            xdotool mousemove_relative -- 20 -10
            sleep 0.2
        done
        xdotool click 1
    fi
else
    echo "FAIL: the guest never said LODGE-INPUT-READY"
    fail=1
fi
wait_for LODGE-INPUT-DONE 120
"$lodge" ctl "$tmp/ctl.sock" quit >/dev/null 2>&1
wait "$pid"
pid=""
echo "--- guest console ---"
cat "$out"
has() { grep -qxF -- "$1" <(tr -d '\r' <"$out"); }
expect() { # what, line
    if has "$2"; then
        echo "ok: $1"
    else
        echo "FAIL: $1 (no line '$2')"
        fail=1
    fi
}
# EV_KEY 1, EV_REL 2, EV_ABS 3; BTN_LEFT 272; REL_X 0, REL_Y 1.
expect "button down" "LODGE-EV 1 272 1"
expect "button up" "LODGE-EV 1 272 0"
if [ "$mode" = tablet ]; then
    expect "ABS_X of pixel 512" "LODGE-EV 3 0 16399"
    expect "ABS_Y of pixel 384" "LODGE-EV 3 1 16404"
    case $(xdotool getwindowname "$win" 2>/dev/null) in
    *"press Ctrl+Alt"*) echo "FAIL: the tablet click grabbed the mouse"; fail=1 ;;
    esac
else
    if grep -q "^LODGE-EV 2 0 [1-9]" <(tr -d '\r' <"$out"); then
        echo "ok: REL_X motion to the right"
    else
        echo "FAIL: no REL_X > 0 from the PS/2 mouse"
        fail=1
    fi
    if grep -q "^LODGE-EV 2 1 -[1-9]" <(tr -d '\r' <"$out"); then
        echo "ok: REL_Y motion upwards"
    else
        echo "FAIL: no REL_Y < 0 from the PS/2 mouse"
        fail=1
    fi
    if grep -q "^LODGE-EV 3 " <(tr -d '\r' <"$out"); then
        echo "FAIL: the PS/2 mouse reported absolute events"
        fail=1
    fi
fi
exit $fail
