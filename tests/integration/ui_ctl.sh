#!/bin/bash
# The control socket end to end: `lodge run --display none --ctl PATH` with a tiny
# guest that paints the framebuffer, driven by `lodge ctl` and by raw JSON lines.
# usage: ui_ctl.sh LODGE UI_FB_BIN      Exit 0 pass, 1 fail, 77 skipped.
set -uo pipefail
lodge=$1
guest=$2
tmp=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
export XDG_RUNTIME_DIR=$tmp/run
mkdir -m 0700 "$XDG_RUNTIME_DIR"
failed=0
fail() {
    echo "FAIL $*"
    failed=1
}
expect() { # expect NAME WANT GOT
    if [ "$2" != "$3" ]; then
        fail "$1: want '$2', got '$3'"
    fi
}

sock=$tmp/vm.sock
"$lodge" run --kernel "$guest" --accel soft --serial none --display none --name uivm \
    --ctl "$sock" >"$tmp/run.out" 2>&1 &
pid=$!
for _ in $(seq 100); do
    [ -S "$sock" ] && break
    sleep 0.05
done
[ -S "$sock" ] || { fail "no control socket"; cat "$tmp/run.out"; exit 1; }
expect "socket mode" 600 "$(stat -c %a "$sock")"

expect status "running (uivm), display 1024x768" "$("$lodge" ctl "$sock" status)"
out=$("$lodge" ctl --json "$sock" status)
case $out in
*'"ok":true'*'"state":"running"'*) ;;
*) fail "status --json: $out" ;;
esac
expect pause "paused (uivm), display 1024x768" "$("$lodge" ctl "$sock" pause)"
expect "status while paused" "paused (uivm), display 1024x768" "$("$lodge" ctl "$sock" status)"
expect resume "running (uivm), display 1024x768" "$("$lodge" ctl "$sock" resume)"

# Events: a second client sees the state changes.
"$lodge" ctl "$sock" events >"$tmp/events" &
evpid=$!
sleep 0.3
"$lodge" ctl "$sock" pause >/dev/null
"$lodge" ctl "$sock" resume >/dev/null

# Screendump: the guest painted red over blue with a green square at (100,100).
sleep 0.5
"$lodge" ctl "$sock" screendump "$tmp/shot.png" || fail "screendump exit status"
if command -v convert >/dev/null; then
    px() { convert "$tmp/shot.png" -format "%[pixel:p{$1}]" info: 2>/dev/null; }
    expect "pixel 10,10" "srgb(255,0,0)" "$(px 10,10)"
    expect "pixel 120,120" "srgb(0,255,0)" "$(px 120,120)"
    expect "pixel 500,600" "srgb(0,0,255)" "$(px 500,600)"
    expect "png size" "1024x768" "$(identify -format %wx%h "$tmp/shot.png" 2>/dev/null)"
    expect "key square before any key" "srgb(255,255,255)" "$(px 320,120)"
else
    echo "note: imagemagick missing, screendump pixels not checked"
    [ -s "$tmp/shot.png" ] || fail "screendump wrote nothing"
fi
"$lodge" ctl "$sock" screendump relative-from-vm.png >/dev/null 2>&1 || fail "relative path"
"$lodge" ctl "$sock" screendump /nonexistent-dir/x.png 2>"$tmp/err" && fail "bad path accepted"
grep -q "nonexistent-dir" "$tmp/err" || fail "bad path message: $(cat "$tmp/err")"
"$lodge" ctl "$sock" send-keys ctrl-alt-delete || fail "send-keys"
# The guest paints the last make code it read: Delete is E0 53.
sleep 0.3
"$lodge" ctl "$sock" screendump "$tmp/keys.png"
if command -v convert >/dev/null; then
    expect "guest saw Delete" "srgb(83,83,83)" \
        "$(convert "$tmp/keys.png" -format '%[pixel:p{320,120}]' info:)"
fi
"$lodge" ctl "$sock" send-keys ctrl-nokey 2>/dev/null && fail "unknown key accepted"
"$lodge" ctl "$sock" powerdown || fail "powerdown"

# Raw protocol: malformed lines get error replies on a connection that stays usable,
# and display-attach passes the framebuffer memfd.
python3 - "$sock" >"$tmp/raw" 2>&1 <<'PY' || fail "raw protocol: $(cat "$tmp/raw")"
import array, json, mmap, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
f = s.makefile("rb")
def reply():
    while True:
        r = json.loads(f.readline())
        if "event" not in r:
            return r
for bad in [b"{", b"[1]", b"\"x\"", b"{\"cmd\":1}", b"{\"cmd\":\"nope\",\"id\":7}",
            b"\xff\xfe", b"{\"cmd\":\"screendump\",\"file\":3}"]:
    s.sendall(bad + b"\n")
    r = reply()
    assert r["ok"] is False and r["error"], (bad, r)
    if b"nope" in bad:
        assert r["id"] == 7 and "unknown command" in r["error"], r
s.sendall(b'{"cmd":"status","id":"x"}\n')
r = reply()
assert r["ok"] and r["id"] == "x" and r["return"]["state"] == "running", r
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(sys.argv[1])
c.sendall(b'{"cmd":"display-attach"}\n')
fds = array.array("i")
msg, anc, _, _ = c.recvmsg(4096, socket.CMSG_SPACE(4))
for lvl, typ, data in anc:
    if lvl == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
        fds.frombytes(data[:4])
r = json.loads(msg.split(b"\n")[0])
assert r["ok"] and r["return"]["width"] == 1024, r
assert len(fds) == 1, "no fd passed"
m = mmap.mmap(fds[0], r["return"]["size"], mmap.MAP_SHARED, mmap.PROT_READ)
try:  # the viewer's copy is read-only
    mmap.mmap(fds[0], r["return"]["size"], mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    raise AssertionError("display-attach fd is writable")
except PermissionError:
    pass
px = m[(120 * 1024 + 120) * 4:(120 * 1024 + 120) * 4 + 4]
assert px[:3] == b"\x00\xff\x00", px   # B, G, R: green
s.sendall(b'{"cmd":"input","type":"key","key":"a","down":true}\n')
assert reply()["ok"]
s.sendall(b'{"cmd":"input","type":"key","key":"a","down":false}\n')
assert reply()["ok"]
import time
for _ in range(50):
    px = m[(120 * 1024 + 320) * 4:(120 * 1024 + 320) * 4 + 4]
    if px[:3] == b"\x1e\x1e\x1e":   # make code of A
        break
    time.sleep(0.02)
assert px[:3] == b"\x1e\x1e\x1e", ("key square after input a", px)
print("raw ok")
PY

"$lodge" ctl "$sock" quit || fail "quit exit status"
wait "$pid"
rc=$?
pid=
expect "run exit status after quit" 0 "$rc"
[ -e "$sock" ] && fail "socket left behind"
wait "$evpid"
expect events "$(printf 'paused\nrunning\npowerdown-requested\nstopped')" "$(cat "$tmp/events")"

# A VM that is not running, and bad usage.
"$lodge" ctl "$sock" status 2>"$tmp/err"
expect "not running status" 1 "$?"
grep -q "not running" "$tmp/err" || fail "not running message: $(cat "$tmp/err")"
"$lodge" ctl uivm 2>/dev/null
expect "usage status" 2 "$?"
"$lodge" ctl "bad name" status 2>/dev/null
expect "bad name status" 2 "$?"
"$lodge" run --kernel "$guest" --display vnc 2>/dev/null
expect "bad --display" 2 "$?"

if [ $failed = 0 ]; then
    echo "ui_ctl: all checks passed"
fi
exit $failed
