#!/usr/bin/env bash
# Configures and builds Lodge in build/ (extra meson -D options may be passed).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${LODGE_BUILD_DIR:-build}
if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null
elif [ $# -gt 0 ]; then
    meson configure "$dir" "$@" >/dev/null
fi
ninja -C "$dir" >/dev/null
echo "$dir/lodge"
