# shellcheck shell=bash disable=SC2034
# (xpid is used by the scripts that source this file)
# Sourced by the UI tests. start_xvfb starts a private Xvfb (1280x1024x24) and exports its
# DISPLAY once it answers; its pid is left in $xpid for the caller's cleanup. It needs $tmp
# (a scratch directory) and exits 77 (skipped) when Xvfb does not come up.
start_xvfb() {
    : "${tmp:?set tmp before start_xvfb}"
    exec 3>"$tmp/displayfd"
    Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp >"$tmp/xvfb.log" 2>&1 &
    xpid=$!
    exec 3>&-
    for _ in $(seq 100); do
        [ -s "$tmp/displayfd" ] && break
        sleep 0.05
    done
    [ -s "$tmp/displayfd" ] || { echo "skipped: Xvfb did not start"; exit 77; }
    DISPLAY=:$(head -1 "$tmp/displayfd")
    export DISPLAY
    unset WAYLAND_DISPLAY
    for _ in $(seq 100); do
        xdotool getdisplaygeometry >/dev/null 2>&1 && break
        sleep 0.05
    done
    xdotool getdisplaygeometry >/dev/null 2>&1 || { echo "skipped: Xvfb does not answer"; exit 77; }
}
