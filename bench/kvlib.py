"""Helpers shared by the KV benchmarks against etcd (Python standard library only).

Used by bench/kv_vs_etcd.py (one rampartd vs a one-member etcd) and
bench/cluster_vs_etcd.py (three rampartd nodes vs a three-member etcd):
etcd members (Debian's etcd-server, JSON gateway), the wrk Lua scripts that
precompute PUT and range requests for both, one measured wrk run against a
KV workload, loading N distinct keys, the disk's fdatasync rate, and
percentiles. The generic parts (/proc readings, wrk parsing, rampartd) are
in bench/benchlib.py.
"""

import base64
import http.client
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

from benchlib import BenchError, Server, free_port, parse_duration_ms, parse_wrk, run_measured

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
# request on both sides (a table lookup). Arguments: rampart|etcd, keys, value bytes.
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

# etcd range of one key. Arguments: key, serializable|linearizable.
LUA_RANGE = LUA_COMMON + r"""
local req
function init(args)
  local body = '{"key":"' .. b64(args[1]) .. '"'
  if args[2] == 'serializable' then body = body .. ',"serializable":true' end
  req = wrk.format('POST', '/v3/kv/range', { ['Content-Type'] = 'application/json' }, body .. '}')
end
function request() return req end
"""


class Scratch:
    """A KV benchmark's directories and the servers to stop: its scratch
    directory (`tmpdir`, or a new one removed at the end unless BENCH_KEEP=1)
    with logdir = <scratch>/<name> and the pid file, and a new data directory
    under `datadir`, always removed. Servers appended to .servers are
    stopped by cleanup()."""

    def __init__(self, tmpdir, datadir, prefix, name):
        self.own_tmp = tmpdir is None
        self.tmp = tmpdir or tempfile.mkdtemp(prefix=f"{prefix}-")
        self.logdir = os.path.join(self.tmp, name)
        os.makedirs(self.logdir, exist_ok=True)
        self.pidfile = os.path.join(self.tmp, "pids")
        self.data = tempfile.mkdtemp(prefix=f"{prefix}-data-", dir=datadir)
        self.servers = []

    def cleanup(self):
        for s in self.servers:
            s.stop()
        shutil.rmtree(self.data, ignore_errors=True)
        if self.own_tmp and os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)


def kv_workloads(etcd, put_lua, range_lua, conns):
    """The four throughput workloads of both etcd comparisons, as (name, title,
    connections, spec): spec(server) is (wrk script or None, its arguments,
    path) for that server, `etcd` being the etcd side and any other rampart."""
    def put(s):
        return put_lua, ["etcd" if s is etcd else "rampart", KEYS, VALUE_BYTES], "/"

    def get(level, rampart_param):
        return lambda s: ((range_lua, ["bench/get", level], "/") if s is etcd
                          else (None, [], f"/v1/kv/bench/get?{rampart_param}"))
    return [
        ("put-seq", "sequential PUT, 1 conn", 1, put),
        ("put-64", f"PUT, {conns} conns", conns, put),
        ("get-stale", f"GET stale / serializable, {conns} conns", conns, get("serializable", "stale")),
        ("get-strong", f"GET strong / linearizable, {conns} conns", conns, get("linearizable", "consistent")),
    ]


def write_lua_scripts(directory):
    """put.lua and range.lua in directory: (put path, range path)."""
    paths = []
    for name, text in (("put.lua", LUA_PUT), ("range.lua", LUA_RANGE)):
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write(text)
        paths.append(path)
    return tuple(paths)


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


# ---------------------------------------------------------------- etcd

def etcd_version():
    out = subprocess.run([ETCD, "--version"], capture_output=True, text=True).stdout
    line = out.splitlines()[0] if out else "?"
    return line.replace("etcd Version: ", "")


class EtcdMember(Server):
    """One etcd member on 127.0.0.1 (plain HTTP client and peer URLs), data under
    datadir/subdir. initial_cluster: "name=http://127.0.0.1:PEER,..." (None: a cluster
    of this member alone). launch() starts the process; wait_ready() waits until it
    answers a range (linearizable: a member of a cluster answers once there is a leader);
    start() does both. Ports are picked at construction, so a restart keeps them."""

    def __init__(self, tmpdir, pidfile, datadir, subdir="etcd", name="etcd", initial_cluster=None):
        super().__init__(tmpdir, pidfile)
        self.name = name
        self.subdir = subdir
        self.dir = os.path.join(datadir, subdir)
        self.port = free_port()
        self.peer_port = free_port()
        self.peer_url = f"http://127.0.0.1:{self.peer_port}"
        self.initial_cluster = initial_cluster
        self.log_path = os.path.join(tmpdir, f"{subdir}.log")

    def launch(self, fresh=True):
        """Start the process; fresh wipes the data directory first (else a restart on it)."""
        if not os.access(ETCD, os.X_OK):
            raise BenchError(f"{ETCD} not found (make deps installs etcd-server)")
        if fresh:
            shutil.rmtree(self.dir, ignore_errors=True)
            os.makedirs(self.dir)
        client = f"http://127.0.0.1:{self.port}"
        cluster = self.initial_cluster or f"{self.name}={self.peer_url}"
        cmd = [ETCD, "--name", self.name, "--data-dir", os.path.join(self.dir, "data"),
               "--listen-client-urls", client, "--advertise-client-urls", client,
               "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
               "--initial-cluster", cluster, "--initial-cluster-state", "new",
               "--logger", "zap", "--log-level", "warn"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        with open(self.log_path, "wb" if fresh else "ab") as logf:
            self.proc = subprocess.Popen(cmd, cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT)
        self.record_pid(self.proc.pid)

    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if self.post("/v3/kv/range", {"key": b64("ready")}, timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.name} not ready after {timeout:.0f}s; see {self.log_path}")

    def start(self):
        self.launch()
        self.wait_ready()

    def post(self, path, body, timeout=5):
        """POST a JSON body: (status, raw answer). OSError when unreachable."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, r.read()
        except http.client.HTTPException as e:
            raise OSError(f"POST {path}: {e!r}") from e
        finally:
            c.close()

    def status(self, timeout=2):
        """(this member's id, the leader's id or "0") from /v3/maintenance/status, ids as strings."""
        code, raw = self.post("/v3/maintenance/status", {}, timeout)
        if code != 200:
            raise OSError(f"{self.name}: maintenance/status answered {code}")
        j = json.loads(raw)
        return str(j["header"]["member_id"]), str(j.get("leader", "0"))

    def put(self, key, value, timeout=5):
        return self.post("/v3/kv/put", {"key": b64(key), "value": b64(value)}, timeout)[0]

    def get_stale(self, key, timeout=2):
        """The value of key read on this member alone (serializable), None if absent."""
        code, raw = self.post("/v3/kv/range", {"key": b64(key), "serializable": True}, timeout)
        if code != 200:
            raise OSError(f"{self.name}: range answered {code}")
        kvs = json.loads(raw).get("kvs") or []
        return base64.b64decode(kvs[0].get("value", "")) if kvs else None

    def remove_data(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Etcd(EtcdMember):
    """A one-member etcd cluster (its data is removed when it stops)."""

    def stop(self):
        super().stop()
        self.remove_data()


# ---------------------------------------------------------------- rampart KV

def rampart_request(port, method, path, body=None, timeout=5):
    """One request to rampartd on 127.0.0.1:port: (status, body bytes). OSError when unreachable."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body)
        r = c.getresponse()
        return r.status, r.read()
    except http.client.HTTPException as e:
        raise OSError(f"{method} {path}: {e!r}") from e
    finally:
        c.close()


def rampart_put(server, key, value):
    status, _ = rampart_request(server.port, "PUT", f"/v1/kv/{key}", value, timeout=10)
    if status != 200:
        raise BenchError(f"{server.name}: PUT {key} answered {status}")


# ---------------------------------------------------------------- measuring

def fs_type(path):
    out = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def require_real_disk(path):
    """The file system type of path; refuses tmpfs (it would flatter every durable write)."""
    kind = fs_type(path)
    if kind in ("tmpfs", "ramfs"):
        raise BenchError(f"{path} is on {kind}: give --datadir on a real disk")
    return kind


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


def run_wrk_kv(server, script, script_args, path, conns, threads, seconds, logdir, label):
    """One measured wrk run: `script` (a Lua file, with script_args after --) or a plain GET
    of path when script is None. Every answer must be 2xx with no connect, read or write
    error; requests wrk gave up on after its 2 s timeout are counted in r["timeouts"] (a
    latency figure, reported by the caller). Returns benchlib.run_measured's figures plus rps,
    p50_ms, p99_ms and cpu_us_per_req."""
    cmd = ["wrk", f"-t{min(threads, conns)}", f"-c{conns}", f"-d{seconds}s", "--latency"]
    if script is not None:
        cmd += ["-s", script]
    cmd.append(f"http://127.0.0.1:{server.port}{path}")
    if script is not None:
        cmd += ["--"] + [str(a) for a in script_args]
    stdout, m = run_measured(server, cmd, seconds, logdir, label, "wrk")
    r = parse_wrk(stdout)
    r.update(m)
    if r["requests"] == 0 or r["non2xx"] or r["sock_errors"] - r["timeouts"]:
        raise BenchError(f"{server.name} {label}: {r['requests']} requests, {r['non2xx']} non-2xx answers, "
                         f"{r['sock_errors']} socket errors (see {logdir}/{label}.wrk.txt)")
    if r["timeouts"]:
        print(f"  note: {server.name} {label}: {r['timeouts']} request(s) unanswered after wrk's 2 s timeout",
              flush=True)
    m50 = re.search(r"^\s+50%\s+(\S+)", stdout, re.M)
    r["p50_ms"] = parse_duration_ms(m50.group(1)) if m50 else float("nan")
    r["cpu_us_per_req"] = r["cpu_s"] * 1e6 / r["requests"]
    return r


def write_keys(server, n, conns=8, prefix="rss/k"):
    """n distinct keys of VALUE_BYTES (prefix + 6 digits) through server (an EtcdMember or a
    rampartd), over `conns` keep-alive connections."""
    value = b"v" * VALUE_BYTES
    errors = []
    etcd = isinstance(server, EtcdMember)

    def worker(lo, hi):
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            for k in range(lo, hi):
                key = f"{prefix}{k:06d}"
                if etcd:
                    c.request("POST", "/v3/kv/put", json.dumps({"key": b64(key), "value": b64(value)}),
                              {"Content-Type": "application/json"})
                else:
                    c.request("PUT", f"/v1/kv/{key}", value)
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    errors.append(f"{key}: {r.status}")
                    return
        except (OSError, http.client.HTTPException) as e:
            errors.append(repr(e))
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


def percentile(values, q):
    """The q-th percentile (0..100) of values, linear between the closest ranks
    (numpy's default); nan for no values."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
