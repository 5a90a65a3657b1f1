#!/bin/sh
# Network benchmark guest side (host side: bench/net/run.sh). After DHCP it receives one TCP
# stream on port 5001 (the host connects through a hostfwd) and then sends lodge.net.mb MiB to
# 10.0.2.2:lodge.net.port. The host times both from its end.
# lodge.net.io=dd (default): busybox nc hands the socket to dd (nc -e), which moves 64 KiB per
# read/write as real transfer tools do; lodge.net.io=nc: nc copies the stream itself, 1 KiB
# per read + write + poll, which makes any guest syscall-bound whatever the NIC does.
# lodge.net.mtu=N sets eth0's MTU (default: what the NIC offers).
lodge-insmod virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
    failover net_failover virtio_net e1000 || exit 1
port="" mb=16 io=dd mtu=""
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    lodge.net.port=*) port=${arg#lodge.net.port=} ;;
    lodge.net.mb=*) mb=${arg#lodge.net.mb=} ;;
    lodge.net.io=*) io=${arg#lodge.net.io=} ;;
    lodge.net.mtu=*) mtu=${arg#lodge.net.mtu=} ;;
    esac
done
n=0
while [ ! -d /sys/class/net/eth0 ] && [ $n -lt 20 ]; do
    sleep 1
    n=$((n + 1))
done
ip link set lo up
[ -n "$mtu" ] && ip link set eth0 mtu "$mtu"
ip link set eth0 up
echo "LODGE-BENCH-MTU=$(cat /sys/class/net/eth0/mtu) io=$io"
cat > /tmp/udhcpc.sh <<'S'
#!/bin/sh
case "$1" in
bound | renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
    [ -n "$router" ] && route add default gw "${router%% *}" dev "$interface"
    ;;
esac
S
chmod +x /tmp/udhcpc.sh
udhcpc -i eth0 -n -q -t 10 -T 2 -s /tmp/udhcpc.sh >/dev/null 2>&1 || { echo "LODGE-DHCP-FAIL"; exit 1; }
if [ "$io" = nc ]; then
    timeout 300 nc -l -p 5001 > /dev/null &
else
    timeout 300 nc -l -p 5001 -e sh -c 'dd of=/dev/null bs=65536 2>/dev/null' &
fi
rx=$!
sleep 1
# Counters printed before and after each direction (bench/net/run.sh turns them into per-frame
# figures): the NIC's receive interrupts (e1000: eth0, virtio: the input queue) summed over
# CPUs, eth0 frames received / sent, TCP InSegs / OutSegs.
stats() {
    irqs=$(awk '/eth0|virtio[0-9]+-input/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i }
        END { print n + 0 }' /proc/interrupts)
    frames=$(awk '/eth0:/ { sub(/.*eth0:/, ""); print "rx=" $2, "tx=" $10 }' /proc/net/dev)
    segs=$(awk '/^Tcp:/ { n++; if (n == 2) print "in=" $11, "out=" $12 }' /proc/net/snmp)
    echo "LODGE-BENCH-STATS $1 irqs=$irqs $frames $segs"
}
stats ready
echo "LODGE-BENCH-READY"
wait $rx
stats rx-done
echo "LODGE-BENCH-RX-DONE"
if [ "$io" = nc ]; then
    dd if=/dev/zero bs=65536 count=$((mb * 16)) 2>/dev/null | timeout 300 nc 10.0.2.2 "$port"
else
    timeout 300 nc 10.0.2.2 "$port" -e \
        sh -c "dd if=/dev/zero bs=65536 count=$((mb * 16)) 2>/dev/null"
    # dd's close() returns with data still in the socket's send queue: wait until the host
    # has acknowledged all of it and our FIN (no ESTABLISHED/FIN_WAIT1/CLOSING/LAST_ACK
    # socket to that port left), or powering off would cut the stream short.
    hex=$(printf '%04X' "$port")
    n=0
    while [ $n -lt 600 ] && grep -qE ":$hex (01|04|09|0B) " /proc/net/tcp; do
        sleep 0.1 2>/dev/null || sleep 1
        n=$((n + 1))
    done
fi
stats tx-done
echo "LODGE-BENCH-TX-DONE"
exit 0
