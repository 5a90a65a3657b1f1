#!/usr/bin/env bash
# --net on the command line: bad specs and a hostfwd port that is taken give exit status 2
# and one message naming the problem, before any guest runs.   cli.sh LODGE
set -uo pipefail
lodge=$1
fail=0
expect2() { # pattern, args...
    local pat=$1 err rc
    shift
    err=$("$lodge" run "$@" 2>&1 >/dev/null </dev/null)
    rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$pat" <<<"$err"; then
        echo "ok: $* -> $err"
    else
        echo "FAIL: $* -> status $rc, '$err' (wanted 2 and '$pat')"
        fail=1
    fi
}
fake=$(mktemp)
kernel=$fake
holder=""
trap 'rm -f "$fake"; [ -n "$holder" ] && kill $holder 2>/dev/null' EXIT
printf 'not a kernel' > "$fake"
expect2 "model=rtl8139" --kernel "$kernel" --net user,model=rtl8139
expect2 "hostfwd=tcp::99999-:80" --kernel "$kernel" --net user,hostfwd=tcp::99999-:80
expect2 "user or none" --kernel "$kernel" --net tap
# A port held by another process: the error names it (needs a real kernel: it loads first).
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${LODGE_GUEST_KERNEL:-}" ]; then
    env_file=$("$here/../guest/kit.sh" 2>/dev/null) && source "$env_file"
fi
if [ -z "${LODGE_GUEST_KERNEL:-}" ]; then
    echo "SKIP: port-in-use check (no test guest kernel)"
    exit $fail
fi
kernel=$LODGE_GUEST_KERNEL
port_file=$(mktemp)
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
open(sys.argv[1], "w").write(str(s.getsockname()[1])); time.sleep(60)' "$port_file" &
holder=$!
for _ in $(seq 1 50); do [ -s "$port_file" ] && break; sleep 0.1; done
port=$(cat "$port_file")
rm -f "$port_file"
expect2 "cannot bind host port $port" --accel soft --serial none --kernel "$kernel" \
    --net "user,hostfwd=tcp:127.0.0.1:$port-:80"
exit $fail
