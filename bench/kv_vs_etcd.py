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
import base64
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (BenchError, Rampart, Server, env_int, free_port, median_of,  # noqa: E402
                      parse_duration_ms, parse_wrk, print_table, raise_on_signals, run_bench,
                      run_measured)

KEYS = 10000
VALUE_BYTES = 256
ETCD = "/usr/bin/etcd"

LUA_COMMON = r"""
local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local function b64(data)
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end
"""

# PUT: every request precomputed at init, so the script costs the same per
# request on both sides (a table lookup).
LUA_PUT = LUA_COMMON + r"""
local reqs, n, i = {}, 0, 0
function init(args)
  local mode, keys, size = args[1], tonumber(args[2]), tonumber(args[3])
  local value = string.rep('v', size)
  local bvalue = b64(value)
  for k = 1, keys do
    local key = string.format('bench/k%06d', k)
    if mode == 'rampart' then
      reqs[k] = wrk.format('PUT', '/v1/kv/' .. key, nil, value)
    else
      reqs[k] = wrk.format('POST', '/v3/kv/put', { ['Content-Type'] = 'application/json' },
        '{"key":"' .. b64(key) .. '","value":"' .. bvalue .. '"}')
    end
  end
  n = keys
  i = math.random(0, n - 1)
end
function request()
  i = i % n + 1
  return reqs[i]
end
"""

LUA_RANGE = LUA_COMMON + r"""
local req
function init(args)
  local body = '{"key":"' .. b64(args[1]) .. '"'
  if args[2] == 'serializable' then body = body .. ',"serializable":true' end
  req = wrk.format('POST', '/v3/kv/range', { ['Content-Type'] = 'application/json' }, body .. '}')
end
function request() return req end
"""


class Etcd(Server):
    """A one-member etcd cluster on 127.0.0.1 with its data under datadir."""

    name = "etcd"

    def __init__(self, tmpdir, pidfile, datadir, subdir="etcd"):
        super().__init__(tmpdir, pidfile)
        self.dir = os.path.join(datadir, subdir)
        self.subdir = subdir

    def start(self):
        if not os.access(ETCD, os.X_OK):
            raise BenchError(f"{ETCD} not found (make deps installs etcd-server)")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.port, peer = free_port(), free_port()
        self.log_path = os.path.join(self.tmpdir, f"{self.subdir}.log")
        client, peer_url = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{peer}"
        cmd = [ETCD, "--name", "bench", "--data-dir", os.path.join(self.dir, "data"),
               "--listen-client-urls", client, "--advertise-client-urls", client,
               "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
               "--initial-cluster", f"bench={peer_url}", "--initial-cluster-state", "new",
               "--logger", "zap", "--log-level", "warn"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(cmd, cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT)
        self.record_pid(self.proc.pid)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if self.post("/v3/kv/range", {"key": b64("ready")})[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"etcd not ready after 30s; see {self.log_path}")

    def post(self, path, body):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def stop(self):
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def fs_type(path):
    out = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def fsync_rate(directory, seconds=2.0):
    """4 KiB appends + fdatasync per second in directory (the figure the
    durable writes are bounded by)."""
    path = os.path.join(directory, "fsync-probe")
    block = b"\x5a" * 4096
    n = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            os.write(fd, block)
            os.fdatasync(fd)
            n += 1
        return n / (time.monotonic() - t0)
    finally:
        os.close(fd)
        os.unlink(path)


def run_wrk_script(server, script, script_args, conns, threads, seconds, logdir, label, url_path="/"):
    cmd = ["wrk", f"-t{min(threads, conns)}", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", script,
           f"http://127.0.0.1:{server.port}{url_path}", "--"] + [str(a) for a in script_args]
    stdout, m = run_measured(server, cmd, seconds, logdir, label, "wrk")
    r = parse_wrk(stdout)
    r.update(m)
    if r["requests"] == 0:
        raise BenchError(f"wrk made no requests to {server.name} ({label})")
    if r["non2xx"] or r["sock_errors"]:
        raise BenchError(f"{server.name} {label}: {r['non2xx']} non-2xx answers, {r['sock_errors']} socket errors "
                         f"(see {logdir}/{label}.wrk.txt)")
    m50 = re.search(r"^\s+50%\s+(\S+)", stdout, re.M)
    r["p50_ms"] = parse_duration_ms(m50.group(1)) if m50 else float("nan")
    r["cpu_us_per_req"] = r["cpu_s"] * 1e6 / r["requests"]
    return r


def write_keys(server, n, conns=8):
    """n distinct keys of VALUE_BYTES, over `conns` keep-alive connections."""
    value = b"v" * VALUE_BYTES
    errors = []

    def worker(lo, hi):
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            for k in range(lo, hi):
                key = f"rss/k{k:06d}"
                if isinstance(server, Etcd):
                    c.request("POST", "/v3/kv/put", json.dumps({"key": b64(key), "value": b64(value)}),
                              {"Content-Type": "application/json"})
                else:
                    c.request("PUT", f"/v1/kv/{key}", value)
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    errors.append(f"{key}: {r.status}")
                    return
        except OSError as e:
            errors.append(str(e))
        finally:
            c.close()

    step = (n + conns - 1) // conns
    threads = [threading.Thread(target=worker, args=(i, min(n, i + step))) for i in range(0, n, step)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise BenchError(f"{server.name}: writing {n} keys failed: {errors[0]}")


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
    own_tmp = args.tmpdir is None
    tmp = args.tmpdir or tempfile.mkdtemp(prefix="rampart-kvbench-")
    logdir = os.path.join(tmp, "kv_vs_etcd")
    os.makedirs(logdir, exist_ok=True)
    pidfile = os.path.join(tmp, "pids")
    data = tempfile.mkdtemp(prefix="rampart-kvbench-data-", dir=args.datadir)
    servers = []

    def cleanup():
        for s in servers:
            s.stop()
        shutil.rmtree(data, ignore_errors=True)
        if own_tmp and os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)

    def body():
        put_lua = os.path.join(logdir, "put.lua")
        range_lua = os.path.join(logdir, "range.lua")
        with open(put_lua, "w") as f:
            f.write(LUA_PUT)
        with open(range_lua, "w") as f:
            f.write(LUA_RANGE)
        kind = fs_type(data)
        if kind in ("tmpfs", "ramfs"):
            raise BenchError(f"{data} is on {kind}: give --datadir on a real disk")
        print(f"data under {data} ({kind}); {args.pairs} pairs x {args.seconds}s per workload; "
              f"etcd {etcd_version()}; {os.cpu_count()} CPUs")

        rampart = Rampart(tmp, pidfile, args.build, subdir="rampart-kv", extra_yaml="")
        rampart_data_parent = data
        # Rampart's data in the same directory tree as etcd's (same disk).
        rampart.config_text = _with_data_dir(rampart.config_text, os.path.join(rampart_data_parent, "rampart"))
        etcd = Etcd(tmp, pidfile, data)
        servers.extend([rampart, etcd])
        rampart.start()
        etcd.start()
        # One key for the GET workloads.
        rampart_put(rampart, "bench/get", b"v" * VALUE_BYTES)
        if etcd.post("/v3/kv/put", {"key": b64("bench/get"), "value": b64("v" * VALUE_BYTES)})[0] != 200:
            raise BenchError("etcd: initial put failed")

        c = args.connections
        workloads = [
            ("put-seq", "sequential PUT, 1 conn", 1,
             lambda s: (put_lua, ["rampart" if s is rampart else "etcd", KEYS, VALUE_BYTES], "/")),
            ("put-64", f"PUT, {c} conns", c,
             lambda s: (put_lua, ["rampart" if s is rampart else "etcd", KEYS, VALUE_BYTES], "/")),
            ("get-stale", f"GET stale / serializable, {c} conns", c,
             lambda s: (range_lua, ["bench/get", "serializable"], "/") if s is etcd
             else (None, [], "/v1/kv/bench/get?stale")),
            ("get-strong", f"GET strong / linearizable, {c} conns", c,
             lambda s: (range_lua, ["bench/get", "linearizable"], "/") if s is etcd
             else (None, [], "/v1/kv/bench/get?consistent")),
        ]
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
                    if script is None:
                        r = run_wrk_plain(s, path, conns, args.threads, args.seconds, logdir, label)
                    else:
                        r = run_wrk_script(s, script, sargs, conns, args.threads, args.seconds, logdir, label, path)
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
        rampart2 = Rampart(tmp, pidfile, args.build, subdir="rampart-rss")
        rampart2.config_text = _with_data_dir(rampart2.config_text, os.path.join(data, "rampart-rss"))
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

    return run_bench(body, cleanup)


def _with_data_dir(config_text, data_dir):
    """Rampart's config with node.data_dir moved to data_dir (benchlib puts it
    under the scratch directory)."""
    def text(d):
        os.makedirs(data_dir, exist_ok=True)
        out = config_text(d)
        return out.replace(f"  data_dir: {d}/data\n", f"  data_dir: {data_dir}\n", 1)
    return text


def rampart_put(server, key, value):
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        c.request("PUT", f"/v1/kv/{key}", value)
        r = c.getresponse()
        if r.status != 200:
            raise BenchError(f"rampart: initial PUT answered {r.status}")
        r.read()
    finally:
        c.close()


def run_wrk_plain(server, path, conns, threads, seconds, logdir, label):
    cmd = ["wrk", f"-t{min(threads, conns)}", f"-c{conns}", f"-d{seconds}s", "--latency",
           f"http://127.0.0.1:{server.port}{path}"]
    stdout, m = run_measured(server, cmd, seconds, logdir, label, "wrk")
    r = parse_wrk(stdout)
    r.update(m)
    if r["requests"] == 0 or r["non2xx"] or r["sock_errors"]:
        raise BenchError(f"{server.name} {label}: {r['requests']} requests, {r['non2xx']} non-2xx, "
                         f"{r['sock_errors']} socket errors")
    m50 = re.search(r"^\s+50%\s+(\S+)", stdout, re.M)
    r["p50_ms"] = parse_duration_ms(m50.group(1)) if m50 else float("nan")
    r["cpu_us_per_req"] = r["cpu_s"] * 1e6 / r["requests"]
    return r


def etcd_version():
    out = subprocess.run([ETCD, "--version"], capture_output=True, text=True).stdout
    line = out.splitlines()[0] if out else "?"
    return line.replace("etcd Version: ", "")


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
