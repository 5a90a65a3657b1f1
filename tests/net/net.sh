#!/usr/bin/env bash
# Guest-level network test: boots the test guest with one NIC on the user-mode (slirp) network
# and checks, from both sides, DHCP (10.0.2.15), a wget of a blob from a python http.server on
# host loopback (reached as 10.0.2.2; sha256 compared), and a busybox httpd in the guest reached
# through a hostfwd port. With "restrict", the guest's fetch must fail while forwards still work.
#   net.sh LODGE ACCEL MODEL [restrict]
set -uo pipefail
lodge=$1 accel=$2 model=$3 mode=${4:-open}
here=$(cd "$(dirname "$0")" && pwd)
guest=$here/../guest
if [ -z "${LODGE_GUEST_KERNEL:-}" ] || [ ! -f "${LODGE_GUEST_KERNEL:-}" ]; then
    env_file=$("$guest/kit.sh") || { echo "SKIP: test guest kit unavailable"; exit 77; }
    # shellcheck disable=SC1090
    source "$env_file"
fi
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
mkdir -p "$work/www"
head -c 1048576 /dev/urandom > "$work/www/blob"
want=$(sha256sum "$work/www/blob" | cut -d' ' -f1)
http_port=$(free_port)
(cd "$work/www" && exec python3 -m http.server --bind 127.0.0.1 "$http_port") \
    > "$work/http.log" 2>&1 &
pids+=($!)
fwd80=$(free_port)
fwd81=$(free_port)
restrict_opt="" restrict_arg=""
if [ "$mode" = restrict ]; then
    restrict_opt=",restrict=on"
    restrict_arg=" lodge.net.restrict=1"
fi
out=$work/console.log
: > "$out"
start=$(date +%s)
timeout 300 "$lodge" run --accel "$accel" --cpus 1 --mem 512M \
    --kernel "$LODGE_GUEST_KERNEL" --initrd "$LODGE_GUEST_INITRD" --serial "file:$out" \
    --net "user,model=$model$restrict_opt,hostfwd=tcp:127.0.0.1:$fwd80-:80,hostfwd=tcp::$fwd81-:81" \
    --append "console=ttyS0 quiet no_timer_check lodge.test=net lodge.net.port=$http_port$restrict_arg${LODGE_NET_APPEND:+ $LODGE_NET_APPEND}" \
    </dev/null > "$work/lodge.log" 2>&1 &
lodge_pid=$!
pids+=($lodge_pid)

page=""
for _ in $(seq 1 240); do
    if grep -qF "LODGE-HTTPD-UP" "$out" || ! kill -0 $lodge_pid 2>/dev/null; then
        break
    fi
    sleep 1
done
if grep -qF "LODGE-HTTPD-UP" "$out"; then
    page=$(curl -s --max-time 30 "http://127.0.0.1:$fwd80/index.html")
    printf 'LODGE-BYE' | timeout 30 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(sys.stdin.buffer.read()); s.close()' "$fwd81"
fi
wait $lodge_pid
rc=$?
end=$(date +%s)
echo "--- guest console ($model, $mode) ---"
cat "$out"
echo "--- lodge stderr ---"
cat "$work/lodge.log"
echo "--- lodge exit status $rc after $((end - start)) s ---"

fail=0
check() { # what, command...
    local what=$1
    shift
    if "$@"; then
        echo "ok: $what"
    else
        echo "FAIL: $what"
        fail=1
    fi
}
case "$model" in
virtio) drv=virtio_net ;;
e1000) drv=e1000 ;;
esac
check "guest bound $drv" grep -qF "LODGE-NET-DRIVER=$drv" "$out"
check "default MAC 52:54:00:12:34:56" grep -qF "LODGE-NET-MAC=52:54:00:12:34:56" "$out"
check "DHCP gave 10.0.2.15" grep -qF "LODGE-DHCP-IP=10.0.2.15" "$out"
if [ "$mode" = restrict ]; then
    check "restrict=on: guest cannot reach the host's other ports" \
        grep -qF "LODGE-WGET-FAILED=" "$out"
else
    check "wget through NAT: checksum matches" grep -qF "LODGE-WGET-SHA=$want" "$out"
fi
check "host reached guest httpd via hostfwd" test "$page" = "LODGE-GUEST-HTTPD-PAGE"
check "second hostfwd carried bytes to the guest" grep -qF "LODGE-HOST-SAID=LODGE-BYE" "$out"
check "guest script passed" grep -qF "LODGE-TEST-EXIT=0" "$out"
check "lodge exited 0" test $rc -eq 0
exit $fail
