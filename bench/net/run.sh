#!/usr/bin/env bash
# TCP throughput through user-mode NAT, Lodge vs QEMU (-netdev user, -accel tcg), same kernel and
# initramfs (tests/guest/kit.sh), same guest script (tests/guest/scripts/netbench.sh):
#   host->guest: the host connects to a hostfwd port and sends MB MiB to busybox `nc -l`;
#   guest->host: busybox `nc` sends MB MiB to a listener on host loopback (10.0.2.2).
# Times are taken on the host from connect/accept to the last byte. Prints MB/s, the VM process's
# CPU seconds (user + system, all threads) per direction, and lodge/qemu ratios of both.
#   bench/net/run.sh [LODGE] [MODEL=virtio|e1000] [MB]
# The guest moves the stream with dd behind `nc -e` (64 KiB per syscall); NET_BENCH_IO=nc makes
# nc copy it itself (1 KiB per syscall: both VMs then mostly measure guest syscalls).
# NET_BENCH_MTU=N sets the guest's eth0 MTU in both VMs (at most what the NIC offers);
# NET_BENCH_NIC_MTU=N makes Lodge's NIC offer N (--net user,mtu=N).
# Environment: NET_BENCH_PEER=none skips QEMU; NET_BENCH_PERF=FILE records the Lodge process
# with `perf record -g` during host->guest into FILE.h2g and guest->host into FILE.g2h;
# NET_BENCH_KEEP=DIR keeps consoles and logs in DIR. After the table: the guest's counters for
# host->guest (tests/guest/scripts/netbench.sh). Profiles: bench/net/jitprof.py.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lodge=${1:-$here/../../build/lodge}
model=${2:-virtio}
mb=${3:-16}
# shellcheck disable=SC1090
source "$("$here/../../tests/guest/kit.sh")"
if [ -n "${NET_BENCH_KEEP:-}" ]; then
    work=$NET_BENCH_KEEP
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi

measure() { # name, command... (the VM command; PORTS are substituted by the caller)
    local name=$1 console=$work/$1.console
    shift
    : > "$console"
    "$@" > "$work/$name.log" 2>&1 &
    local vm=$!
    python3 - "$console" "$fwd" "$sink" "$mb" "$vm" "${perf:-}" <<'PY' > "$work/$name.result"
import os, signal, socket, subprocess, sys, time
STALL_ACCEPT = 300  # the guest connects once host->guest is done (or given up)
console, fwd, sink, mb, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), \
    int(sys.argv[5])
perf = sys.argv[6]
total = mb << 20
hz = os.sysconf("SC_CLK_TCK")

def cpu():  # user + system seconds of the VM process, all threads
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / hz
    except (OSError, IndexError, ValueError):
        return float("nan")

def perf_start(tag):
    if not perf:
        return None
    return subprocess.Popen(["perf", "record", "-g", "-q", "-p", str(pid), "-o",
                             f"{perf}.{tag}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

def perf_stop(p):
    if p:
        p.send_signal(signal.SIGINT)
        p.wait()

ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", sink)); ls.listen(1); ls.settimeout(STALL_ACCEPT)
deadline = time.time() + 300
while "LODGE-BENCH-READY" not in open(console, errors="replace").read():
    if time.time() > deadline:
        print("nan nan nan nan"); sys.exit(0)
    time.sleep(0.5)
# A direction that makes no progress for STALL seconds is reported as a stall (nan), with how
# far it got, instead of hanging the bench.
STALL = 60
nan = float("nan")
# host -> guest
chunk = b"\0" * 65536
p = perf_start("h2g")
t0 = time.time(); c0 = cpu()
h2g = h2g_cpu = nan
sent = 0
try:
    s = socket.create_connection(("127.0.0.1", fwd), timeout=STALL)
    while sent < total:
        s.sendall(chunk); sent += len(chunk)
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    h2g = total / (time.time() - t0) / 1e6
    h2g_cpu = cpu() - c0
    s.close()
except OSError as e:
    print(f"STALL host->guest: {e!r} after {sent} of {total} bytes, VM used "
          f"{cpu() - c0:.1f} CPU s in {time.time() - t0:.0f} s", file=sys.stderr)
perf_stop(p)
# guest -> host
g2h = g2h_cpu = nan
got = 0
t0 = time.time(); c0 = cpu()
try:
    c, _ = ls.accept(); c.settimeout(STALL)
    p = perf_start("g2h")
    t0 = time.time(); c0 = cpu()
    while got < total:
        d = c.recv(1 << 20)
        if not d:
            break
        got += len(d)
    g2h = got / (time.time() - t0) / 1e6
    g2h_cpu = cpu() - c0
    perf_stop(p)
    c.close()
except OSError as e:
    print(f"STALL guest->host: {e!r} after {got} of {total} bytes, VM used "
          f"{cpu() - c0:.1f} CPU s in {time.time() - t0:.0f} s", file=sys.stderr)
print(f"{h2g:.2f} {g2h:.2f} {h2g_cpu:.2f} {g2h_cpu:.2f}")
PY
    kill $vm 2>/dev/null
    wait $vm 2>/dev/null
    if grep -q nan "$work/$name.result"; then
        echo "$name: no figure; console tail:" >&2
        tail -n 5 "$console" >&2
        if [ -z "${NET_BENCH_KEEP:-}" ]; then
            local keep
            keep=$(mktemp -d /tmp/net-bench-stall.XXXXXX)
            cp "$work/$name".* "$keep"/ && echo "$name: console and log kept in $keep" >&2
        fi
    fi
    cat "$work/$name.result"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
append="console=ttyS0 quiet no_timer_check lodge.test=netbench lodge.net.mb=$mb"
append+=" lodge.net.io=${NET_BENCH_IO:-dd}${NET_BENCH_MTU:+ lodge.net.mtu=$NET_BENCH_MTU}"
perf=${NET_BENCH_PERF:-}
nic_mtu=${NET_BENCH_NIC_MTU:+,mtu=$NET_BENCH_NIC_MTU}
fwd=$(free_port) sink=$(free_port)
read -r l_h2g l_g2h l_h2g_cpu l_g2h_cpu < <(measure lodge "$lodge" run --accel soft \
    --mem 512M --kernel "$LODGE_GUEST_KERNEL" --initrd "$LODGE_GUEST_INITRD" \
    --serial "file:$work/lodge.console" \
    --net "user,model=$model,hostfwd=tcp:127.0.0.1:$fwd-:5001$nic_mtu" \
    --append "$append lodge.net.port=$sink")
q_h2g=nan q_g2h=nan q_h2g_cpu=nan q_g2h_cpu=nan
if [ "${NET_BENCH_PEER:-qemu}" != none ]; then
    fwd=$(free_port) sink=$(free_port)
    qdev=virtio-net-pci
    [ "$model" = e1000 ] && qdev=e1000
    read -r q_h2g q_g2h q_h2g_cpu q_g2h_cpu < <(measure qemu qemu-system-x86_64 -accel tcg \
        -m 512M -display none -no-reboot -kernel "$LODGE_GUEST_KERNEL" \
        -initrd "$LODGE_GUEST_INITRD" -serial "file:$work/qemu.console" -monitor none \
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$fwd-:5001" -device "$qdev,netdev=n0" \
        -append "$append lodge.net.port=$sink")
fi
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a == a) printf "%.2f", a / b; else print "n/a" }'
}
per_cpu() { # MB per CPU second
    awk -v c="$1" -v m="$mb" \
        'BEGIN { if (c > 0) printf "%.3f", m * 1.048576 / c; else print "nan" }'
}
printf 'net (%s, %d MiB)    lodge MB/s  qemu MB/s  lodge/qemu' "$model" "$mb"
printf '   lodge cpu-s  qemu cpu-s  MB/cpu-s ratio\n'
for dir in h2g g2h; do
    lv=l_$dir qv=q_$dir lc=l_${dir}_cpu qc=q_${dir}_cpu
    # Throughput per CPU second (MB / cpu-s), lodge over qemu: the load-independent figure.
    leff=$(per_cpu "${!lc}")
    qeff=$(per_cpu "${!qc}")
    label="host->guest"
    [ $dir = g2h ] && label="guest->host"
    printf '%-18s %10s %10s %10s   %11s %11s %10s\n' "$label" "${!lv}" "${!qv}" \
        "$(ratio "${!lv}" "${!qv}")" "${!lc}" "${!qc}" "$(ratio "$leff" "$qeff")"
done
# The guest's own counters for host->guest (tests/guest/scripts/netbench.sh prints them):
# frames per NIC interrupt and per TCP segment after GRO, and the ACKs it sent.
for name in lodge qemu; do
    [ -s "$work/$name.console" ] || continue
    awk -v n="$name" '/LODGE-BENCH-STATS/ {
            for (i = 3; i <= NF; i++) { split($i, kv, "="); v[$2, kv[1]] = kv[2] } }
        function d(k) { return v["rx-done", k] - v["ready", k] }
        END {
            rx = d("rx"); irq = d("irqs"); segs = d("in")
            if (rx > 0)
                printf "%s guest, host->guest: %d frames, %.1f per receive interrupt, " \
                    "%.1f per TCP segment after GRO, %d ACKs sent\n", n, rx,
                    irq ? rx / irq : 0, segs ? rx / segs : 0, d("out")
        }' "$work/$name.console"
done
