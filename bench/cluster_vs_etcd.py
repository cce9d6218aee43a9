#!/usr/bin/env python3
"""A 3-node rampartd cluster against a 3-member etcd (Debian's etcd-server), in
the same run on the same disk (issue 6, "Figures").

Set-up, everything on 127.0.0.1, data under --datadir (default /var/tmp, a
real disk: tmpfs would flatter both):
  rampart  node_1..node_3, Raft over mutual TLS on the peer port (certificates
           from scripts/gen-certs.sh, ECDSA P-256; every node pins the other
           two by spki-sha256, as scripts/testnet.sh does), plain HTTP on the
           API, plugins: transport_tls only;
  etcd     3 members, plain HTTP client and peer URLs (etcd's defaults:
           heartbeat 100 ms, election 1000 ms).
Both clusters run side by side; the load always goes to the current leader's
API (rampart: /v1/status/leader, etcd: /v3/maintenance/status).

Phases:
  1. RSS per node: idle after the election, then after 10,000 distinct keys
     of 256 B written through the leader (8 keep-alive connections) and
     applied on every member.
  2. Throughput and latency, each as BENCH_PAIRS alternating pairs of wrk runs
     of BENCH_SECONDS (the order flips every pair), ratio = median of the
     per-pair ratios:
       put-seq    sequential PUT, 1 connection: p50/p99;
       put-64     PUT, BENCH_CONNECTIONS (64) connections;
       get-stale  GET ?stale vs etcd serializable range;
       get-strong GET ?consistent vs etcd's default (linearizable) range.
     PUTs cycle over 10,000 keys of 256 B (the wrk Lua scripts of
     bench/kvlib.py). The disk's fdatasync rate is measured right before each
     PUT workload. CPU per request is summed over the three members.
  3. Failover, BENCH_FAILOVERS (5) trials per cluster, alternating: kill -9
     of the leader, then, from that instant, (a) the first write that
     succeeds on a survivor (a PUT sent to both survivors every 10 ms,
     each attempt on its own connection: a hanging attempt never delays the
     next) and (b) the first time a survivor reports a new leader (polled
     every 10 ms). The member is restarted on its data and the cluster
     settles before the next trial. Median of the trials.

    python3 bench/cluster_vs_etcd.py --build BUILD [--tmpdir DIR] [--datadir DIR]
"""
import argparse
import os
import signal
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import BenchError, env_int, median_of, print_table, raise_on_signals, run_bench  # noqa: E402
from clusters import EtcdCluster, RampartCluster  # noqa: E402
from kvlib import (KEYS, VALUE_BYTES, Scratch, etcd_version, fsync_rate, kv_workloads, percentile,  # noqa: E402
                   require_real_disk, run_wrk_kv, write_keys, write_lua_scripts)

WORKLOADS = ("put-seq", "put-64", "get-stale", "get-strong")
POLL_S = 0.010  # failover: one write attempt and one leader query per survivor this often
SETUP = ("rampart: 3 nodes, Raft over mutual TLS on the peer port (ECDSA P-256 certificates from "
         "scripts/gen-certs.sh, spki-sha256 pins), plain HTTP on the API; "
         "etcd: 3 members, plain HTTP client and peer URLs")


RSS_SAMPLES = 5  # after the keys: RSS read this many times, 0.5 s apart, per member


def vm_hwm_kib(pid):
    """Peak RSS (VmHWM of /proc/PID/status) in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def measure_rss(cluster):
    """RSS of each member, idle then after KEYS keys: {member name: (role, idle KiB, after KiB,
    peak KiB)}. "After" is the median of RSS_SAMPLES readings: a member that is taking a
    snapshot at one instant holds the serialized copy for a moment (its peak shows it)."""
    li = cluster.settle("bench/settle")
    time.sleep(1)
    idle = [m.rss_kib() for m in cluster.members]
    leader = cluster.members[li]
    t0 = time.monotonic()
    write_keys(leader, KEYS, prefix="rss/k")
    took = time.monotonic() - t0
    cluster.settle("bench/rss-done")  # applied everywhere: the log is in order
    time.sleep(1)
    samples = [[] for _ in cluster.members]
    for k in range(RSS_SAMPLES):
        for i, m in enumerate(cluster.members):
            samples[i].append(m.rss_kib())
        if k + 1 < RSS_SAMPLES:
            time.sleep(0.5)
    out = {}
    for i, m in enumerate(cluster.members):
        out[m.name] = ("leader" if i == li else "follower", idle[i], statistics.median(samples[i]),
                       vm_hwm_kib(m.proc.pid))
    return out, took


def failover_trial(cluster, trial, deadline_s=30.0):
    """Kill -9 the leader; seconds until (a write succeeds on a survivor, a survivor
    reports a new leader). Restarts the member and waits for the cluster to settle."""
    li = cluster.settle(f"bench/failover-before-{trial}")
    time.sleep(1)  # heartbeats flowing again everywhere before the kill
    li = cluster.agreed_leader()
    victim = cluster.members[li]
    survivors = [m for i, m in enumerate(cluster.members) if i != li]
    found = {"write": None, "leader": None}
    lock = threading.Lock()
    key = f"bench/failover-{trial}"

    def note(what, t):
        with lock:
            if found[what] is None:
                found[what] = t

    def write_attempt(m, t0):
        try:
            if cluster.put(m, key, b"after", timeout=5) == 200:
                note("write", time.monotonic() - t0)
        except OSError:
            pass

    def leader_attempt(m, t0):
        idx = cluster.leader_index(m, timeout=5)
        if idx is not None and idx != li:
            note("leader", time.monotonic() - t0)

    threads = []
    victim.proc.send_signal(signal.SIGKILL)
    t0 = time.monotonic()
    victim.proc.wait()
    while time.monotonic() - t0 < deadline_s:
        with lock:
            done = found["write"] is not None and found["leader"] is not None
        if done:
            break
        threads = [t for t in threads if t.is_alive()]
        if len(threads) < 200:  # attempts that hang do not stop new ones
            for m in survivors:
                for fn in ((write_attempt,) if found["write"] is None else ()) + \
                        ((leader_attempt,) if found["leader"] is None else ()):
                    t = threading.Thread(target=fn, args=(m, t0), daemon=True)
                    t.start()
                    threads.append(t)
        time.sleep(POLL_S)
    for t in threads:
        t.join(timeout=10)
    if found["write"] is None or found["leader"] is None:
        raise BenchError(f"{cluster.name}: no new leader / no write within {deadline_s:.0f}s of killing "
                         f"{victim.name} ({found})")
    cluster.restart(victim)
    cluster.settle(f"bench/failover-after-{trial}")
    return found["write"], found["leader"], victim.name


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="Environment: BENCH_PAIRS (5), BENCH_SECONDS (10), BENCH_THREADS (1), "
                                        "BENCH_CONNECTIONS (64), BENCH_FAILOVERS (5), BENCH_KEEP (0).")
    ap.add_argument("--build", default="build", help="build directory with rampartd, rampartctl, plugins/")
    ap.add_argument("--tmpdir", default=None, help="scratch directory (configs, logs, wrk output); default: a new one")
    ap.add_argument("--datadir", default="/var/tmp", help="parent of every member's data (a real disk)")
    ap.add_argument("--phases", default="rss,throughput,failover",
                    help="comma-separated subset of rss,throughput,failover to run (default: all three, in that "
                         "order; a partial run is for investigation, not a result)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help=f"comma-separated subset of {','.join(WORKLOADS)} for the throughput phase")
    ap.add_argument("--rampart-yaml", default="",
                    help="YAML appended to every node's rampart.yml (a top-level section, e.g. "
                         "'cluster: {snapshot_threshold: 8192}'), for investigations")
    args = ap.parse_args()
    args.workloads = [w for w in args.workloads.split(",") if w]
    if not args.workloads or set(args.workloads) - set(WORKLOADS):
        ap.error(f"--workloads: use some of {','.join(WORKLOADS)}")
    if args.rampart_yaml and not args.rampart_yaml.endswith("\n"):
        args.rampart_yaml += "\n"
    args.phases = [p for p in args.phases.split(",") if p]
    unknown = set(args.phases) - {"rss", "throughput", "failover"}
    if unknown or not args.phases:
        ap.error(f"--phases: unknown {sorted(unknown)} (use rss, throughput, failover)")
    try:
        args.pairs = env_int("BENCH_PAIRS", 5, 1)
        args.seconds = env_int("BENCH_SECONDS", 10, 1)
        args.threads = env_int("BENCH_THREADS", 1, 1)
        args.connections = env_int("BENCH_CONNECTIONS", 64, 1)
        args.failovers = env_int("BENCH_FAILOVERS", 5, 1)
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 1
    raise_on_signals()
    scratch = Scratch(args.tmpdir, args.datadir, "rampart-clusterbench", "cluster_vs_etcd")
    tmp, logdir, pidfile, data, clusters = scratch.tmp, scratch.logdir, scratch.pidfile, scratch.data, scratch.servers

    def body():
        put_lua, range_lua = write_lua_scripts(logdir)
        kind = require_real_disk(data)
        print(f"{SETUP}.\ndata under {data} ({kind}); {args.pairs} pairs x {args.seconds}s per workload; "
              f"{args.failovers} failovers each; etcd {etcd_version()}; {os.cpu_count()} CPUs; "
              f"load average {load_average()}", flush=True)
        rampart = RampartCluster(tmp, pidfile, args.build, data, extra_yaml=args.rampart_yaml)
        if args.rampart_yaml:
            print(f"rampart configuration, appended to each node's: {args.rampart_yaml!r} (an investigation, "
                  f"not the default product)")
        etcd = EtcdCluster(tmp, pidfile, data)
        clusters.extend([rampart, etcd])
        rampart.start()
        etcd.start()

        rss, results, fsync = {}, {}, {}
        failover = {"rampart": [], "etcd": []}
        if "rss" in args.phases:
            print("\nRSS per node (fresh clusters)", flush=True)
        for c in ((rampart, etcd) if "rss" in args.phases else ()):
            rss[c.name] = measure_rss(c)
            print(f"  {c.name}: " + ", ".join(f"{n} ({role}) {idle / 1024:.1f} -> {after / 1024:.1f} MiB"
                                              for n, (role, idle, after, _) in rss[c.name][0].items())
                  + f"; {KEYS} keys in {rss[c.name][1]:.1f} s", flush=True)

        if "throughput" in args.phases:
            results, fsync = throughput(args, rampart, etcd, put_lua, range_lua, logdir, data)

        if "failover" in args.phases:
            print(f"\nfailover: kill -9 of the leader, {args.failovers} trials each, alternating "
                  f"(load average {load_average()})", flush=True)
        for i in range(args.failovers if "failover" in args.phases else 0):
            for c in ((rampart, etcd) if i % 2 == 0 else (etcd, rampart)):
                w, ldr, victim = failover_trial(c, i)
                failover[c.name].append((w, ldr))
                print(f"  trial {i + 1}/{args.failovers} {c.name}: killed {victim}; write ok after {w * 1000:.0f} ms, "
                      f"new leader reported after {ldr * 1000:.0f} ms", flush=True)
        report(args, results, fsync, rss, failover)
        return 0

    return run_bench(body, scratch.cleanup)


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def throughput(args, rampart, etcd, put_lua, range_lua, logdir, data):
    for c in (rampart, etcd):
        c.settle("bench/get")  # the key the GET workloads read (VALUE_BYTES long below)
        c.aim_at_leader()
        if c.put(c.target, "bench/get", b"v" * VALUE_BYTES) != 200:
            raise BenchError(f"{c.name}: PUT bench/get failed")
    print(f"\nload goes to the leaders: rampart {rampart.target.name}, etcd {etcd.target.name}", flush=True)
    workloads = kv_workloads(etcd, put_lua, range_lua, args.connections)
    results, fsync = {}, {}
    for wl, title, n, spec in [w for w in workloads if w[0] in args.workloads]:
        for c in (rampart, etcd):
            if c.agreed_leader() != c.members.index(c.target):
                raise BenchError(f"{c.name}: the leader changed during the benchmark (see the logs)")
        if wl.startswith("put"):
            fsync[wl] = fsync_rate(data)
            print(f"\n{title}: disk fdatasync rate right before: {fsync[wl]:.0f}/s; load average "
                  f"{load_average()}", flush=True)
        else:
            print(f"\n{title}; load average {load_average()}", flush=True)
        runs = {"rampart": [], "etcd": []}
        for i in range(args.pairs):
            for c in ((rampart, etcd) if i % 2 == 0 else (etcd, rampart)):
                script, sargs, path = spec(c)
                wait0 = c.runqueue_wait_ns()
                r = run_wrk_kv(c, script, sargs, path, n, args.threads, args.seconds, logdir, f"{wl}.{i}.{c.name}")
                r["runq_us_per_req"] = (c.runqueue_wait_ns() - wait0) / 1000 / r["requests"]
                runs[c.name].append(r)
            a, b = runs["rampart"][-1], runs["etcd"][-1]
            print(f"  pair {i + 1}/{args.pairs}: rampart {a['rps']:.0f} req/s p50 {a['p50_ms']:.2f} ms "
                  f"p99 {a['p99_ms']:.2f} ms, {a['cpu_us_per_req']:.0f} us CPU/req, {a['runq_us_per_req']:.0f} us runq/req | etcd {b['rps']:.0f} req/s "
                  f"p50 {b['p50_ms']:.2f} ms p99 {b['p99_ms']:.2f} ms, {b['cpu_us_per_req']:.0f} us CPU/req, {b['runq_us_per_req']:.0f} us runq/req | "
                  f"ratio {a['rps'] / b['rps']:.2f}x, steal {a['steal_pct']:.0f}/{b['steal_pct']:.0f}%, "
                  f"other {a['other_cores']:.2f}/{b['other_cores']:.2f} cores"
                  + (f", wrk timeouts (> 2 s) {a['timeouts']}/{b['timeouts']}" if a["timeouts"] + b["timeouts"] else ""),
                  flush=True)
        results[wl] = runs
    return results, fsync


def report(args, results, fsync, rss, failover):
    print(f"\n## 3-node rampart vs 3-member etcd\n{SETUP}; load average at the end {load_average()}")
    if results:
        report_throughput(results, fsync)
    if failover["rampart"]:
        report_failover(failover)
    if rss:
        report_rss(rss)


def report_throughput(results, fsync):
    print("\nmedians of alternating pairs; ratio = median of the per-pair ratios; CPU and run-queue wait "
          "(runnable, waiting for a CPU) summed over the 3 members' threads\n")
    rows = []
    for wl, runs in results.items():
        a, b = runs["rampart"], runs["etcd"]
        ratios = [x["rps"] / y["rps"] for x, y in zip(a, b)]
        ratio = statistics.median(ratios)
        if wl == "put-seq":
            p99r = statistics.median(x["p99_ms"] / y["p99_ms"] for x, y in zip(a, b))
            verdict = f"p99 ratio {p99r:.2f} ({'met' if p99r <= 1 else 'MISSED'}: <= 1)"
        else:
            verdict = f"{'met' if ratio >= 2 else 'MISSED'}: >= 2x"
        per_fsync = ""
        if wl in fsync:
            per_fsync = f"{median_of('rps', a) / fsync[wl]:.2f} / {median_of('rps', b) / fsync[wl]:.2f}"
        rows.append([wl, f"{median_of('rps', a):.0f}", f"{median_of('rps', b):.0f}", f"{ratio:.2f}x",
                     f"{min(ratios):.2f}-{max(ratios):.2f}",
                     f"{median_of('p50_ms', a):.2f} / {median_of('p50_ms', b):.2f}",
                     f"{median_of('p99_ms', a):.2f} / {median_of('p99_ms', b):.2f}",
                     f"{median_of('cpu_us_per_req', a):.0f} / {median_of('cpu_us_per_req', b):.0f}",
                     f"{median_of('runq_us_per_req', a):.0f} / {median_of('runq_us_per_req', b):.0f}",
                     per_fsync, verdict])
    print_table(["workload", "rampart req/s", "etcd req/s", "ratio", "pair range", "p50 ms r/e", "p99 ms r/e",
                 "CPU us/req r/e", "runq wait us/req r/e", "req per fsync r/e", "target"], rows, left=(0, 10))
    print("fdatasync rate before the PUT workloads: " + ", ".join(f"{k} {v:.0f}/s" for k, v in fsync.items()))
    for wl, runs in results.items():
        t = [sum(r["timeouts"] for r in runs[name]) for name in ("rampart", "etcd")]
        if sum(t):
            print(f"{wl}: requests wrk gave up on after 2 s (not in its percentiles): rampart {t[0]}, etcd {t[1]}")


def report_failover(failover):
    print(f"\nfailover after kill -9 of the leader ({len(failover['rampart'])} trials each, seconds; "
          f"target: median <= 1 s)\n")
    rows, med = [], {}
    for name in ("rampart", "etcd"):
        for k, what in ((0, "a write succeeds on a survivor"), (1, "a survivor reports a new leader")):
            xs = [t[k] for t in failover[name]]
            med[(name, k)] = percentile(xs, 50)
            rows.append([name, what, f"{med[(name, k)]:.2f}", f"{min(xs):.2f}-{max(xs):.2f}",
                         " ".join(f"{x:.2f}" for x in xs), "met" if med[(name, k)] <= 1.0 else "MISSED"])
    print_table(["cluster", "measure", "median", "range", "trials", "target"], rows, left=(0, 1, 4, 5))
    print(f"ratio rampart/etcd of the medians: write {med[('rampart', 0)] / med[('etcd', 0)]:.2f}, "
          f"new leader {med[('rampart', 1)] / med[('etcd', 1)]:.2f}")


def report_rss(rss):
    print(f"\nRSS per node, idle and after {KEYS} keys of {VALUE_BYTES} B (fresh clusters; VmRSS, after = median "
          f"of {RSS_SAMPLES} readings 0.5 s apart; peak = VmHWM)\n")
    rows = []
    for name in ("rampart", "etcd"):
        for node, (role, idle, after, peak) in sorted(rss[name][0].items(), key=lambda kv: kv[1][0] != "leader"):
            rows.append([name, node, role, f"{idle / 1024:.1f} MiB", f"{after / 1024:.1f} MiB", f"{peak / 1024:.1f} MiB"])
    print_table(["cluster", "node", "role", "idle", f"after {KEYS} keys", "peak"], rows, left=(0, 1, 2))

    def by_role(name, role):
        return [v[2] for v in rss[name][0].values() if v[0] == role]
    lead = max(by_role("rampart", "leader")) / max(by_role("etcd", "leader"))
    follow = statistics.median(by_role("rampart", "follower")) / statistics.median(by_role("etcd", "follower"))
    print(f"ratio rampart/etcd after the keys: leader {lead:.2f}, followers (medians) {follow:.2f} "
          f"({'met' if max(lead, follow) <= 0.2 else 'MISSED'}: <= 0.20 each)")


if __name__ == "__main__":
    sys.exit(main())
