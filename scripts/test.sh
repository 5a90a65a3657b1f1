#!/usr/bin/env bash
# Quick start 2: install dependencies, build with -Werror, and run the whole test suite; then
# the unit tests again under ASan + UBSan. `--quick` runs only the fast subset.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
for a in "$@"; do
    case "$a" in
    --quick) quick=1 ;;
    *) echo "test.sh: unknown option $a (want --quick)" >&2; exit 2 ;;
    esac
done
scripts/deps.sh
# shellcheck disable=SC1090
source "$(tests/guest/kit.sh)"

run_suite() { # build-dir meson-setup-args... -- meson-test-args...
    local dir=$1; shift
    local setup=() testargs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do setup+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    testargs=("$@")
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "${setup[@]}" >/dev/null
    fi
    ninja -C "$dir"
    meson test -C "$dir" --print-errorlogs --num-processes 2 "${testargs[@]}" || true
}

count() { # testlog.json -> "pass fail skip"
    python3 - "$1" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(p, f, s)
PY
}

total_p=0 total_f=0 total_s=0
if [ $quick = 1 ]; then
    run_suite build-test -Dwerror_all=true -- --suite quick
    read -r p f s < <(count build-test/meson-logs/testlog.json)
    total_p=$p total_f=$f total_s=$s
else
    run_suite build-test -Dwerror_all=true --
    read -r p f s < <(count build-test/meson-logs/testlog.json)
    total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + s))
    run_suite build-asan -Dwerror_all=true -Dsanitize=true -Db_lundef=false -- --suite unit
    read -r p f s < <(count build-asan/meson-logs/testlog.json)
    total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + s))
fi
echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$total_f" = 0 ]
