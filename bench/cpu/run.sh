#!/usr/bin/env bash
# CPU benchmark: a CPU-bound static guest natively, under qemu-x86_64 and on Lodge's soft
# CPU; prints guest MIPS and the Lodge/QEMU and Lodge/native ratios.
#   bench/cpu/run.sh [LODGE]   (LODGE: the lodge binary; its build dir holds bench/cpu/)
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
lodge=${1:-$top/build/lodge}
build=$(dirname "$lodge")
bench=$build/bench/cpu/cpu_bench
guest=$build/bench/cpu/cpu_bench_guest
if [ ! -x "$bench" ] || [ ! -x "$guest" ]; then
    echo "cpu: $bench or $guest missing; build first:"
    echo "  ninja -C $build bench/cpu/cpu_bench bench/cpu/cpu_bench_guest"
    exit 1
fi
if ! command -v qemu-x86_64 >/dev/null; then
    echo "cpu: qemu-x86_64 not found (apt-get install qemu-user); running without QEMU"
    exec "$bench" "$guest" --no-qemu --repeat 3
fi
exec "$bench" "$guest" --qemu "$(command -v qemu-x86_64)" --repeat 3
