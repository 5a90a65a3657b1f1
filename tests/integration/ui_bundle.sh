#!/bin/bash
# VM bundles through the CLI: lodge create / list / start / delete.
# usage: ui_bundle.sh LODGE UI_FB_BIN      Exit 0 pass, 1 fail.
set -uo pipefail
lodge=$1
guest=$2
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
export XDG_RUNTIME_DIR=$tmp/run XDG_DATA_HOME=$tmp/data
mkdir -m 0700 "$XDG_RUNTIME_DIR"
unset DISPLAY WAYLAND_DISPLAY
failed=0
fail() {
    echo "FAIL $*"
    failed=1
}
status() { # status WANT NAME ARGS...: run lodge ARGS, expect exit status WANT
    local want=$1 name=$2
    shift 2
    "$lodge" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local rc=$?
    [ "$rc" = "$want" ] || fail "$name: exit $rc, want $want: $(cat "$tmp/err")"
}

status 0 "create disk VM" create alpha --mem 128M --cpus 2 --disk-size 1G
[ -f "$XDG_DATA_HOME/lodge/vms/alpha/vm.conf" ] || fail "no vm.conf"
head -c 4 "$XDG_DATA_HOME/lodge/vms/alpha/disk.qcow2" | grep -q QFI || fail "disk is not qcow2"
status 0 "create kernel VM" create beta --kernel "$guest" --mem 64M --disk-size 0
status 2 "duplicate name" create alpha
status 2 "bad name" create "../x"
status 2 "missing kernel file" create gamma --kernel "$tmp/nope"
status 2 "bad firmware" create gamma --firmware floppy
status 2 "bad mem" create gamma --mem 1M
status 0 list list
grep -Eq '^alpha +stopped +128M +2 +bios' "$tmp/out" || fail "list alpha: $(cat "$tmp/out")"
grep -Eq '^beta +stopped +64M +1 +kernel' "$tmp/out" || fail "list beta: $(cat "$tmp/out")"

"$lodge" start beta --accel soft --serial none >"$tmp/start.out" 2>&1 &
pid=$!
for _ in $(seq 100); do
    [ -S "$XDG_RUNTIME_DIR/lodge/beta.sock" ] && break
    sleep 0.05
done
status 0 "ctl on started bundle" ctl beta status
grep -q "running (beta)" "$tmp/out" || fail "status: $(cat "$tmp/out")"
status 0 "list while running" list
grep -Eq '^beta +running' "$tmp/out" || fail "list running: $(cat "$tmp/out")"
status 1 "second start" start beta
status 1 "delete running VM" delete beta --yes
status 0 "quit" ctl beta quit
wait "$pid"
rc=$?
pid=
[ "$rc" = 0 ] || fail "start exit status $rc: $(cat "$tmp/start.out")"

status 1 "delete without confirmation" delete alpha
[ -d "$XDG_DATA_HOME/lodge/vms/alpha" ] || fail "deleted without confirmation"
echo y | "$lodge" delete alpha >/dev/null 2>&1 || fail "delete with y"
[ -d "$XDG_DATA_HOME/lodge/vms/alpha" ] && fail "alpha still there"
status 0 "delete --yes" delete beta --yes
status 2 "delete unknown" delete beta --yes
status 2 "start unknown" start beta
status 0 "empty list" list
[ -s "$tmp/out" ] && fail "list not empty: $(cat "$tmp/out")"
if [ $failed = 0 ]; then
    echo "ui_bundle: all checks passed"
fi
exit $failed
