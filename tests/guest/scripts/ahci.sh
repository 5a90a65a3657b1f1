#!/bin/sh
# AHCI guest test (host side: tests/storage/ahci_guest.sh). Loads libata/ahci, sd and sr from
# /lib/modules, then checks the SATA disk (size, first bytes, a write that reads back after the
# page cache is dropped) and the ATAPI CD-ROM (model, mount the ISO, checksum of a file).
lodge-insmod scsi_common scsi_mod libata libahci ahci || exit 1
lodge-insmod crct10dif_common crct10dif_generic crc-t10dif crc64 crc64-rocksoft t10-pi sd_mod ||
    exit 1
lodge-insmod cdrom sr_mod isofs || exit 1
n=0
while { [ ! -b /dev/sda ] || [ ! -b /dev/sr0 ]; } && [ $n -lt 30 ]; do
    sleep 1
    n=$((n + 1))
done
if [ ! -b /dev/sda ] || [ ! -b /dev/sr0 ]; then
    echo "LODGE-AHCI-MISSING: $(ls /sys/block)"
    dmesg | grep -iE 'ata|ahci|scsi' | tail -n 20
    exit 1
fi
echo "LODGE-SDA-SECTORS=$(cat /sys/block/sda/size)"
echo "LODGE-SDA-MODEL=$(cat /sys/block/sda/device/model)"
echo "LODGE-SDA-HEAD=$(head -c 16 /dev/sda)"
printf 'LODGE-AHCI-WRITE' | dd of=/dev/sda bs=512 seek=1 conv=sync,fsync 2>/dev/null
blockdev --flushbufs /dev/sda
echo 3 > /proc/sys/vm/drop_caches
back=$(dd if=/dev/sda bs=512 skip=1 count=1 2>/dev/null | head -c 16)
if [ "$back" = "LODGE-AHCI-WRITE" ]; then
    echo "LODGE-SDA-RW-OK"
else
    echo "LODGE-SDA-RW-FAIL=$back"
fi
echo "LODGE-SR0-MODEL=$(cat /sys/block/sr0/device/model)"
mkdir -p /mnt/cd
if mount -t iso9660 -o ro /dev/sr0 /mnt/cd; then
    echo "LODGE-CD-MD5=$(md5sum /mnt/cd/payload.bin | cut -d' ' -f1)"
    umount /mnt/cd
else
    echo "LODGE-CD-MOUNT-FAIL"
    dmesg | grep -iE 'sr0|isofs|cdrom' | tail -n 10
fi
awk '/ahci/ && $2 > 0' /proc/interrupts
dmesg | grep -E 'ata[0-9]|sr[0-9]|sd [0-9]|scsi [0-9]' | tail -n 30
echo "LODGE-ATA-EXCEPTIONS=$(dmesg | grep -c 'exception Emask')"
exit 0
