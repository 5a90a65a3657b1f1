#!/usr/bin/env bash
# Runs every benchmark side by side with QEMU and prints ratios. Not part of the test suite.
#   bench/run.sh [LODGE]
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
lodge=${1:-$top/build/lodge}
for b in "$top"/bench/*/run.sh; do
    echo "== $(basename "$(dirname "$b")")"
    "$b" "$lodge" || echo "(benchmark $(basename "$(dirname "$b")") failed)"
done
