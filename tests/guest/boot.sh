#!/usr/bin/env bash
# Guest-level test: boot the stock Debian kernel + test initramfs with `lodge run` and check the
# markers /init prints and the exit status.
#   boot.sh LODGE ACCEL CPUS TEST [extra lodge args...]
# ACCEL kvm skips (exit 77) unless `lodge doctor` reports native hardware assist: on an
# emulated (nested) host a Linux boot under KVM does not finish in minutes.
set -uo pipefail
lodge=$1 accel=$2 cpus=$3 test=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)

if [ -z "${LODGE_GUEST_KERNEL:-}" ] || [ ! -f "${LODGE_GUEST_KERNEL:-}" ]; then
    env_file=$("$here/kit.sh") || { echo "SKIP: test guest kit unavailable"; exit 77; }
    # shellcheck disable=SC1090
    source "$env_file"
fi
if [ "$accel" = kvm ]; then
    doc=$("$lodge" doctor 2>&1)
    if ! grep -qi "native" <<<"$doc" || grep -qi "emulated" <<<"$doc"; then
        echo "SKIP: KVM hardware assist is not native on this host (lodge doctor):"
        echo "$doc" | sed 's/^/  /'
        exit 77
    fi
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s.%N)
timeout 600 "$lodge" run --accel "$accel" --cpus "$cpus" --mem 512M \
    --kernel "$LODGE_GUEST_KERNEL" --initrd "$LODGE_GUEST_INITRD" --serial file:"$out" \
    --append "console=ttyS0 quiet lodge.test=$test" "$@" </dev/null
rc=$?
end=$(date +%s.%N)
echo "--- guest console ---"
cat "$out"
echo "--- lodge exit status $rc after $(awk "BEGIN{printf \"%.1f\", $end - $start}") s ---"

fail=0
expect() {
    if grep -qF -- "$1" "$out"; then
        echo "ok: saw '$1'"
    else
        echo "FAIL: did not see '$1'"
        fail=1
    fi
}
expect "LODGE-INIT-OK"
expect "LODGE-CPUS=$cpus"
expect "LODGE-TEST-EXIT=0"
case "$test" in
hello) expect "LODGE-ARITH-OK" ;;
esac
if [ $rc -ne 0 ]; then
    echo "FAIL: guest poweroff -f should end lodge run with status 0, got $rc"
    fail=1
fi
exit $fail
