#!/usr/bin/env python3
"""rampartd's KV store against a one-member etcd (Debian's etcd-server), in the
same run on the same disk, alternating rounds (issue 5, "Tests and figures").

Workloads, each as BENCH_PAIRS alternating pairs of wrk runs of BENCH_SECONDS
(the order flips every pair so drift hits both sides alike):
  put-seq   sequential PUT latency: 1 connection, p50/p99;
  put-64    PUT throughput, BENCH_CONNECTIONS (64) connections;
  get-stale GET throughput: rampart ?stale vs etcd serializable range;
  get-strong GET throughput: rampart ?consistent (linearizable) vs etcd's
            default (linearizable) range.
PUTs cycle over 10,000 keys of 256-byte values (wrk Lua scripts with the
requests precomputed, base64 JSON for etcd's gateway: /v3/kv/put, /v3/kv/range).
Then RSS: fresh instances of both, idle RSS, 10,000 distinct keys of 256 B
written, RSS again.

Right before the durable workloads the disk's fdatasync rate is measured in
the same directory (4 KiB append + fdatasync for 2 s), and PUT figures are
also given per fsync. Server CPU per request comes from /proc/PID/stat.
Everything listens on 127.0.0.1; data lives under --datadir (default
/var/tmp, a real disk: tmpfs would flatter both).

    python3 bench/kv_vs_etcd.py --build BUILD [--tmpdir DIR] [--datadir DIR]
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import BenchError, Rampart, env_int, median_of, print_table, raise_on_signals, run_bench  # noqa: E402
from kvlib import (KEYS, VALUE_BYTES, Etcd, Scratch, b64, etcd_version, fsync_rate, kv_workloads,  # noqa: E402
                   rampart_put, require_real_disk, run_wrk_kv, write_keys, write_lua_scripts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--tmpdir", default=None, help="scratch directory (logs, scripts); default: a new one")
    ap.add_argument("--datadir", default="/var/tmp", help="parent of both servers' data (a real disk)")
    args = ap.parse_args()
    args.pairs = env_int("BENCH_PAIRS", 5, 1)
    args.seconds = env_int("BENCH_SECONDS", 10, 1)
    args.threads = env_int("BENCH_THREADS", 1, 1)
    args.connections = env_int("BENCH_CONNECTIONS", 64, 1)
    raise_on_signals()
    scratch = Scratch(args.tmpdir, args.datadir, "rampart-kvbench", "kv_vs_etcd")
    tmp, logdir, pidfile, data, servers = scratch.tmp, scratch.logdir, scratch.pidfile, scratch.data, scratch.servers

    def body():
        put_lua, range_lua = write_lua_scripts(logdir)
        kind = require_real_disk(data)
        print(f"data under {data} ({kind}); {args.pairs} pairs x {args.seconds}s per workload; "
              f"etcd {etcd_version()}; {os.cpu_count()} CPUs")

        # Rampart's data in the same directory tree as etcd's (same disk).
        rampart = Rampart(tmp, pidfile, args.build, subdir="rampart-kv", data_dir=os.path.join(data, "rampart"))
        etcd = Etcd(tmp, pidfile, data)
        servers.extend([rampart, etcd])
        rampart.start()
        etcd.start()
        # One key for the GET workloads.
        rampart_put(rampart, "bench/get", b"v" * VALUE_BYTES)
        if etcd.post("/v3/kv/put", {"key": b64("bench/get"), "value": b64("v" * VALUE_BYTES)})[0] != 200:
            raise BenchError("etcd: initial put failed")

        workloads = kv_workloads(etcd, put_lua, range_lua, args.connections)
        results = {}
        fsync = {}
        for wl, title, conns, spec in workloads:
            if wl.startswith("put"):
                fsync[wl] = fsync_rate(data)
                print(f"\n{title}: disk fdatasync rate right before: {fsync[wl]:.0f}/s")
            else:
                print(f"\n{title}")
            runs = {"rampart": [], "etcd": []}
            for i in range(args.pairs):
                order = (rampart, etcd) if i % 2 == 0 else (etcd, rampart)
                for s in order:
                    script, sargs, path = spec(s)
                    label = f"{wl}.{i}.{s.name}"
                    r = run_wrk_kv(s, script, sargs, path, conns, args.threads, args.seconds, logdir, label)
                    runs["rampart" if s is rampart else "etcd"].append(r)
                a, b = runs["rampart"][-1], runs["etcd"][-1]
                print(f"  pair {i + 1}/{args.pairs}: rampart {a['rps']:.0f} req/s p50 {a['p50_ms']:.2f} ms "
                      f"p99 {a['p99_ms']:.2f} ms, {a['cpu_us_per_req']:.1f} us CPU/req | etcd {b['rps']:.0f} req/s "
                      f"p50 {b['p50_ms']:.2f} ms p99 {b['p99_ms']:.2f} ms, {b['cpu_us_per_req']:.1f} us CPU/req | "
                      f"ratio {a['rps'] / b['rps']:.2f}x, steal {a['steal_pct']:.0f}/{b['steal_pct']:.0f}%, "
                      f"other {a['other_cores']:.2f}/{b['other_cores']:.2f} cores", flush=True)
            results[wl] = runs

        # RSS on fresh instances: idle, then after KEYS distinct keys.
        for s in (rampart, etcd):
            s.stop()
        servers.clear()
        rampart2 = Rampart(tmp, pidfile, args.build, subdir="rampart-rss", data_dir=os.path.join(data, "rampart-rss"))
        etcd2 = Etcd(tmp, pidfile, data, subdir="etcd-rss")
        servers.extend([rampart2, etcd2])
        rss = {}
        for s in (rampart2, etcd2):
            s.start()
            time.sleep(1)
            idle = s.rss_kib()
            t0 = time.monotonic()
            write_keys(s, KEYS)
            took = time.monotonic() - t0
            time.sleep(1)
            rss[s.name] = (idle, s.rss_kib(), took)
        report(args, results, fsync, rss)
        return 0

    return run_bench(body, scratch.cleanup)


def report(args, results, fsync, rss):
    print("\n## rampart vs etcd (medians of alternating pairs; ratio = median of per-pair ratios)\n")
    rows = []
    targets = {"put-seq": None, "put-64": 2.0, "get-stale": 2.0, "get-strong": 2.0}
    for wl, runs in results.items():
        a, b = runs["rampart"], runs["etcd"]
        ratios = [x["rps"] / y["rps"] for x, y in zip(a, b)]
        ratio = statistics.median(ratios)
        target = targets[wl]
        verdict = "" if target is None else ("met" if ratio >= target else "MISSED")
        if wl == "put-seq":
            p99r = statistics.median(x["p99_ms"] / y["p99_ms"] for x, y in zip(a, b))
            verdict = f"p99 ratio {p99r:.2f} ({'met' if p99r <= 1 else 'MISSED'}: <= 1)"
        per_fsync = ""
        if wl in fsync:
            per_fsync = f"{median_of('rps', a) / fsync[wl]:.2f} / {median_of('rps', b) / fsync[wl]:.2f}"
        rows.append([wl, f"{median_of('rps', a):.0f}", f"{median_of('rps', b):.0f}", f"{ratio:.2f}x",
                     f"{min(ratios):.2f}-{max(ratios):.2f}",
                     f"{median_of('p50_ms', a):.2f} / {median_of('p50_ms', b):.2f}",
                     f"{median_of('p99_ms', a):.2f} / {median_of('p99_ms', b):.2f}",
                     f"{median_of('cpu_us_per_req', a):.1f} / {median_of('cpu_us_per_req', b):.1f}",
                     per_fsync, verdict])
    print_table(["workload", "rampart req/s", "etcd req/s", "ratio", "pair range", "p50 ms r/e", "p99 ms r/e",
                 "CPU us/req r/e", "req per fsync r/e", "target"], rows, left=(0, 9))
    ra, ea = rss["rampartd"], rss["etcd"]
    print(f"\nRSS idle: rampart {ra[0] / 1024:.1f} MiB, etcd {ea[0] / 1024:.1f} MiB; after {KEYS} keys of "
          f"{VALUE_BYTES} B: rampart {ra[1] / 1024:.1f} MiB, etcd {ea[1] / 1024:.1f} MiB; ratio "
          f"{ra[1] / ea[1]:.2f} ({'met' if ra[1] * 5 <= ea[1] else 'MISSED'}: <= 0.20); "
          f"load took {ra[2]:.1f} s / {ea[2]:.1f} s (8 connections)")
    print(f"fdatasync rate before the PUT workloads: "
          + ", ".join(f"{k} {v:.0f}/s" for k, v in fsync.items()))


if __name__ == "__main__":
    sys.exit(main())
