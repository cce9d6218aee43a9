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
1 when something failed to run.
"""

import argparse
import os
import resource
import re
import signal
import socket
import statistics
import subprocess
import tempfile
import sys
import time

BODY = '{"status":"ok"}\n'
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- /proc helpers

def proc_cpu_ticks(pid):
    """utime + stime (fields 14 and 15 of /proc/PID/stat), in clock ticks.

    For a process (thread-group leader) these are the sums over all threads.
    """
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] is field 3 (state), so field N is rest[N - 3].
    return int(rest[14 - 3]) + int(rest[15 - 3])


def proc_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_children(pid):
    """Direct children of pid, from /proc/*/stat (ppid is field 4)."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rindex(")") + 2:].split()
        if int(rest[4 - 3]) == pid:
            kids.append(int(name))
    return sorted(kids)


def cpu_times():
    """(steal, busy, total) jiffies of all CPUs, from the first line of /proc/stat.

    busy = everything but idle, iowait and steal.
    """
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice;
    # guest time is already counted in user, so leave the last two out.
    total = sum(fields[:8])
    return fields[7], total - fields[3] - fields[4] - fields[7], total


def free_port():
    """A free loopback port (nginx has no port-0 listen that we could read back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get_health(port, timeout=2.0):
    """One GET /health over a fresh connection; returns (status, body) or raises OSError."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode("utf-8", "replace")


# ---------------------------------------------------------------- servers

class Server:
    name = "?"

    def __init__(self, tmpdir, pidfile):
        self.tmpdir = tmpdir
        self.pidfile = pidfile
        self.proc = None
        self.port = None
        self.log_path = None

    def record_pid(self, pid):
        with open(self.pidfile, "a") as f:
            f.write(f"{pid}\n")

    def pids(self):
        """All processes whose CPU counts as this server's."""
        return [self.proc.pid]

    def cpu_ticks(self):
        return sum(proc_cpu_ticks(p) for p in self.pids())

    def rss_kib(self):
        return sum(proc_rss_kib(p) for p in self.pids())

    def check_alive(self):
        if self.proc is None or self.proc.poll() is not None:
            raise BenchError(f"{self.name} is not running (exit status "
                             f"{None if self.proc is None else self.proc.returncode}); "
                             f"see {self.log_path}")

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            self.check_alive()
            if self.port is None:
                self.port = self.find_port()
            if self.port is not None:
                try:
                    status, body = http_get_health(self.port)
                    if status == 200 and body == BODY:
                        return
                    last = f"GET /health answered {status} {body!r}, want 200 {BODY!r}"
                except OSError as e:
                    last = str(e)
            time.sleep(0.05)
        raise BenchError(f"{self.name} not ready after {timeout:.0f}s ({last}); see {self.log_path}")

    def find_port(self):
        return self.port

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass


class Rampart(Server):
    name = "rampartd"

    def __init__(self, tmpdir, pidfile, build_dir):
        super().__init__(tmpdir, pidfile)
        self.binary = os.path.join(os.path.abspath(build_dir), "rampartd")
        self.plugins_dir = os.path.join(os.path.abspath(build_dir), "plugins")

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise BenchError(f"{self.binary} not found or not executable (build first)")
        d = os.path.join(self.tmpdir, "rampart")
        os.makedirs(os.path.join(d, "data"), exist_ok=True)
        self.config_path = os.path.join(d, "rampart.yml")
        self.log_path = os.path.join(d, "rampartd.log")
        with open(self.config_path, "w") as f:
            f.write(f"""# written by bench/http_vs_nginx.py
node:
  data_dir: {d}/data
api:
  listen: 127.0.0.1:0
  max_connections: 4096
peer:
  listen: 127.0.0.1:0
plugins:
  dir: {self.plugins_dir}
log:
  level: info
  format: json
  sampling: 100
""")
        logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen([self.binary, "-c", self.config_path], cwd=d,
                                     stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        self.record_pid(self.proc.pid)
        self.wait_ready()

    def find_port(self):
        # api.listen is 127.0.0.1:0: the start-up line says which port was bound.
        try:
            with open(self.log_path, errors="replace") as f:
                for line in f:
                    m = re.search(r'"msg":"rampartd started".*?"listen":"127\.0\.0\.1:(\d+)"', line)
                    if m:
                        return int(m.group(1))
        except OSError:
            pass
        return None


class Nginx(Server):
    name = "nginx"
    binary = "/usr/sbin/nginx"

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise BenchError(f"{self.binary} not found (apt-get install nginx-light)")
        d = os.path.join(self.tmpdir, "nginx")
        os.makedirs(os.path.join(d, "logs"), exist_ok=True)
        self.config_path = os.path.join(d, "nginx.conf")
        self.log_path = os.path.join(d, "logs", "error.log")
        # A port picked here could be taken before nginx binds it: retry a few times.
        for attempt in range(5):
            self.port = free_port()
            with open(self.config_path, "w") as f:
                f.write(f"""# written by bench/http_vs_nginx.py
worker_processes 1;
pid {d}/nginx.pid;
error_log {self.log_path} warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{self.port};
        location = /health {{
            default_type application/json;
            return 200 '{{"status":"ok"}}\\n';
        }}
    }}
}}
""")
            out = open(os.path.join(d, "logs", "stderr.log"), "ab")
            self.proc = subprocess.Popen(
                [self.binary, "-e", self.log_path, "-p", d + "/", "-c", self.config_path,
                 "-g", "daemon off;"],
                cwd=d, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            out.close()
            self.record_pid(self.proc.pid)
            try:
                self.wait_ready()
            except BenchError:
                if self.proc.poll() is not None and attempt < 4:
                    continue  # most likely the port was taken: pick another
                raise
            break
        # Record the worker(s) too, for the backstop in run.sh.
        deadline = time.monotonic() + 5
        while not self.workers() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.workers():
            raise BenchError(f"nginx started no worker; see {self.log_path}")
        for w in self.workers():
            self.record_pid(w)

    def workers(self):
        return proc_children(self.proc.pid)

    def pids(self):
        return [self.proc.pid] + self.workers()


# ---------------------------------------------------------------- wrk

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def parse_duration_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise BenchError(f"cannot parse wrk duration {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(out):
    r = {}
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+),", out, re.M)
    if not m:
        raise BenchError("wrk printed no request count:\n" + out)
    r["requests"] = int(m.group(1))
    m = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if not m:
        raise BenchError("wrk printed no Requests/sec:\n" + out)
    r["rps"] = float(m.group(1))
    m = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if not m:
        raise BenchError("wrk printed no 99% latency (--latency missing?):\n" + out)
    r["p99_ms"] = parse_duration_ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["sock_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return r


def run_wrk(server, seconds, threads, conns, logdir, label):
    server.check_alive()
    url = f"http://127.0.0.1:{server.port}/health"
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", url]
    cpu0 = server.cpu_ticks()
    st0, busy0, tot0 = cpu_times()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)  # only wrk is reaped in between
    t0 = time.monotonic()
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as p:
        server.record_pid(p.pid)  # for the backstop in run.sh
        try:
            stdout, stderr = p.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise BenchError(f"wrk against {server.name} did not finish in {seconds + 30}s")
        except BaseException:
            p.kill()
            p.wait()
            raise
    cpu1 = server.cpu_ticks()
    st1, busy1, tot1 = cpu_times()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = time.monotonic() - t0
    with open(os.path.join(logdir, f"{label}.wrk.txt"), "w") as f:
        f.write(" ".join(cmd) + "\n" + stdout + stderr)
    if p.returncode != 0:
        raise BenchError(f"wrk exited {p.returncode}: {stderr.strip()}")
    server.check_alive()
    r = parse_wrk(stdout)
    if r["requests"] == 0:
        raise BenchError(f"wrk made no requests to {server.name}")
    r["cpu_s"] = (cpu1 - cpu0) / CLK_TCK
    r["cpu_us_per_req"] = (cpu1 - cpu0) / CLK_TCK * 1e6 / r["requests"]
    r["steal_pct"] = 100.0 * (st1 - st0) / max(1, tot1 - tot0)
    wrk_s = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    r["wrk_cores"] = wrk_s / elapsed
    r["server_cores"] = r["cpu_s"] / elapsed
    # CPU used by everything else on the machine (other users' builds and tests),
    # in cores: the noise this run competed with.
    r["other_cores"] = max(0.0, (busy1 - busy0) / CLK_TCK - r["cpu_s"] - wrk_s) / elapsed
    return r


# ---------------------------------------------------------------- report

def mib(n_bytes):
    return n_bytes / (1024 * 1024)


def fmt_k(rps):
    return f"{rps / 1000:.1f}k"


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
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(hdr)]
    w("| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(hdr)) + " |\n")
    w("|" + "|".join("-" * (x + 2) for x in widths) + "|\n")
    for r in rows:
        w("| " + " | ".join(c.rjust(widths[i]) for i, c in enumerate(r)) + " |\n")
    w("(ratio = rampart/nginx; CPU = server utime+stime per request; steal = hypervisor steal "
      "during the run;\n other load = CPU used by neither the server nor wrk, in cores out of "
      f"{os.cpu_count()})\n")
    rps_ratio = statistics.median(a["rps"] / b["rps"] for a, b in pairs)
    cpu_ratio = statistics.median(a["cpu_us_per_req"] / b["cpu_us_per_req"] for a, b in pairs)
    med = lambda key, runs: statistics.median(r[key] for r in runs)
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


def nginx_version():
    try:
        p = subprocess.run(["/usr/sbin/nginx", "-v"], capture_output=True, text=True, timeout=5)
        return (p.stderr or p.stdout).strip().replace("nginx version: ", "")
    except (OSError, subprocess.TimeoutExpired):
        return "nginx"


# ---------------------------------------------------------------- main

def env_int(name, default, lo):
    v = os.environ.get(name, "")
    if v == "":
        return default
    try:
        n = int(v)
    except ValueError:
        raise BenchError(f"{name}={v!r} is not an integer")
    if n < lo:
        raise BenchError(f"{name}={n} is below {lo}")
    return n


def stripped_size(path):
    """Size after `strip` (debug info excluded), via a temporary copy."""
    with tempfile.NamedTemporaryFile() as tmp:
        r = subprocess.run(["strip", "-o", tmp.name, path], capture_output=True)
        return os.path.getsize(tmp.name) if r.returncode == 0 else os.path.getsize(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="build directory (holds rampartd)")
    ap.add_argument("--tmpdir", required=True, help="scratch directory (configs, logs, data)")
    args = ap.parse_args()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    pidfile = os.path.join(args.tmpdir, "pids")
    rampart = Rampart(args.tmpdir, pidfile, args.build)
    nginx = Nginx(args.tmpdir, pidfile)
    try:
        args.pairs = env_int("BENCH_PAIRS", 5, 1)
        args.seconds = env_int("BENCH_SECONDS", 10, 1)
        args.warmup = env_int("BENCH_WARMUP", 2, 0)
        args.threads = env_int("BENCH_THREADS", 1, 1)
        args.connections = env_int("BENCH_CONNECTIONS", 64, 1)
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
            print(f"pair {i}/{args.pairs}: rampart {a['rps']:.0f} req/s, nginx {b['rps']:.0f} req/s, "
                  f"ratio {a['rps'] / b['rps']:.2f}x; CPU/req {a['cpu_us_per_req']:.2f} vs "
                  f"{b['cpu_us_per_req']:.2f} us; server/wrk/other cores {a['server_cores']:.2f}/"
                  f"{a['wrk_cores']:.2f}/{a['other_cores']:.2f} vs {b['server_cores']:.2f}/"
                  f"{b['wrk_cores']:.2f}/{b['other_cores']:.2f}", flush=True)
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
    except (BenchError, OSError) as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"bench: interrupted ({e})", file=sys.stderr)
        return 1
    finally:
        nginx.stop()
        rampart.stop()


if __name__ == "__main__":
    sys.exit(main())
