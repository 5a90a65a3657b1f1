#!/usr/bin/env bash
# Guest-level: Linux `reboot -f` on the soft engine ends `lodge run --no-reboot` with
# status 0 (the kernel resets through the FADT reset register, port 0xCF9).
# The test guest's busybox shell (lodge.shell=1) gets the command on the serial line
# once it printed its banner.
#   reboot.sh LODGE
set -uo pipefail
lodge=$1
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${LODGE_GUEST_KERNEL:-}" ] || [ ! -f "${LODGE_GUEST_KERNEL:-}" ]; then
    env_file=$("$here/../guest/kit.sh") || { echo "SKIP: test guest kit unavailable"; exit 77; }
    # shellcheck disable=SC1090
    source "$env_file"
fi
T=$(mktemp -d /tmp/lodge-reboot.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
mkfifo "$T/in"
"$lodge" run --accel soft --mem 256M --kernel "$LODGE_GUEST_KERNEL" \
    --initrd "$LODGE_GUEST_INITRD" --append "console=ttyS0 quiet lodge.shell=1" \
    --no-reboot <"$T/in" >"$T/out" 2>"$T/err" &
pid=$!
exec 3>"$T/in"
for _ in $(seq 600); do
    grep -q "Lodge demo guest" "$T/out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
done
sleep 2
echo "reboot -f" >&3
for _ in $(seq 120); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
done
if kill -0 "$pid" 2>/dev/null; then
    echo "FAIL: lodge still running after 'reboot -f'"
    cat "$T/out"
    exit 1
fi
wait "$pid"
rc=$?
pid=
echo "--- guest console ---"
cat "$T/out"
echo "--- lodge exit status $rc ---"
cat "$T/err"
fail=0
grep -q "Lodge demo guest" "$T/out" || { echo "FAIL: no shell banner"; fail=1; }
grep -q "reboot: Restarting system" "$T/out" || { echo "FAIL: the kernel did not restart"; fail=1; }
[ "$rc" -eq 0 ] || { echo "FAIL: status $rc, want 0"; fail=1; }
exit $fail
