#!/bin/sh
# Profiling aid (bench/net/jitprof.py): sends the guest kernel's text symbols to
# 10.0.2.2:lodge.net.port so perf's guest_<rip> names (LODGE_JIT_PERFMAP=1) map to functions.
# Host: `nc -l -p PORT > kallsyms &` (or any listener on 127.0.0.1:PORT), then
#   lodge run --accel soft --kernel ... --initrd ... --net user,model=e1000 \
#       --append "console=ttyS0 lodge.test=netksyms lodge.net.port=PORT"
# Same kernel and module load order as the bench: the addresses match (the kernel sat at its
# link address, ffffffff81000000, in every boot seen).
lodge-insmod virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
    failover net_failover virtio_net e1000 || exit 1
port=""
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    lodge.net.port=*) port=${arg#lodge.net.port=} ;;
    esac
done
ip link set eth0 up
ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up
grep -i ' t ' /proc/kallsyms | timeout 120 nc 10.0.2.2 "$port"
echo "LODGE-KSYMS-DONE"
