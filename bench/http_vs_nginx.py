#!/usr/bin/env python3
"""rampartd vs nginx: small keep-alive GET /health, alternating wrk rounds.

Started by bench/run.sh, which owns the temporary directory and kills, on exit,
every PID this script writes to <tmpdir>/pids (a backstop: this script also
stops what it starts, in a finally block and on SIGTERM/SIGINT/SIGHUP).

What it does (see docs/benchmarks.md):
  1. starts rampartd (api.listen 127.0.0.1:0, the bound port read from its
     start-up log line) and nginx (1 worker, `return 200` of the same 16-byte
     body) on loopback;
  2. one short warm-up run each, then BENCH_PAIRS pairs of wrk runs,
     rampart then nginx (A B A B ...), BENCH_SECONDS each;
  3. per run: req/s and p99 from wrk, and server CPU per request from
     utime+stime in /proc/PID/stat (all server processes) before and after,
     divided by the number of requests wrk reports;
  4. prints the table, medians of the ratios, the targets, and rampartd's
     binary size, plugin sizes, idle RSS and RSS after the load.

Exit status: 0 when everything ran (the targets are informational),
1 when something failed to run. Shared helpers (/proc, wrk, rampartd, nginx and its
configuration, shared with bench/tls_vs_nginx.py): bench/benchlib.py.
"""

import argparse
import os
import statistics
import sys
import time

from benchlib import (run_bench, Nginx, Rampart, fmt_k, median_of, mib, nginx_version, print_table,
                      progress_line, raise_on_signals, read_bench_env, run_wrk, stripped_size, CLK_TCK)


# ---------------------------------------------------------------- report

def print_report(args, rampart, nginx, pairs, sizes, rss):
    w = sys.stdout.write
    w("\n")
    w(f"rampartd vs nginx, GET /health (16-byte body), keep-alive: "
      f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s --latency, "
      f"{len(pairs)} pairs, rampartd first in each pair\n")
    w(f"nginx: {nginx_version()}, worker_processes 1, return 200; "
      f"rampartd: {rampart.binary}; {os.cpu_count()} CPUs; CLK_TCK {CLK_TCK}\n\n")
    hdr = ("pair", "rampart req/s", "nginx req/s", "ratio", "p99 rampart", "p99 nginx",
           "CPU us/req rampart", "CPU us/req nginx", "CPU ratio", "steal % (r/n)",
           "other load, cores (r/n)")
    rows = []
    for i, (a, b) in enumerate(pairs, 1):
        rows.append((str(i), fmt_k(a["rps"]), fmt_k(b["rps"]), f"{a['rps'] / b['rps']:.2f}x",
                     f"{a['p99_ms']:.2f} ms", f"{b['p99_ms']:.2f} ms",
                     f"{a['cpu_us_per_req']:.2f}", f"{b['cpu_us_per_req']:.2f}",
                     f"{a['cpu_us_per_req'] / b['cpu_us_per_req']:.2f}x",
                     f"{a['steal_pct']:.0f}/{b['steal_pct']:.0f}",
                     f"{a['other_cores']:.2f}/{b['other_cores']:.2f}"))
    print_table(hdr, rows)
    w("(ratio = rampart/nginx; CPU = server utime+stime per request; steal = hypervisor steal "
      "during the run;\n other load = CPU used by neither the server nor wrk, in cores out of "
      f"{os.cpu_count()})\n")
    rps_ratio = statistics.median(a["rps"] / b["rps"] for a, b in pairs)
    cpu_ratio = statistics.median(a["cpu_us_per_req"] / b["cpu_us_per_req"] for a, b in pairs)
    med = median_of
    ra = [a for a, _ in pairs]
    nb = [b for _, b in pairs]
    w("\n")
    w(f"medians: rampart {fmt_k(med('rps', ra))} req/s, p99 {med('p99_ms', ra):.2f} ms, "
      f"{med('cpu_us_per_req', ra):.2f} us CPU/req | nginx {fmt_k(med('rps', nb))} req/s, "
      f"p99 {med('p99_ms', nb):.2f} ms, {med('cpu_us_per_req', nb):.2f} us CPU/req\n")
    w(f"median req/s ratio (rampart/nginx):          {rps_ratio:.2f}x\n")
    w(f"median CPU-per-request ratio (rampart/nginx): {cpu_ratio:.2f}x\n")
    w("\ntargets (informational):\n")
    w(f"  median ratio >= 1.0x nginx req/s:  {rps_ratio:.2f}x  "
      f"{'PASS' if rps_ratio >= 1.0 else 'FAIL'}\n")
    w(f"  CPU per request <= nginx's:        {cpu_ratio:.2f}x  "
      f"{'PASS' if cpu_ratio <= 1.0 else 'FAIL'}\n")
    errs = [(i, who, r) for i, (a, b) in enumerate(pairs, 1) for who, r in (("rampart", a), ("nginx", b))
            if r["non2xx"] or r["sock_errors"]]
    for i, who, r in errs:
        w(f"  warning: pair {i} {who}: {r['non2xx']} non-2xx responses, {r['sock_errors']} socket errors\n")
    w("\nrampartd footprint:\n")
    w(f"  binary {rampart.binary}: {sizes['binary']} bytes ({mib(sizes['binary']):.1f} MiB)\n")
    w(f"  plugins {rampart.plugins_dir}/*.so: {sizes['plugins_n']} files, "
      f"{sizes['plugins']} bytes ({mib(sizes['plugins']):.1f} MiB)\n")
    w(f"  stripped (what a router image ships): rampartd {sizes['binary_stripped'] / 1024:.0f} KiB, "
      f"plugins {sizes['plugins_stripped'] / 1024:.0f} KiB\n")
    w(f"  RSS idle (after start, before load): {rss['idle'] / 1024:.1f} MiB ({rss['idle']} KiB)\n")
    w(f"  RSS after the load:                  {rss['after'] / 1024:.1f} MiB ({rss['after']} KiB)\n")
    w(f"  (nginx master+worker RSS: idle {rss['nginx_idle'] / 1024:.1f} MiB, "
      f"after {rss['nginx_after'] / 1024:.1f} MiB)\n")


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="build directory (holds rampartd)")
    ap.add_argument("--tmpdir", required=True, help="scratch directory (configs, logs, data)")
    args = ap.parse_args()

    raise_on_signals()

    pidfile = os.path.join(args.tmpdir, "pids")
    rampart = Rampart(args.tmpdir, pidfile, args.build)
    nginx = Nginx(args.tmpdir, pidfile)
    def body():
        read_bench_env(args)
        logdir = os.path.join(args.tmpdir, "wrk")
        os.makedirs(logdir, exist_ok=True)

        rampart.start()
        nginx.start()
        time.sleep(0.5)  # let start-up allocations settle before reading idle RSS
        rss = {"idle": rampart.rss_kib(), "nginx_idle": nginx.rss_kib()}
        print(f"rampartd pid {rampart.proc.pid} on 127.0.0.1:{rampart.port} (log {rampart.log_path})")
        print(f"nginx pids {nginx.pids()} on 127.0.0.1:{nginx.port} (log {nginx.log_path})")

        if args.warmup:
            print(f"warm-up: {args.warmup}s each")
            run_wrk(rampart, args.warmup, args.threads, args.connections, logdir, "warmup-rampart")
            run_wrk(nginx, args.warmup, args.threads, args.connections, logdir, "warmup-nginx")

        pairs = []
        for i in range(1, args.pairs + 1):
            a = run_wrk(rampart, args.seconds, args.threads, args.connections, logdir, f"pair{i}-rampart")
            b = run_wrk(nginx, args.seconds, args.threads, args.connections, logdir, f"pair{i}-nginx")
            print(progress_line(i, args.pairs, "rampart", a, "nginx", b), flush=True)
            pairs.append((a, b))

        rss["after"] = rampart.rss_kib()
        rss["nginx_after"] = nginx.rss_kib()
        plugins = []
        if os.path.isdir(rampart.plugins_dir):
            plugins = [os.path.join(rampart.plugins_dir, n) for n in sorted(os.listdir(rampart.plugins_dir))
                       if n.endswith(".so")]
        sizes = {"binary": os.path.getsize(rampart.binary),
                 "plugins": sum(os.path.getsize(p) for p in plugins), "plugins_n": len(plugins),
                 "binary_stripped": stripped_size(rampart.binary),
                 "plugins_stripped": sum(stripped_size(p) for p in plugins)}
        print_report(args, rampart, nginx, pairs, sizes, rss)
        return 0

    return run_bench(body, cleanup=lambda: (nginx.stop(), rampart.stop()))


if __name__ == "__main__":
    sys.exit(main())
