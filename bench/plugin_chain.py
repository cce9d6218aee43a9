#!/usr/bin/env python3
"""The cost of the full plugin chain on GET /health: rampartd without plugins (A)
against rampartd with [ratelimit, idempotency, metrics] (B), alternating wrk rounds.

Started by bench/run.sh after the nginx comparison (same temporary directory
and pid file: run.sh kills, on exit, every PID recorded in <tmpdir>/pids that
still runs rampartd or wrk; this script also stops what it starts, in a
finally block and on SIGTERM/SIGINT/SIGHUP). Helpers: bench/benchlib.py.

  A  rampartd, no plugins.load (no plugin loaded), auth off;
  B  rampartd, plugins.load [ratelimit, idempotency, metrics], auth off, and a
     policies dir of its own: a copy of policies/ whose ratelimit.lua raises the
     three rules' limit and burst to 1e9 per 60 s (the policy validation allows
     integers up to 1e9), loopback NOT allow-listed. So every GET /health takes
     the real decision (rule `unauthenticated`, key = source address: address
     parsing, table lookup, bucket arithmetic, RateLimit headers) and is allowed;
     none takes the allow-list shortcut, none is refused.
  Both get the same policies directory and the same configuration otherwise.

Checked in the run (the measurement is refused, exit 1, when a check fails):
  - B answers GET /health with `RateLimit-Policy: "unauthenticated";q=1000000000;w=60`
    before anything is measured (the raised policy is the one in force);
  - every measured run: 0 non-2xx and 0 socket errors (wrk);
  - per B run, from B's /metrics before and after: the `allowed` decisions of
    rampart_ratelimit_decisions_total grew by the number of requests wrk
    reports (give or take the requests in flight when wrk stops, and the
    scrape itself), no other decision (`limited`, `allowlisted`,
    `blocked`, `shadow_limited`) grew at all, and the metrics plugin counted
    as many GET /health 200 answers (rampart_http_requests_total).

Environment as bench/http_vs_nginx.py: BENCH_PAIRS (5), BENCH_SECONDS (10),
BENCH_WARMUP (2), BENCH_CONNECTIONS (64), BENCH_THREADS (1).
Target (informational): median req/s ratio B/A >= 0.9.
Exit status: 0 when everything ran and the checks held, 1 otherwise.
"""

import argparse
import os
import re
import shutil
import statistics
import sys

from benchlib import (BenchError, run_bench, Rampart, fmt_k, http_get, median_of, print_table,
                      progress_line, raise_on_signals, read_bench_env, run_wrk, CLK_TCK)

PLUGINS = ["ratelimit", "idempotency", "metrics"]
BIG = 1000000000  # 1e9: the largest limit/burst the policy validation accepts
TARGET = 0.9
OTHER_DECISIONS = ("limited", "shadow_limited", "blocked", "allowlisted")


def write_policies(src, dst):
    """Copy the *.lua policies of src to dst, with limit and burst of every rate-limit rule at 1e9."""
    os.makedirs(dst, exist_ok=True)
    names = sorted(n for n in os.listdir(src) if n.endswith(".lua"))
    if "ratelimit.lua" not in names:
        raise BenchError(f"{src}/ratelimit.lua not found (--policies)")
    for n in names:
        shutil.copyfile(os.path.join(src, n), os.path.join(dst, n))
    path = os.path.join(dst, "ratelimit.lua")
    with open(path) as f:
        text = f.read()
    # Only the rules' own `limit = N,` / `burst = N,` lines (block.threshold is not touched;
    # window_s stays 60). The shipped file has three rules, each with both fields.
    text, n = re.subn(r"^(\s*)(limit|burst)(\s*=\s*)\d+(\s*,)", rf"\g<1>\g<2>\g<3>{BIG}\g<4>", text, flags=re.M)
    if n != 6:
        raise BenchError(f"{path}: expected 3 rules with limit and burst, changed {n} fields; "
                         "update write_policies() in bench/plugin_chain.py")
    with open(path, "w") as f:
        f.write("-- bench/plugin_chain.py: limit and burst raised to 1e9 per window, no allow-list\n" + text)
    return dst


_METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)", re.M)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(server):
    """B's /metrics: {decision: allowed-count summed over rules, ..., "http_health_200": n}."""
    status, _, body = http_get(server.port, "/metrics", timeout=5.0)
    if status != 200:
        raise BenchError(f"{server.name}: GET /metrics answered {status}")
    out = {"http_health_200": 0.0}
    seen = False
    for name, labels, value in _METRIC_LINE.findall(body):
        lab = dict(_LABEL.findall(labels or ""))
        if name == "rampart_ratelimit_decisions_total":
            seen = True
            out[lab.get("decision", "?")] = out.get(lab.get("decision", "?"), 0.0) + float(value)
        elif (name == "rampart_http_requests_total" and lab.get("route") == "/health"
              and lab.get("method") == "GET" and lab.get("status") == "200"):
            out["http_health_200"] += float(value)
    if not seen:
        raise BenchError(f"{server.name}: /metrics has no rampart_ratelimit_decisions_total "
                         "(is the ratelimit plugin loaded?)")
    return out


def check_policy_in_force(b):
    status, headers, _ = http_get(b.port, "/health")
    want = f'"unauthenticated";q={BIG};w=60'
    got = headers.get("ratelimit-policy")
    if status != 200 or got != want:
        raise BenchError(f"{b.name}: GET /health answered {status} with RateLimit-Policy {got!r}, "
                         f"want 200 and {want!r} (the raised policy is not in force); see {b.log_path}")
    m = re.search(r'"msg":"(ratelimit rules applied \(policy\)[^"]*)"', b.log_text())
    return m.group(1) if m else "(no 'ratelimit rules applied (policy)' line in the log)"


def measure_b(b, args, logdir, label):
    before = scrape(b)
    r = run_wrk(b, args.seconds, args.threads, args.connections, logdir, label)
    after = scrape(b)
    r["decisions"] = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in set(before) | set(after)}
    return r


def check_run(who, i, r, args, problems):
    if r["non2xx"] or r["sock_errors"]:
        problems.append(f"pair {i} {who}: {r['non2xx']} non-2xx responses, {r['sock_errors']} socket errors")
    d = r.get("decisions")
    if d is None:
        return
    allowed = d.get("allowed", 0.0)
    slack = args.connections + 2 + 0.001 * r["requests"]  # in flight at the end, the scrape
    if abs(allowed - r["requests"]) > slack:
        problems.append(f"pair {i} {who}: {allowed:.0f} allowed decisions for {r['requests']} requests")
    for k in OTHER_DECISIONS:
        if d.get(k, 0.0):
            problems.append(f"pair {i} {who}: {d[k]:.0f} '{k}' decisions (want 0)")
    answered = d.get("http_health_200", 0.0)
    if abs(answered - r["requests"]) > slack:
        problems.append(f"pair {i} {who}: the metrics plugin counted {answered:.0f} GET /health 200 "
                        f"for {r['requests']} requests")


def print_report(args, a_srv, b_srv, pairs, policy_line, problems):
    w = sys.stdout.write
    w("\n")
    w(f"plugin chain cost, GET /health (16-byte body), keep-alive: "
      f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s --latency, "
      f"{len(pairs)} pairs, A first in each pair\n")
    w(f"A = rampartd, no plugins; B = rampartd, plugins.load [{', '.join(PLUGINS)}], auth off, "
      f"rate limits 1e9/60 s, loopback not allow-listed\n")
    w(f"B: {policy_line}\n")
    w(f"rampartd: {a_srv.binary}; {os.cpu_count()} CPUs; CLK_TCK {CLK_TCK}\n\n")
    hdr = ("pair", "A req/s", "B req/s", "ratio B/A", "p99 A", "p99 B", "CPU us/req A",
           "CPU us/req B", "CPU ratio", "B decisions/req", "B non-2xx", "steal % (A/B)",
           "other load, cores (A/B)")
    rows = []
    for i, (a, b) in enumerate(pairs, 1):
        rows.append((str(i), fmt_k(a["rps"]), fmt_k(b["rps"]), f"{b['rps'] / a['rps']:.2f}x",
                     f"{a['p99_ms']:.2f} ms", f"{b['p99_ms']:.2f} ms",
                     f"{a['cpu_us_per_req']:.2f}", f"{b['cpu_us_per_req']:.2f}",
                     f"{b['cpu_us_per_req'] / a['cpu_us_per_req']:.2f}x",
                     f"{b['decisions'].get('allowed', 0.0) / b['requests']:.4f}", str(b["non2xx"]),
                     f"{a['steal_pct']:.0f}/{b['steal_pct']:.0f}",
                     f"{a['other_cores']:.2f}/{b['other_cores']:.2f}"))
    print_table(hdr, rows)
    w("(ratio = B/A; CPU = server utime+stime per request; B decisions/req = growth of "
      "rampart_ratelimit_decisions_total{decision=\"allowed\"}\n per request wrk counted; steal = "
      "hypervisor steal during the run; other load = CPU used by neither the server nor wrk,\n"
      f" in cores out of {os.cpu_count()})\n")
    rps_ratio = statistics.median(b["rps"] / a["rps"] for a, b in pairs)
    cpu_ratio = statistics.median(b["cpu_us_per_req"] / a["cpu_us_per_req"] for a, b in pairs)
    cpu_extra = statistics.median(b["cpu_us_per_req"] - a["cpu_us_per_req"] for a, b in pairs)
    ra = [a for a, _ in pairs]
    rb = [b for _, b in pairs]
    w("\n")
    w(f"medians: A {fmt_k(median_of('rps', ra))} req/s, p99 {median_of('p99_ms', ra):.2f} ms, "
      f"{median_of('cpu_us_per_req', ra):.2f} us CPU/req | B {fmt_k(median_of('rps', rb))} req/s, "
      f"p99 {median_of('p99_ms', rb):.2f} ms, {median_of('cpu_us_per_req', rb):.2f} us CPU/req\n")
    w(f"median req/s ratio (B/A):             {rps_ratio:.2f}x\n")
    w(f"median CPU-per-request ratio (B/A):   {cpu_ratio:.2f}x\n")
    w(f"median extra CPU per request (B - A): {cpu_extra:+.2f} us\n")
    total_req = sum(b["requests"] for b in rb)
    total_allowed = sum(b["decisions"].get("allowed", 0.0) for b in rb)
    w(f"B: {total_req} requests measured, {total_allowed:.0f} 'allowed' rate-limit decisions, "
      f"{sum(b['non2xx'] for b in rb)} non-2xx, "
      + ", ".join(f"{sum(b['decisions'].get(k, 0.0) for b in rb):.0f} '{k}'" for k in OTHER_DECISIONS)
      + "\n")
    w("\ntarget (informational):\n")
    w(f"  median req/s ratio B/A >= {TARGET}x:  {rps_ratio:.3f}x  "
      f"{'PASS' if rps_ratio >= TARGET else 'FAIL'}\n")
    w("\nchecks (the run measures what it claims):\n")
    if problems:
        for p in problems:
            w(f"  FAIL: {p}\n")
    else:
        w("  PASS: B's policy in force (RateLimit-Policy q=1000000000;w=60), 0 non-2xx and 0 socket "
          "errors in every run,\n        one 'allowed' decision per request in every B run, "
          "no other decision, and the metrics plugin\n        counted every answer "
          "(rampart_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"})\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="build directory (holds rampartd and plugins/)")
    ap.add_argument("--tmpdir", required=True, help="scratch directory (configs, logs, data)")
    ap.add_argument("--policies", default=os.path.join(os.path.dirname(here), "policies"),
                    help="the policies to copy (default: the source tree's policies/)")
    args = ap.parse_args()
    raise_on_signals()

    pidfile = os.path.join(args.tmpdir, "pids")
    policies = os.path.join(args.tmpdir, "plugin-chain-policies")
    auth_off = "auth:\n  enabled: false\n"
    a_srv = Rampart(args.tmpdir, pidfile, args.build, name="rampartd A (no plugins)",
                    subdir="plugins-off", policies_dir=policies, extra_yaml=auth_off)
    b_srv = Rampart(args.tmpdir, pidfile, args.build, name="rampartd B (plugin chain)",
                    subdir="plugins-on", plugins_load=PLUGINS, policies_dir=policies,
                    extra_yaml=auth_off)
    def body():
        read_bench_env(args)
        logdir = os.path.join(args.tmpdir, "wrk")
        os.makedirs(logdir, exist_ok=True)
        write_policies(args.policies, policies)

        a_srv.start()
        b_srv.start()
        policy_line = check_policy_in_force(b_srv)
        print(f"A: pid {a_srv.proc.pid} on 127.0.0.1:{a_srv.port} (log {a_srv.log_path})")
        print(f"B: pid {b_srv.proc.pid} on 127.0.0.1:{b_srv.port} (log {b_srv.log_path})")
        print(f"B: {policy_line}")

        if args.warmup:
            print(f"warm-up: {args.warmup}s each")
            run_wrk(a_srv, args.warmup, args.threads, args.connections, logdir, "warmup-plugins-off")
            run_wrk(b_srv, args.warmup, args.threads, args.connections, logdir, "warmup-plugins-on")

        pairs, problems = [], []
        for i in range(1, args.pairs + 1):
            a = run_wrk(a_srv, args.seconds, args.threads, args.connections, logdir, f"pair{i}-plugins-off")
            b = measure_b(b_srv, args, logdir, f"pair{i}-plugins-on")
            print(progress_line(i, args.pairs, "B", b, "A", a)
                  + f"; B allowed decisions {b['decisions'].get('allowed', 0.0):.0f} "
                  f"for {b['requests']} requests", flush=True)
            check_run("A", i, a, args, problems)
            check_run("B", i, b, args, problems)
            pairs.append((a, b))

        print_report(args, a_srv, b_srv, pairs, policy_line, problems)
        if problems:
            print("bench: error: plugin chain checks failed (above): the figures do not measure "
                  "the real rate-limit decision", file=sys.stderr)
            return 1
        return 0

    return run_bench(body, cleanup=lambda: (b_srv.stop(), a_srv.stop()))


if __name__ == "__main__":
    sys.exit(main())
