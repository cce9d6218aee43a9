#!/usr/bin/env python3
"""Where a one-node rampartd's RSS goes (issue 5, memory): start a fresh node,
read /proc/PID/smaps idle and after 10,000 keys of 256 B (bench/kvlib.py's
write_keys, as bench/kv_vs_etcd.py does), and print RSS by kind of mapping:
the binary, shared libraries, the main heap ([heap]), other anonymous
mappings (glibc's per-thread malloc arenas, LuaJIT's allocations, mmap'd
blocks), thread stacks, and the rest; Private vs Shared for each.

    python3 bench/rss_breakdown.py --build BUILD [--keys N] [--datadir DIR]

Linux only; everything on 127.0.0.1; the node is stopped at the end.
"""
import argparse
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Rampart  # noqa: E402
from kvlib import write_keys  # noqa: E402

HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$")


def classify(name, exe, after_guard):
    if name == "[heap]":
        return "heap (brk: main arena)"
    if name == "[stack]":
        return "main stack"
    if name.startswith("["):
        return "other"
    if name and os.path.realpath(name) == exe:
        return "binary"
    if ".so" in name:
        return "shared libraries"
    if name:
        return "other files"
    if after_guard:  # pthread stacks sit right above a one-page PROT_NONE guard
        return "thread stacks"
    return "anonymous (arenas, mmap, LuaJIT)"


def breakdown(pid):
    exe = os.path.realpath(f"/proc/{pid}/exe")
    out = {}
    cur = None
    prev = None  # (perms, size, name) of the mapping before
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = HEADER.match(line)
            if m:
                lo, hi = int(m.group(1), 16), int(m.group(2), 16)
                name = m.group(4).strip()
                guard = prev is not None and prev == ("---p", 4096, "") and m.group(3) == "rw-p"
                cur = out.setdefault(classify(name, exe, guard), [0, 0, 0])
                prev = (m.group(3), hi - lo, name)
                continue
            key, _, rest = line.partition(":")
            if cur is None or not rest.strip().endswith("kB"):
                continue
            kib = int(rest.split()[0])
            if key == "Rss":
                cur[0] += kib
            elif key in ("Private_Clean", "Private_Dirty"):
                cur[1] += kib
            elif key in ("Shared_Clean", "Shared_Dirty"):
                cur[2] += kib
    threads = len(os.listdir(f"/proc/{pid}/task"))
    return out, threads


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--datadir", default="/var/tmp")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rampart-rss.")
    data = tempfile.mkdtemp(prefix="rampart-rss-data.", dir=args.datadir)
    node = Rampart(tmp, os.path.join(tmp, "pids"), args.build, subdir="node", data_dir=data)
    node.start()
    try:
        time.sleep(1)
        idle, idle_threads = breakdown(node.proc.pid)
        write_keys(node, args.keys)
        time.sleep(1)
        full, threads = breakdown(node.proc.pid)
    finally:
        node.stop()
    kinds = sorted(set(idle) | set(full), key=lambda k: -full.get(k, [0])[0])
    print(f"{'mapping':36} {'idle KiB':>9} {'private':>8} {'shared':>7} | {'keys KiB':>9} {'private':>8} "
          f"{'shared':>7} | {'delta':>6}")
    tot_i = tot_f = 0
    for k in kinds:
        a, b = idle.get(k, [0, 0, 0]), full.get(k, [0, 0, 0])
        tot_i += a[0]
        tot_f += b[0]
        print(f"{k:36} {a[0]:9} {a[1]:8} {a[2]:7} | {b[0]:9} {b[1]:8} {b[2]:7} | {b[0] - a[0]:6}")
    print(f"{'total RSS':36} {tot_i:9} {'':8} {'':7} | {tot_f:9} {'':8} {'':7} | {tot_f - tot_i:6}")
    print(f"threads: {idle_threads} idle, {threads} after {args.keys} keys")


if __name__ == "__main__":
    main()
