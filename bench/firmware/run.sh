#!/usr/bin/env bash
# Benchmark (issue 7): wall time from process start to the test initramfs's init marker
# (LODGE-INIT-OK on the serial console) for three firmware boots, Lodge `--accel soft`
# against `qemu-system-x86_64 -accel tcg` with the same firmware files and memory:
#   bios-iso:   GRUB ISO (grub-mkrescue, i386-pc) from the CD-ROM through SeaBIOS
#   uefi-iso:   GRUB ISO (x86_64-efi) from the CD-ROM through OVMF (OVMF_CODE_4M + a VARS copy)
#   bios-kernel: --kernel/--initrd through SeaBIOS's linuxboot_dma option ROM
# Best of RUNS runs each, printed with the ratio Lodge/QEMU (goal: at most 1.0).
# Lodge boots /usr/share/seabios/bios.bin (BOOT_FW_SEABIOS); QEMU gets the same file with
# -bios. Not part of the test suite.
#   bench/firmware/run.sh [LODGE] [RUNS] [CASES...]
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
lodge=${1:-$top/build/lodge}
runs=${2:-1}
shift 2 2>/dev/null || shift $#
cases=${*:-bios-kernel bios-iso uefi-iso}
seabios=/usr/share/seabios/bios.bin
ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd
ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd
limit=${LODGE_BENCH_LIMIT:-900} # seconds before a run counts as failed

command -v qemu-system-x86_64 >/dev/null || { echo "bench: qemu-system-x86_64 missing" >&2; exit 1; }
# shellcheck disable=SC1090
source "$("$top/tests/guest/kit.sh")" || exit 1
T=$(mktemp -d /tmp/lodge-bench-fw.XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

iso() { # platform -> path of a GRUB ISO booting the kit with a serial-only menu
    local plat=$1 out=$T/$1.iso
    if [ ! -f "$out" ]; then
        rm -rf "$T/iso" && mkdir -p "$T/iso/boot/grub"
        cp "$LODGE_GUEST_KERNEL" "$T/iso/vmlinuz"
        cp "$LODGE_GUEST_INITRD" "$T/iso/initrd"
        cat >"$T/iso/boot/grub/grub.cfg" <<'CFG'
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
menuentry "Lodge test guest" {
    linux /vmlinuz console=ttyS0 quiet lodge.test=hello
    initrd /initrd
}
CFG
        grub-mkrescue -d "/usr/lib/grub/$plat" -o "$out" "$T/iso" >"$T/mkrescue.log" 2>&1 || {
            echo "bench: grub-mkrescue failed for $plat" >&2
            return 1
        }
    fi
    printf '%s\n' "$out"
}

hz=$(getconf CLK_TCK)
once() { # command... -> "WALL CPU": seconds from start to LODGE-INIT-OK in $T/com1 and the
    # process's CPU seconds (user + system, all threads) by then; or "nan nan"
    : >"$T/com1"
    local s e c
    s=$(date +%s.%N)
    "$@" >/dev/null 2>"$T/err" </dev/null &
    pid=$!
    while ! grep -aq LODGE-INIT-OK "$T/com1" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null ||
            awk "BEGIN{exit !($(date +%s.%N) - $s > $limit)}"; then
            kill "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            pid=
            echo "bench: no init marker: $*" >&2
            tail -3 "$T/err" >&2
            echo nan nan
            return
        fi
        sleep 0.05
    done
    e=$(date +%s.%N)
    c=$(awk -v hz="$hz" '{print ($14 + $15) / hz}' "/proc/$pid/stat" 2>/dev/null || echo nan)
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
    echo "$(awk "BEGIN{print $e - $s}") $c"
}

best() { # command... -> "WALL CPU" of the run with the best wall time of $runs
    local b="" t
    for _ in $(seq "$runs"); do
        t=$(once "$@")
        [ "${t%% *}" = nan ] && { echo nan nan; return; }
        if [ -z "$b" ] || awk "BEGIN{exit !(${t%% *} < ${b%% *})}"; then b=$t; fi
    done
    echo "$b"
}

report() { # name "lodge-wall lodge-cpu" "qemu-wall qemu-cpu"
    local lw=${2%% *} lc=${2##* } qw=${3%% *} qc=${3##* }
    if [ "$lw" = nan ] || [ "$qw" = nan ]; then
        printf '%-12s lodge soft %s s, qemu tcg %s s (a run failed)\n' "$1" "$lw" "$qw"
        return
    fi
    printf '%-12s start to init (best of %s): lodge soft %.2f s, qemu tcg %.2f s, ratio lodge/qemu %.2f; CPU %.2f s vs %.2f s, ratio %.2f (load %s)\n' \
        "$1" "$runs" "$lw" "$qw" "$(awk "BEGIN{print $lw / $qw}")" "$lc" "$qc" \
        "$(awk "BEGIN{print $lc / $qc}")" "$(cut -d' ' -f1 /proc/loadavg)"
}

qemu=(qemu-system-x86_64 -accel tcg -machine pc -nodefaults -vga std -display none -nic none
    -serial "file:$T/com1" -no-reboot)
for c in $cases; do
    case "$c" in
    bios-kernel)
        l=$(best "$lodge" run --accel soft --firmware bios --mem 256M --display none \
            --kernel "$LODGE_GUEST_KERNEL" --initrd "$LODGE_GUEST_INITRD" \
            --append "console=ttyS0 quiet lodge.test=hello" --serial "file:$T/com1")
        q=$(best "${qemu[@]}" -m 256M -bios "$seabios" -kernel "$LODGE_GUEST_KERNEL" \
            -initrd "$LODGE_GUEST_INITRD" -append "console=ttyS0 quiet lodge.test=hello")
        ;;
    bios-iso)
        img=$(iso i386-pc) || continue
        l=$(best "$lodge" run --accel soft --firmware bios --mem 256M --display none \
            --cdrom "$img" --boot cdrom --serial "file:$T/com1")
        # An AHCI CD-ROM on both sides (Lodge's CD-ROM is on AHCI).
        q=$(best "${qemu[@]}" -m 256M -bios "$seabios" -device ahci,id=ahci \
            -drive "if=none,id=cd,media=cdrom,format=raw,readonly=on,file=$img" \
            -device ide-cd,drive=cd,bus=ahci.0 -boot d)
        ;;
    uefi-iso)
        img=$(iso x86_64-efi) || continue
        cp "$ovmf_vars" "$T/qvars.fd"
        # GRUB's EFI heap is a quarter of free memory: 1G as in tests/firmware/iso_boot.sh.
        l=$(best "$lodge" run --accel soft --firmware uefi --mem 1G --display none \
            --cdrom "$img" --boot cdrom --serial "file:$T/com1")
        q=$(best "${qemu[@]}" -m 1G \
            -drive "if=pflash,format=raw,readonly=on,file=$ovmf_code" \
            -drive "if=pflash,format=raw,file=$T/qvars.fd" -device ahci,id=ahci \
            -drive "if=none,id=cd,media=cdrom,format=raw,readonly=on,file=$img" \
            -device ide-cd,drive=cd,bus=ahci.0 -boot d)
        ;;
    *)
        echo "bench: unknown case $c (bios-kernel bios-iso uefi-iso)" >&2
        continue
        ;;
    esac
    report "$c" "$l" "$q"
done
