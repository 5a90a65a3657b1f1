#!/usr/bin/env bash
# Benchmark (issue 8): the SDL console under Xvfb (1920x1080 screen), Lodge against QEMU's
# `-display sdl`, both running the same boot-sector guest (guest.asm) through SeaBIOS on the
# stdvga at 1920x1080x32, Lodge with `--accel soft`, QEMU with `-accel tcg`:
#   idle CPU: CPU time (utime + stime from /proc) of the VM process over 10 s while the guest
#             halts and its window, resized to 1920x1080, shows the still screen;
#   latency:  key sent over the control socket (Lodge `input`, QEMU QMP `send-key`) -> the
#             guest's IRQ1 handler repaints a 64x64 square in the framebuffer -> the new colour
#             in the window's pixels (probe.c polls one pixel with XGetImage). Median of N.
# Both include the keyboard path, which is tiny next to a frame period. Needs Xvfb, xdotool,
# nasm, a C compiler with libX11, qemu-system-x86_64. Not part of the test suite.
#   bench/console/run.sh [LODGE] [SAMPLES] [IDLE-SECONDS]
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/bench/console
lodge=${1:-$top/build/lodge}
samples=${2:-20}
idle=${3:-10}
seabios=/usr/share/seabios/bios.bin
for tool in Xvfb xdotool nasm cc qemu-system-x86_64; do
    command -v $tool >/dev/null || { echo "bench: $tool missing" >&2; exit 1; }
done
T=$(mktemp -d /tmp/lodge-bench-con.XXXXXX)
vm=
xvfb=
cleanup() {
    if [ -n "$vm" ]; then kill "$vm" 2>/dev/null; wait "$vm" 2>/dev/null; fi
    if [ -n "$xvfb" ]; then kill "$xvfb" 2>/dev/null; wait "$xvfb" 2>/dev/null; fi
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

nasm -f bin -o "$T/guest.bin" "$here/guest.asm" || exit 1
truncate -s 1M "$T/disk.img"
dd if="$T/guest.bin" of="$T/disk.img" conv=notrunc 2>/dev/null
cc -O2 -o "$T/probe" "$here/probe.c" -lX11 || exit 1
dpy=:$((50 + $$ % 40))
Xvfb "$dpy" -screen 0 1920x1080x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
sleep 1
export DISPLAY=$dpy
clk=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure NAME TITLE SOCKET MODE command...: start, wait for the guest, resize, measure.
measure() {
    local name=$1 title=$2 sock=$3 mode=$4 win i c0 c1
    shift 4
    : >"$T/dbg"
    "$@" >/dev/null 2>"$T/err.$name" &
    vm=$!
    for i in $(seq 600); do
        grep -aq LODGE-CONSOLE-READY "$T/dbg" && break
        kill -0 "$vm" 2>/dev/null || break
        sleep 0.1
    done
    grep -aq LODGE-CONSOLE-READY "$T/dbg" || {
        echo "bench: $name: the guest never got ready" >&2
        tail -5 "$T/err.$name" >&2
        return 1
    }
    win=$(xdotool search --name "$title" 2>/dev/null | head -n1)
    [ -n "$win" ] || { echo "bench: $name: no window titled $title" >&2; return 1; }
    xdotool windowsize "$win" 1920 1080 2>/dev/null
    sleep 2
    c0=$(cpu_ticks "$vm")
    sleep "$idle"
    c1=$(cpu_ticks "$vm")
    cpu=$(awk "BEGIN{print 100 * ($c1 - $c0) / $clk / $idle}")
    lat=$("$T/probe" "$win" "$sock" "$mode" "$samples") || lat="nan nan nan nan"
    kill "$vm" 2>/dev/null
    wait "$vm" 2>/dev/null
    vm=
    echo "$cpu $lat"
}

l=$(measure lodge "benchcon-lodge" "$T/lodge.sock" lodge \
    "$lodge" run --accel soft --firmware bios --mem 128M --serial none \
    --drive "file=$T/disk.img,format=raw" --boot disk --display sdl --name benchcon-lodge \
    --ctl "$T/lodge.sock" --debugcon "file:$T/dbg,iobase=0x402") || l="nan nan nan nan nan"
q=$(measure qemu "benchcon-qemu" "$T/qmp.sock" qmp \
    qemu-system-x86_64 -accel tcg -machine pc -m 128M -bios "$seabios" -nodefaults -vga std \
    -nic none -display sdl -name benchcon-qemu \
    -drive "file=$T/disk.img,format=raw,if=virtio" \
    -chardev "file,id=dbg,path=$T/dbg" -device isa-debugcon,iobase=0x402,chardev=dbg \
    -qmp "unix:$T/qmp.sock,server=on,wait=off") || q="nan nan nan nan nan"
read -r lcpu lmin lmed lmean lmax <<<"$l"
read -r qcpu qmin qmed qmean qmax <<<"$q"
ratio() { awk "BEGIN{ if (\"$1\" == \"nan\" || \"$2\" == \"nan\" || $2 == 0) print \"n/a\"; else printf \"%.2f\", $1 / $2 }"; }
printf 'idle console 1920x1080, CPU over %s s: lodge %s%%, qemu %s%%, ratio lodge/qemu %s\n' \
    "$idle" "$lcpu" "$qcpu" "$(ratio "$lcpu" "$qcpu")"
printf 'frame latency (key -> fb write -> window pixel), %s samples, ms min/median/mean/max:\n' \
    "$samples"
printf '  lodge %s/%s/%s/%s, qemu %s/%s/%s/%s, median ratio lodge/qemu %s\n' \
    "$lmin" "$lmed" "$lmean" "$lmax" "$qmin" "$qmed" "$qmean" "$qmax" "$(ratio "$lmed" "$qmed")"
