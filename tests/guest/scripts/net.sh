#!/bin/sh
# Network guest test (host side: tests/net/net.sh). Loads the NIC drivers, gets an address with
# udhcpc, fetches http://10.0.2.2:PORT/blob (lodge.net.port=PORT) and prints its checksum, then
# serves a page with busybox httpd on port 80 for the host to fetch through a hostfwd, and waits
# on port 81 until the host says it is done. lodge.net.restrict=1: the fetch must fail.
lodge-insmod virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
    failover net_failover virtio_net e1000 || exit 1
port="" restrict=0 mtu=""
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    lodge.net.port=*) port=${arg#lodge.net.port=} ;;
    lodge.net.restrict=1) restrict=1 ;;
    lodge.net.mtu=*) mtu=${arg#lodge.net.mtu=} ;;
    esac
done
n=0
while [ ! -d /sys/class/net/eth0 ] && [ $n -lt 20 ]; do
    sleep 1
    n=$((n + 1))
done
[ -d /sys/class/net/eth0 ] || { echo "LODGE-NET-NO-ETH0"; exit 1; }
echo "LODGE-NET-DRIVER=$(basename "$(readlink /sys/class/net/eth0/device/driver)")"
echo "LODGE-NET-MAC=$(cat /sys/class/net/eth0/address)"
echo "LODGE-NET-MTU=$(cat /sys/class/net/eth0/mtu)"
ip link set lo up
ip link set eth0 up
[ -n "$mtu" ] && ip link set eth0 mtu "$mtu"
cat > /tmp/udhcpc.sh <<'S'
#!/bin/sh
case "$1" in
bound | renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
    [ -n "$router" ] && route add default gw "${router%% *}" dev "$interface"
    echo "LODGE-DHCP-IP=$ip"
    ;;
esac
S
chmod +x /tmp/udhcpc.sh
udhcpc -i eth0 -n -q -t 10 -T 2 -s /tmp/udhcpc.sh || { echo "LODGE-DHCP-FAIL"; exit 1; }
if [ -n "$port" ]; then
    timeout 40 wget -O /tmp/blob "http://10.0.2.2:$port/blob" 2>/tmp/wget.err
    rc=$?
    if [ $rc = 0 ]; then
        echo "LODGE-WGET-SHA=$(sha256sum /tmp/blob | cut -d' ' -f1)"
    else
        echo "LODGE-WGET-FAILED=$rc $(tail -n 1 /tmp/wget.err)"
    fi
fi
mkdir -p /www
echo "LODGE-GUEST-HTTPD-PAGE" > /www/index.html
httpd -p 80 -h /www
echo "LODGE-HTTPD-UP"
# The host connects to the forward of port 81 when it has checked port 80.
if timeout 60 nc -l -p 81 > /tmp/bye; then
    echo "LODGE-HOST-SAID=$(cat /tmp/bye)"
fi
exit 0
