#!/usr/bin/env bash
# Guest-level test: boot the stock Debian kernel + test initramfs with `lodge run` and check the
# markers /init prints and the exit status.
#   boot.sh LODGE ACCEL CPUS TEST [extra lodge args...]
# TEST "port:NAME" runs NAME with lodge.exit=port: the guest reports the test's status through
# the test-exit device, and `lodge run`'s own exit status ((status << 1) | 1) is the verdict.
# ACCEL kvm skips (exit 77) unless `lodge doctor` reports native hardware assist: on an
# emulated (nested) host a Linux boot under KVM does not finish in minutes.
set -uo pipefail
lodge=$1 accel=$2 cpus=$3 test=$4
shift 4
via_port=0
extra_append=""
if [ "${test#port:}" != "$test" ]; then
    via_port=1
    test=${test#port:}
    extra_append=" lodge.exit=port"
    set -- --device test-exit "$@"
fi
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
    --append "console=ttyS0 quiet lodge.test=$test$extra_append" "$@" </dev/null
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
if [ $via_port = 1 ]; then
    # Status 0 from the guest test arrives as (0 << 1) | 1 = 1.
    if [ $rc -ne 1 ]; then
        echo "FAIL: the guest test reported through test-exit: want lodge status 1, got $rc"
        fail=1
    else
        echo "ok: lodge run exited 1 = test-exit status 0"
    fi
elif [ $rc -ne 0 ]; then
    echo "FAIL: guest poweroff -f should end lodge run with status 0, got $rc"
    fail=1
fi
exit $fail
