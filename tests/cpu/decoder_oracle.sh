#!/usr/bin/env bash
# Test setup of the decoder oracle: get the Debian kernel from the guest kit, extract vmlinux
# from the bzImage (compressed payload found by its magic after the setup sectors), then run
#   decoder_oracle --random N --vmlinux <vmlinux>
# Without the kit (offline, no apt), only the random part runs and the reason is printed.
#   usage: decoder_oracle.sh <decoder_oracle binary> <work dir> [decoder_oracle args...]
set -uo pipefail
exe=$1
work=$2
shift 2
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$work"

kernel=${LODGE_GUEST_KERNEL:-}
if [ -z "$kernel" ] && env=$(timeout 180 "$src/tests/guest/kit.sh" 2>"$work/kit.log") &&
   [ -f "$env" ]; then
    # shellcheck disable=SC1090
    source "$env"
    kernel=${LODGE_GUEST_KERNEL:-}
fi
if [ -z "$kernel" ] || [ ! -f "$kernel" ]; then
    why="${kernel:-no kernel}; $(tail -n1 "$work/kit.log" 2>/dev/null)"
    echo "decoder_oracle: SKIP vmlinux part: guest kit not available ($why)"
    exec "$exe" "$@"
fi

vmlinux=$work/vmlinux-$(basename "$(dirname "$kernel")")
if [ ! -s "$vmlinux" ]; then
    # bzImage: setup_sects at 0x1f1; the payload follows the (setup_sects + 1) * 512 bytes.
    setup=$(( ($(od -An -tu1 -j 497 -N1 "$kernel") + 1) * 512 ))
    found=
    for magic in "fd377a585a00:xz -dc --single-stream" "28b52ffd:zstd -dcq" \
                 "1f8b08:gzip -dcq" "5d000000:xz -dc --format=lzma"; do
        hexmagic=${magic%%:*}
        tool=${magic#*:}
        # first occurrence of the magic after the setup code
        off=$(tail -c +$((setup + 1)) "$kernel" | od -An -tx1 -v -w1 | tr -d ' \n' |
              grep -bo "$hexmagic" | head -n1 | cut -d: -f1)
        if [ -n "$off" ] && [ $((off % 2)) -eq 0 ]; then
            start=$((setup + off / 2))
            if tail -c +$((start + 1)) "$kernel" | $tool > "$vmlinux.tmp" 2>/dev/null ||
               [ -s "$vmlinux.tmp" ]; then
                if [ "$(head -c 4 "$vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
                    mv "$vmlinux.tmp" "$vmlinux"
                    found=$tool
                    break
                fi
            fi
        fi
        rm -f "$vmlinux.tmp"
    done
    if [ -z "$found" ]; then
        echo "decoder_oracle: SKIP vmlinux part: no decompressible payload in $kernel"
        exec "$exe" "$@"
    fi
fi
exec "$exe" "$@" --vmlinux "$vmlinux"
