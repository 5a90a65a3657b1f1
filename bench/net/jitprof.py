#!/usr/bin/env python3
"""Self-time profile of a Lodge process recorded with `perf record` (bench/net/run.sh's
NET_BENCH_PERF) while LODGE_JIT_PERFMAP=1 wrote /tmp/perf-PID.map.

The translator reuses its code cache, so the map holds many overlapping ranges (28000 in one
e1000 run) and `perf report` names a hot translated block after whichever translation it
picks, often one from boot. Here a sample in translated code goes to the latest translation
covering its address, then to the guest kernel function holding that block's RIP (from the
guest's /proc/kallsyms: tests/guest/scripts/netksyms.sh sends it to the host).

    bench/net/jitprof.py PERF_DATA KALLSYMS [TOP]     (the map is the one perf names)
"""
import bisect
import collections
import re
import subprocess
import sys


def main():
    data, kallsyms = sys.argv[1:3]
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    out = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym,dso", "-G"],
                         capture_output=True, text=True).stdout
    m = re.search(r"\((/tmp/perf-\d+\.map)\)", out)
    if not m:
        print("no samples in translated code (was LODGE_JIT_PERFMAP=1 set?)")
        return
    pmap = m.group(1)
    ents = []
    for i, line in enumerate(open(pmap)):
        a, s, n = line.split()[:3]
        ents.append((int(a, 16), int(s, 16), i, n))
    ents.sort()
    starts = [e[0] for e in ents]
    maxsz = max((e[1] for e in ents), default=0)
    ks = []
    for line in open(kallsyms):
        p = line.split()
        if len(p) >= 3:
            ks.append((int(p[0], 16), p[2] + (p[3] if len(p) > 3 else "")))
    ks.sort()
    ka = [k[0] for k in ks]

    def guest(ip):
        j = bisect.bisect_right(starts, ip) - 1
        best = None
        while j >= 0 and starts[j] > ip - maxsz:
            a, s, i, n = ents[j]
            if a + s > ip and (best is None or i > best[2]):
                best = ents[j]
            j -= 1
        if not best or not best[3].startswith("guest_"):
            return "?jit"
        rip = int(best[3][6:], 16)
        k = bisect.bisect_right(ka, rip) - 1
        return "G:" + (ks[k][1] if k >= 0 else hex(rip))

    agg = collections.Counter()
    n = 0
    for line in out.splitlines():
        p = line.split(None, 1)
        try:
            ip = int(p[0], 16)
        except (IndexError, ValueError):
            continue
        rest = p[1] if len(p) > 1 else ""
        n += 1
        if "perf-" in rest or "guest_" in rest:
            agg[guest(ip)] += 1
        else:
            m = re.match(r"(\S+)", rest)
            agg[m.group(1) if m else "?"] += 1
    if not n:
        print("no samples")
        return
    g = sum(v for k, v in agg.items() if k.startswith("G:"))
    print(f"samples {n}, translated guest code {100.0 * g / n:.1f}%")
    for k, v in agg.most_common(top):
        print(f"{100.0 * v / n:6.2f} {k}")


if __name__ == "__main__":
    main()
