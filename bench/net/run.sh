#!/usr/bin/env bash
# TCP throughput through user-mode NAT, Lodge vs QEMU (-netdev user, -accel tcg), same kernel and
# initramfs (tests/guest/kit.sh), same guest script (tests/guest/scripts/netbench.sh):
#   host->guest: the host connects to a hostfwd port and sends MB MiB to busybox `nc -l`;
#   guest->host: busybox `nc` sends MB MiB to a listener on host loopback (10.0.2.2).
# Times are taken on the host from connect/accept to the last byte. Prints MB/s and ratios.
#   bench/net/run.sh [LODGE] [MODEL=virtio|e1000] [MB]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lodge=${1:-$here/../../build/lodge}
model=${2:-virtio}
mb=${3:-16}
# shellcheck disable=SC1090
source "$("$here/../../tests/guest/kit.sh")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

measure() { # name, command... (the VM command; PORTS are substituted by the caller)
    local name=$1 console=$work/$1.console
    shift
    : > "$console"
    "$@" > "$work/$name.log" 2>&1 &
    local vm=$!
    python3 - "$console" "$fwd" "$sink" "$mb" <<'PY' > "$work/$name.result"
import socket, sys, time
console, fwd, sink, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
total = mb << 20
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", sink)); ls.listen(1); ls.settimeout(600)
deadline = time.time() + 300
while "LODGE-BENCH-READY" not in open(console, errors="replace").read():
    if time.time() > deadline:
        print("nan nan"); sys.exit(0)
    time.sleep(0.5)
# host -> guest
chunk = b"\0" * 65536
t0 = time.time()
s = socket.create_connection(("127.0.0.1", fwd), timeout=300)
sent = 0
while sent < total:
    s.sendall(chunk); sent += len(chunk)
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
h2g = total / (time.time() - t0) / 1e6
s.close()
# guest -> host
c, _ = ls.accept(); c.settimeout(300)
t0 = time.time(); got = 0
while got < total:
    d = c.recv(1 << 20)
    if not d:
        break
    got += len(d)
g2h = got / (time.time() - t0) / 1e6
c.close()
print(f"{h2g:.2f} {g2h:.2f}")
PY
    kill $vm 2>/dev/null
    wait $vm 2>/dev/null
    cat "$work/$name.result"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
append="console=ttyS0 quiet no_timer_check lodge.test=netbench lodge.net.mb=$mb"
fwd=$(free_port) sink=$(free_port)
read -r l_h2g l_g2h < <(measure lodge "$lodge" run --accel soft --mem 512M \
    --kernel "$LODGE_GUEST_KERNEL" --initrd "$LODGE_GUEST_INITRD" \
    --serial "file:$work/lodge.console" \
    --net "user,model=$model,hostfwd=tcp:127.0.0.1:$fwd-:5001" \
    --append "$append lodge.net.port=$sink")
fwd=$(free_port) sink=$(free_port)
qdev=virtio-net-pci
[ "$model" = e1000 ] && qdev=e1000
read -r q_h2g q_g2h < <(measure qemu qemu-system-x86_64 -accel tcg -m 512M -display none \
    -no-reboot -kernel "$LODGE_GUEST_KERNEL" -initrd "$LODGE_GUEST_INITRD" \
    -serial "file:$work/qemu.console" -monitor none \
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$fwd-:5001" -device "$qdev,netdev=n0" \
    -append "$append lodge.net.port=$sink")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a == a) printf "%.2f", a / b; else print "n/a" }'; }
printf 'net (%s, %d MiB)        lodge MB/s   qemu MB/s   lodge/qemu\n' "$model" "$mb"
printf 'host->guest            %10s  %10s  %10s\n' "$l_h2g" "$q_h2g" "$(ratio "$l_h2g" "$q_h2g")"
printf 'guest->host            %10s  %10s  %10s\n' "$l_g2h" "$q_g2h" "$(ratio "$l_g2h" "$q_g2h")"
