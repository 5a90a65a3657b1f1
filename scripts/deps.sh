#!/usr/bin/env bash
# Installs what Lodge needs to build and test on Debian 12 (run as root, or with sudo present).
set -euo pipefail
pkgs=(
    gcc meson ninja-build pkg-config          # build
    libglib2.0-dev                            # base library
    zlib1g-dev                                # qcow2/VMDK compressed clusters
    liblzma-dev libzstd-dev                   # host-side kernel decompression
    libcunit1-dev nasm libcapstone-dev        # tests: CUnit, tiny guests, decoder oracle
    cpio dpkg-dev apt-utils                   # test guest kit (apt-get download, dpkg-deb)
    libc6-dev                                 # test guest kit: static guest tools (gcc -static)
    seabios ovmf qemu-system-data             # firmware boot (--firmware; linuxboot ROM)
    libjson-glib-dev libpng-dev               # control socket protocol, screendumps
    libsdl2-dev libgtk-3-dev                  # SDL console, GTK manager
    xvfb xdotool imagemagick                  # UI tests under Xvfb
    xorriso                                   # tests: ISO images for AHCI/ATAPI
    grub-pc-bin grub-efi-amd64-bin mtools     # tests: GRUB ISOs (grub-mkrescue)
    libslirp-dev                              # user-mode networking (net/slirp.c)
    ipxe-qemu                                 # NIC boot ROMs for --boot net (iPXE)
    clang libclang-rt-dev                     # tests/fuzz: libFuzzer + sanitizers
)
sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo=sudo
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The test kit resolves package versions, so the lists must be current even with nothing missing.
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
if [ ${#missing[@]} -gt 0 ]; then
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
