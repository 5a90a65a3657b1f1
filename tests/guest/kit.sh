#!/usr/bin/env bash
# Test guest kit: fetches the stock Debian kernel and busybox-static with apt-get download,
# extracts the kernel and its virtio/xhci/sound modules, and builds the test initramfs.
# Everything is cached outside the repo, keyed by package version.
#
#   tests/guest/kit.sh            build (or reuse) the kit, print the env file path
#   source "$(tests/guest/kit.sh)" then use $LODGE_GUEST_KERNEL and $LODGE_GUEST_INITRD
#
# The initramfs /init prints LODGE-INIT-OK, mounts proc/sys/dev, prints LODGE-CPUS=<n>, runs
# /tests/<name>.sh when the kernel command line has lodge.test=<name>, drops to a shell on the
# console with lodge.shell=1, and otherwise powers off with `poweroff -f`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${LODGE_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lodge/guest}
mkdir -p "$cache/debs"

log() { printf 'kit: %s\n' "$*" >&2; }

# Resolve the image package linux-image-amd64 points at (e.g. linux-image-6.1.0-28-amd64).
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$kpkg" ]; then
    log "cannot resolve linux-image-amd64 (run apt-get update first)"
    exit 1
fi
kver=$(apt-cache policy "$kpkg" | awk '/Candidate:/ {print $2}')
bver=$(apt-cache policy busybox-static | awk '/Candidate:/ {print $2}')
if [ -z "$kver" ] || [ "$kver" = "(none)" ] || [ -z "$bver" ] || [ "$bver" = "(none)" ]; then
    log "no candidate for $kpkg or busybox-static in the package lists"
    exit 1
fi

fetch() { # package version -> path of the .deb in the cache
    local pkg=$1 ver=$2 deb
    deb=$(ls "$cache/debs/${pkg}_${ver//:/%3a}"_*.deb 2>/dev/null | head -n1 || true)
    if [ -z "$deb" ]; then
        log "downloading $pkg $ver"
        (cd "$cache/debs" && apt-get download -q "$pkg=$ver" >&2)
        deb=$(ls "$cache/debs/${pkg}_${ver//:/%3a}"_*.deb | head -n1)
    fi
    printf '%s\n' "$deb"
}

kdir="$cache/kernel-$kpkg-$kver"
# Modules tests ask for in modules.list (paths under kernel/); a missing one re-extracts.
listed=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/modules.list" 2>/dev/null || true)
need_extract=0
for ko in $listed; do
    [ -f "$kdir/modules/kernel/$ko" ] || need_extract=1
done
if [ ! -f "$kdir/vmlinuz" ] || [ $need_extract = 1 ]; then
    deb=$(fetch "$kpkg" "$kver")
    rm -rf "$kdir.tmp" && mkdir -p "$kdir.tmp/x"
    log "extracting $(basename "$deb")"
    dpkg-deb -x "$deb" "$kdir.tmp/x"
    cp "$kdir.tmp/x"/boot/vmlinuz-* "$kdir.tmp/vmlinuz"
    modroot=$(ls -d "$kdir.tmp/x"/lib/modules/* | head -n1)
    mkdir -p "$kdir.tmp/modules"
    # Keep only the drivers later issues need: virtio, xhci/usb, sound, block, net, fs.
    for sub in drivers/virtio drivers/block/virtio_blk.ko drivers/char/virtio_console.ko \
        drivers/char/hw_random drivers/net/virtio_net.ko drivers/net/net_failover.ko \
        net/core/failover.ko drivers/usb drivers/hid sound drivers/ata drivers/scsi \
        drivers/input drivers/gpu/drm fs/ext4 fs/jbd2 fs/mbcache.ko lib crypto $listed; do
        if [ -e "$modroot/kernel/$sub" ]; then
            mkdir -p "$kdir.tmp/modules/kernel/$(dirname "$sub")"
            cp -a "$modroot/kernel/$sub" "$kdir.tmp/modules/kernel/$(dirname "$sub")/"
        fi
    done
    cp "$modroot"/modules.* "$kdir.tmp/modules/" 2>/dev/null || true
    basename "$modroot" > "$kdir.tmp/modversion"
    rm -rf "$kdir.tmp/x"
    rm -rf "$kdir" && mv "$kdir.tmp" "$kdir"
fi

bdir="$cache/busybox-$bver"
if [ ! -x "$bdir/busybox" ]; then
    deb=$(fetch busybox-static "$bver")
    rm -rf "$bdir.tmp" && mkdir -p "$bdir.tmp/x"
    dpkg-deb -x "$deb" "$bdir.tmp/x"
    cp "$bdir.tmp/x/bin/busybox" "$bdir.tmp/busybox"
    rm -rf "$bdir.tmp/x"
    rm -rf "$bdir" && mv "$bdir.tmp" "$bdir"
fi

# The initramfs depends on busybox, the init script, the test scripts and the guest tools' sources:
# key it on their hash.
ihash=$( (cat "$here/init" "$here"/scripts/*.sh "$here/modules.list" "$here"/tools/*.c 2>/dev/null
    echo "$bver"; echo "$kver virtio") | sha256sum | cut -c1-12)
initrd="$cache/initramfs-$ihash.cpio"
if [ ! -f "$initrd" ]; then
    # Guest tools (tools/NAME.c -> /bin/lodge-NAME): small C programs linked static here, so
    # the guest needs no libc of its own.
    command -v gcc >/dev/null || { log "gcc missing: install the Debian package gcc"; exit 1; }
    if ! printf 'int main(void){return 0;}\n' | gcc -static -x c -o /dev/null - 2>/dev/null; then
        log "gcc -static cannot link: install the Debian package libc6-dev (static libc.a)"
        exit 1
    fi
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc,root,tests,usr/bin,usr/sbin}
    cp "$bdir/busybox" "$root/bin/busybox"
    ln -s busybox "$root/bin/sh"
    install -m 0755 "$here/init" "$root/init"
    for s in "$here"/scripts/*.sh; do
        [ -e "$s" ] && install -m 0755 "$s" "$root/tests/$(basename "$s")"
    done
    # virtio drivers for the device tests (scripts/virtio_*.sh insmod them in dependency order).
    mkdir -p "$root/lib/modules/virtio"
    for ko in virtio/virtio_ring virtio/virtio virtio/virtio_pci_modern_dev \
        virtio/virtio_pci_legacy_dev virtio/virtio_pci block/virtio_blk char/virtio_console \
        char/hw_random/virtio-rng; do
        if [ -f "$kdir/modules/kernel/drivers/$ko.ko" ]; then
            cp "$kdir/modules/kernel/drivers/$ko.ko" "$root/lib/modules/virtio/"
        fi
    done
    # modules.list: flat in /lib/modules, loaded with /bin/lodge-insmod NAME.
    for ko in $listed; do
        [ -f "$kdir/modules/kernel/$ko" ] && cp "$kdir/modules/kernel/$ko" "$root/lib/modules/"
    done
    cat > "$root/bin/lodge-insmod" <<'INSMOD'
#!/bin/sh
# lodge-insmod NAME...: load /lib/modules/NAME.ko unless the module is already there.
for m in "$@"; do
    [ -d "/sys/module/$(echo "$m" | tr - _)" ] && continue
    insmod "/lib/modules/$m.ko" || { echo "LODGE-INSMOD-FAIL=$m"; exit 1; }
done
INSMOD
    chmod 0755 "$root/bin/lodge-insmod"
    for src in "$here"/tools/*.c; do
        [ -e "$src" ] || continue
        tool="$root/bin/lodge-$(basename "$src" .c)"
        if ! gcc -static -O2 -Wall -Wextra -o "$tool" "$src" >&2; then
            log "building $src failed"
            exit 1
        fi
        strip "$tool" 2>/dev/null || true
    done
    # Uncompressed: the guest does not spend time decompressing (this matters on the soft CPU).
    (cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet -R 0:0) > "$initrd.tmp"
    mv "$initrd.tmp" "$initrd"
    log "built $(basename "$initrd")"
fi

env="$cache/env.sh"
cat > "$env.tmp" <<ENV
LODGE_GUEST_KERNEL='$kdir/vmlinuz'
LODGE_GUEST_MODULES='$kdir/modules'
LODGE_GUEST_INITRD='$initrd'
LODGE_GUEST_KERNEL_PKG='$kpkg $kver'
LODGE_GUEST_BUSYBOX='$bdir/busybox'
export LODGE_GUEST_KERNEL LODGE_GUEST_MODULES LODGE_GUEST_INITRD LODGE_GUEST_KERNEL_PKG LODGE_GUEST_BUSYBOX
ENV
mv "$env.tmp" "$env"
printf '%s\n' "$env"
