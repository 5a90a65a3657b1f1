# shellcheck shell=bash disable=SC2034
# (variables here are used by the scripts that source this file)
# Shared by the lodge gui tests (sourced): an Xvfb display, a private XDG data and runtime
# directory, cleanup of everything started, and xdotool/imagemagick helpers.
# The sourcing script sets $lodge first.

: "${lodge:?set lodge before sourcing ui_gui_lib.sh}"
for tool in Xvfb xdotool import convert; do
    if ! command -v $tool >/dev/null; then
        echo "skipped: $tool is missing (scripts/deps.sh installs it)"
        exit 77
    fi
done
tmp=$(mktemp -d)
pids=()
vms=() # VM names to quit at the end: started VMs run in their own session
xpid=
cleanup() {
    for v in "${vms[@]}"; do
        "$lodge" ctl "$v" quit >/dev/null 2>&1
    done
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    [ -n "$xpid" ] && kill "$xpid" 2>/dev/null && wait "$xpid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
failed=0
fail() {
    echo "FAIL $*"
    failed=1
}
export XDG_RUNTIME_DIR=$tmp/run XDG_DATA_HOME=$tmp/data
mkdir -m 0700 "$XDG_RUNTIME_DIR"
vmdir=$XDG_DATA_HOME/lodge/vms

# shellcheck source-path=SCRIPTDIR source=xvfb.sh
source "$(dirname "${BASH_SOURCE[0]}")/xvfb.sh"
start_xvfb
# No accessibility bus under Xvfb: keep GTK from waiting for one.
export NO_AT_BRIDGE=1

# wait_window REGEX [TRIES]: the id of a visible window whose name matches, or "".
wait_window() {
    local w='' i
    for i in $(seq "${2:-200}"); do
        w=$(xdotool search --onlyvisible --name "$1" 2>/dev/null | head -1)
        [ -n "$w" ] && break
        sleep 0.05
    done
    echo "$w"
}

# wait_gone WINDOW_ID: until the window is unmapped or destroyed.
wait_gone() {
    local i
    for i in $(seq 200); do
        xdotool search --onlyvisible --name '.' 2>/dev/null | grep -qx "$1" || return 0
        sleep 0.05
    done
    return 1
}

# focus WINDOW_ID: give it the keyboard (there is no window manager to do it).
focus() {
    xdotool windowfocus --sync "$1" 2>/dev/null || xdotool windowfocus "$1"
    sleep 0.2
}

# keys KEY...: real key presses (XTEST) to whatever has the focus, with a pause for GTK.
keys() {
    xdotool key --delay 30 "$@"
    sleep 0.2
}

# typein TEXT: type into the focused field, replacing what it held.
typein() {
    xdotool key ctrl+a
    xdotool type --delay 20 -- "$1"
    sleep 0.2
}

# conf_lines FILE: a key file as sorted "section.key=value" lines (comments dropped).
conf_lines() {
    awk '/^\[/ { s = substr($0, 2, length($0) - 2); next }
         /^[^#].*=/ { print s "." $0 }' "$1" | sort
}

# wait_file FILE [TRIES]
wait_file() {
    local _
    for _ in $(seq "${2:-200}"); do
        [ -e "$1" ] && return 0
        sleep 0.05
    done
    return 1
}
