#!/usr/bin/env bash
# Image locking (snapshot/image.c): while `lodge run` uses an image, a second `lodge run` and
# `lodge img` write commands are refused with exit status 2 (run) or 1 (img) and one line naming
# the file; read-only users share it; a backing file is held shared (other overlays on it may
# run, nobody may write it). With qemu-img/qemu-system installed, QEMU sees the same locks.
# The VMs run a 64 KiB firmware of HLT instructions, so they idle without a guest OS.
#   disk_lock.sh LODGE
set -uo pipefail
lodge=${1:?usage: disk_lock.sh LODGE}
work=$(mktemp -d "${TMPDIR:-/tmp}/lodge-lock.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
fails=0
ok() { echo "ok: $*"; }
bad() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

head -c 65536 /dev/zero | tr '\0' '\364' > "$work/hlt.bin"
truncate -s 8M "$work/a.raw"
"$lodge" img create -f qcow2 "$work/base.qcow2" 8M >/dev/null || exit 1
"$lodge" img create -f qcow2 -b base.qcow2 "$work/top1.qcow2" >/dev/null || exit 1
"$lodge" img create -f qcow2 -b base.qcow2 "$work/top2.qcow2" >/dev/null || exit 1
vm() { # args... : a VM that idles in HLT until killed
    timeout 120 "$lodge" run --accel soft --bios "$work/hlt.bin" --mem 32M --serial none \
        --display none "$@" </dev/null
}
vm_bg() { # args... : vm in the background; exec so that $! is the process to kill
    exec timeout 120 "$lodge" run --accel soft --bios "$work/hlt.bin" --mem 32M --serial none \
        --display none "$@" </dev/null
}
# until_locked FILE: wait until a read-only open of FILE is refused (the VM has opened it).
until_locked() {
    for _ in $(seq 100); do
        if ! "$lodge" img check "$1" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}
# refused NAME STATUS FILE CMD...: CMD exits with STATUS and one stderr line naming FILE.
refused() {
    local name=$1 want=$2 file=$3
    shift 3
    "$@" >"$work/out" 2>"$work/err" </dev/null
    local rc=$?
    if [ "$rc" -eq "$want" ] && [ "$(wc -l <"$work/err")" -eq 1 ] &&
        grep -q "^lodge: .*$file: image is in use by another process" "$work/err"; then
        ok "$name: $(cat "$work/err")"
    else
        bad "$name: status $rc (want $want):"
        sed 's/^/    /' "$work/err"
    fi
}

vm_bg --drive "file=$work/a.raw,format=raw" --disk "$work/top1.qcow2" &
pids+=($!)
until_locked "$work/a.raw" || bad "the first VM never locked a.raw"
until_locked "$work/top1.qcow2" || bad "the first VM never locked top1.qcow2"

refused "second run, same virtio disk" 2 a.raw vm --drive "file=$work/a.raw,format=raw"
refused "second run, same image as SATA disk" 2 a.raw vm --disk "$work/a.raw"
refused "second run, read-only" 2 a.raw vm --drive "file=$work/a.raw,readonly=on"
refused "second run, overlay in use" 2 top1.qcow2 vm --drive "file=$work/top1.qcow2"
refused "img resize" 1 a.raw "$lodge" img resize "$work/a.raw" 16M
refused "img create over it" 1 a.raw "$lodge" img create -f raw "$work/a.raw" 1M
refused "img convert onto it" 1 a.raw "$lodge" img convert -O raw "$work/top2.qcow2" "$work/a.raw"
refused "img commit of the overlay" 1 top1.qcow2 "$lodge" img commit "$work/top1.qcow2"
refused "img rebase of the overlay" 1 top1.qcow2 "$lodge" img rebase -u -b x "$work/top1.qcow2"
[ "$(stat -c %s "$work/a.raw")" -eq 8388608 ] || bad "a.raw changed size while in use"

# The backing file is held shared: writers are refused, readers and other overlays share it.
refused "run writing the backing file" 2 base.qcow2 vm --drive "file=$work/base.qcow2"
refused "img resize of the backing file" 1 base.qcow2 "$lodge" img resize "$work/base.qcow2" 16M
if "$lodge" img check "$work/base.qcow2" >/dev/null 2>&1; then
    ok "img check (read-only) of the shared backing file"
else
    bad "img check of the backing file was refused"
fi
if "$lodge" img info "$work/a.raw" >/dev/null 2>&1; then
    ok "img info of an image in use (like qemu-img info, it takes no lock)"
else
    bad "img info of an image in use failed"
fi
vm_bg --drive "file=$work/top2.qcow2" --drive "file=$work/base.qcow2,readonly=on" &
pids+=($!)
sleep 2
if until_locked "$work/top2.qcow2" && kill -0 "${pids[1]}" 2>/dev/null; then
    ok "a second VM shares base.qcow2 (another overlay and a read-only drive)"
else
    bad "a second VM on the same backing file did not start"
fi

if command -v qemu-img >/dev/null; then
    if qemu-img check "$work/top1.qcow2" >/dev/null 2>&1; then
        bad "qemu-img check opened top1.qcow2 while Lodge writes it"
    else
        ok "qemu-img check sees Lodge's lock on top1.qcow2"
    fi
fi
if command -v qemu-system-x86_64 >/dev/null; then
    timeout 10 qemu-system-x86_64 -accel tcg -m 16 -display none -serial none -monitor none \
        -drive "file=$work/a.raw,format=raw,if=virtio" -S >/dev/null 2>"$work/qerr"
    if grep -q 'lock' "$work/qerr"; then
        ok "QEMU refuses a.raw: $(head -n1 "$work/qerr")"
    else
        bad "QEMU did not see the lock on a.raw"
    fi
fi

# Once the VMs are gone the image is free again.
for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null
done
wait 2>/dev/null
pids=()
if "$lodge" img resize "$work/a.raw" 16M >/dev/null; then
    ok "img resize once the VM is gone"
else
    bad "a.raw still refused after the VM exited"
fi
[ "$fails" -eq 0 ] && echo "disk_lock: all passed"
exit $((fails > 0))
