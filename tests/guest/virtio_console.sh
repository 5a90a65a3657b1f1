#!/usr/bin/env bash
# virtio-console both ways: a host UNIX socket behind the virtio-serial port org.lodge.echo.0
# (--virtio-port name=...,chardev=unix:PATH). The guest (scripts/virtio_console.sh) sends a
# greeting; the host then sends lines, the guest answers each with "ECHO:" + the line upper-cased,
# and the host checks every answer before sending "BYE".
#   virtio_console.sh LODGE ACCEL CPUS
set -uo pipefail
lodge=$1 accel=$2 cpus=$3
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
peer=""
cleanup() {
    [ -n "$peer" ] && kill "$peer" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
sock="$work/echo.sock"
# The host end: connect as soon as lodge run listens, so nothing the guest sends is dropped.
python3 - "$sock" >"$work/peer.log" 2>&1 <<'PY' &
import os, socket, sys, time
path = sys.argv[1]
deadline = time.time() + 900
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
while True:
    try:
        s.connect(path)
        break
    except OSError:
        if time.time() > deadline:
            print("PEER-NO-SOCKET")
            sys.exit(1)
        time.sleep(0.05)
print("PEER-CONNECTED", flush=True)
f = s.makefile("rwb", buffering=0)
def readline():
    line = f.readline()
    if not line:
        print("PEER-EOF", flush=True)
        sys.exit(1)
    return line.decode(errors="replace").rstrip("\r\n")
hello = readline()
print("PEER-GOT=" + hello, flush=True)
ok = hello == "LODGE-GUEST-HELLO"
for msg in ["lodge host ping 42", "second line: abc-xyz"]:
    f.write((msg + "\n").encode())
    ans = readline()
    print("PEER-GOT=" + ans, flush=True)
    ok = ok and ans == "ECHO:" + msg.upper()
f.write(b"BYE\n")
print("PEER-ECHO-OK" if ok else "PEER-ECHO-FAIL", flush=True)
time.sleep(1)
PY
peer=$!
out="$work/boot.log"
"$here/boot.sh" "$lodge" "$accel" "$cpus" virtio_console \
    --virtio-port "name=org.lodge.echo.0,chardev=unix:$sock" > "$out" 2>&1
rc=$?
cat "$out"
echo "--- host peer ---"
cat "$work/peer.log"
[ $rc -eq 77 ] && exit 77
fail=0
[ $rc -eq 0 ] || fail=1
check() { # what, file, text
    if grep -qF -- "$3" "$2"; then
        echo "ok: $1"
    else
        echo "FAIL: $1"
        fail=1
    fi
}
check "host received the guest's line" "$work/peer.log" "PEER-GOT=LODGE-GUEST-HELLO"
check "guest echoed the host's lines back transformed" "$work/peer.log" "PEER-ECHO-OK"
check "guest received both host lines" "$out" "LODGE-ECHO-LINES=2"
exit $fail
