#!/usr/bin/env bash
# Quick start 1: install dependencies, build, fetch the Debian test guest, and boot it with a
# shell on this terminal. `poweroff -f` in the guest (or Ctrl-A x) ends it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
lodge=$(scripts/build.sh)
# shellcheck disable=SC1090
source "$(tests/guest/kit.sh)"
exec "$lodge" run --kernel "$LODGE_GUEST_KERNEL" --initrd "$LODGE_GUEST_INITRD" \
    --append "console=ttyS0 quiet lodge.shell=1" --mem 512M "$@"
