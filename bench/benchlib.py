"""Shared helpers of the `make bench` scripts (Python standard library only).

Used by bench/http_vs_nginx.py, bench/plugin_chain.py and bench/tls_vs_nginx.py:
/proc readings (server CPU, RSS, machine load), loopback HTTP(S), starting
and stopping rampartd and nginx (plain or HTTPS), running a measured client
(wrk, openssl s_time) and parsing wrk, the BENCH_* environment and the tables.

Every process started here is recorded in the pid file that bench/run.sh
reads on exit (its backstop), and stopped by PID by the caller.
"""

import hashlib
import http.client
import os
import re
import resource
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
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


def http_get(port, path="/health", timeout=2.0, tls=None):
    """One GET over a fresh loopback connection (HTTPS when tls, an ssl.SSLContext, is given).

    Returns (status, headers with lower-case names, body as text); raises OSError
    (http.client's and ssl's errors included) when the server cannot be reached.
    """
    if tls is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=tls)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    except http.client.HTTPException as e:
        raise OSError(f"GET {path}: {e!r}") from e
    finally:
        conn.close()


class TLSFiles:
    """The certificate both servers present, from scripts/gen-certs.sh DIR 1 (ECDSA P-256):
    DIR/node_1.pem and DIR/node_1.key (SANs node_1, rampart-node-1, localhost, 127.0.0.1,
    key mode 0600), signed by DIR/ca.pem."""

    def __init__(self, directory):
        self.dir = directory
        self.cert = os.path.join(directory, "node_1.pem")
        self.key = os.path.join(directory, "node_1.key")
        self.ca = os.path.join(directory, "ca.pem")

    @classmethod
    def generate(cls, script, directory, timeout=60):
        """Run `script DIR 1` (a fresh CA and one node certificate, valid from now)."""
        try:
            p = subprocess.run(["sh", script, directory, "1"], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{script} did not finish in {timeout}s")
        files = cls(directory)
        if p.returncode != 0 or not all(os.path.isfile(f) for f in (files.cert, files.key, files.ca)):
            raise BenchError(f"{script} {directory} 1 failed (exit {p.returncode}): "
                             f"{(p.stderr or p.stdout).strip()}")
        return files

    def client_context(self):
        """A client context that verifies the server against the CA (127.0.0.1 is an IP SAN)."""
        ctx = ssl.create_default_context(cafile=self.ca)
        return ctx

    def cert_sha256(self):
        """SHA-256 of the certificate's DER (what the servers must both present)."""
        with open(self.cert) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        return hashlib.sha256(der).hexdigest()


def tls_peer(port, files, timeout=5.0):
    """One TLS handshake to 127.0.0.1:port, verified against files.ca: (protocol, cipher name,
    SHA-256 of the DER certificate the server presented)."""
    ctx = files.client_context()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            der = s.getpeercert(binary_form=True)
            return s.version(), s.cipher()[0], hashlib.sha256(der).hexdigest()


# ---------------------------------------------------------------- servers

class Server:
    name = "?"

    def __init__(self, tmpdir, pidfile, tls=None):
        self.tmpdir = tmpdir
        self.pidfile = pidfile
        self.tls = tls  # None: plain HTTP; else a TLSFiles (served over HTTPS)
        self.proc = None
        self.port = None
        self.log_path = None

    def url(self, path="/health"):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    def get(self, path="/health", timeout=2.0):
        """GET path from this server, over HTTPS (certificate verified against the CA) when it serves TLS."""
        return http_get(self.port, path, timeout, None if self.tls is None else self.tls.client_context())

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
                    status, _, body = self.get()
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


# The Lua policies this tree ships: every node a bench starts runs them, as
# a node built from this tree does (without them rampartd runs built-in
# defaults and is about 0.9 MiB smaller: LuaJIT's code and libm's pages).
SHIPPED_POLICIES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "policies")


class Rampart(Server):
    """rampartd on 127.0.0.1:0 with its own directory <tmpdir>/<subdir>.

    plugins_load: names for plugins.load (None: the key is left out, no plugins);
    policies_dir: policies.dir (default: the shipped policies; None: left out,
    i.e. `policies` under the server's directory, absent, so the built-in
    defaults run);
    extra_yaml: appended to the configuration as is;
    tls: a TLSFiles to serve HTTPS (api.tls.cert/key; needs the transport_tls
    plugin in plugins_load), None for plain HTTP;
    data_dir: node.data_dir (None: <tmpdir>/<subdir>/data);
    node_id, api_port, peer_port: node.id (None: left out), the API and peer
    ports on 127.0.0.1 (None: 0, the kernel picks; the API port is read back
    from the log); peer_extra: more `peer:` lines, each indented by two spaces
    (peers_file, pins_file of a cluster member).
    RAMPART_* variables are not passed on: the configuration file alone
    decides (a stray RAMPART_RATELIMIT_* would change what is measured).
    """

    def __init__(self, tmpdir, pidfile, build_dir, name="rampartd", subdir="rampart",
                 plugins_load=None, policies_dir=SHIPPED_POLICIES, extra_yaml="", tls=None, data_dir=None,
                 node_id=None, api_port=None, peer_port=None, peer_extra=""):
        super().__init__(tmpdir, pidfile, tls)
        self.data_dir = data_dir
        self.node_id = node_id
        self.api_port = api_port
        self.peer_port = peer_port
        self.peer_extra = peer_extra
        self.name = name
        self.subdir = subdir
        self.plugins_load = plugins_load
        self.policies_dir = policies_dir
        self.extra_yaml = extra_yaml
        self.binary = os.path.join(os.path.abspath(build_dir), "rampartd")
        self.plugins_dir = os.path.join(os.path.abspath(build_dir), "plugins")

    def config_text(self, d):
        plugins = f"plugins:\n  dir: {self.plugins_dir}\n"
        if self.plugins_load is not None:
            plugins += f"  load: [{', '.join(self.plugins_load)}]\n"
        policies = "" if self.policies_dir is None else f"policies:\n  dir: {self.policies_dir}\n"
        tls = "" if self.tls is None else f"  tls:\n    cert: {self.tls.cert}\n    key: {self.tls.key}\n"
        node_id = "" if self.node_id is None else f"  id: {self.node_id}\n"
        return (f"# written by bench/{os.path.basename(sys.argv[0])}\n"
                f"node:\n{node_id}  data_dir: {self.data_dir or d + '/data'}\n"
                f"api:\n  listen: 127.0.0.1:{self.api_port or 0}\n  max_connections: 4096\n{tls}"
                f"peer:\n  listen: 127.0.0.1:{self.peer_port or 0}\n{self.peer_extra}"
                f"{plugins}{policies}"
                f"log:\n  level: info\n  format: json\n  sampling: 100\n"
                f"{self.extra_yaml}")

    def start(self, append_log=False):
        """Start and wait until GET /health answers; append_log keeps the log of an earlier
        run in the same directory (a restart) instead of starting it afresh."""
        if not os.access(self.binary, os.X_OK):
            raise BenchError(f"{self.binary} not found or not executable (build first)")
        d = os.path.join(self.tmpdir, self.subdir)
        os.makedirs(d, exist_ok=True)
        os.makedirs(self.data_dir or os.path.join(d, "data"), exist_ok=True)
        self.config_path = os.path.join(d, "rampart.yml")
        self.log_path = os.path.join(d, "rampartd.log")
        with open(self.config_path, "w") as f:
            f.write(self.config_text(d))
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
        logf = open(self.log_path, "ab" if append_log else "wb")
        self.port = self.api_port  # None: read back from the log by wait_ready
        self.proc = subprocess.Popen([self.binary, "-c", self.config_path], cwd=d, env=env,
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

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


# nginx's TLS settings for the comparison with rampartd's transport_tls
# (plugins/transport_tls/README.md): TLS 1.2 only, the same ECDHE AEAD suites
# in the same order, chosen by the server's preference as mbedTLS does, the
# same key-exchange groups (X25519 first), and session tickets for resumption
# (rampart resumes with tickets only: nginx's session cache stays "none").
NGINX_TLS_PROTOCOLS = "TLSv1.2"
NGINX_TLS_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                     "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
                     "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305")
NGINX_TLS_GROUPS = "X25519:prime256v1:secp384r1"


def nginx_config(d, port, log_path, tls=None):
    """nginx.conf for the comparisons: 1 worker, keep-alive without a request cap, no access
    log, temporary paths under d, and `location = /health` returning the 16-byte body with
    `return 200` (never rate-limited); HTTPS with the settings above when tls (a TLSFiles)."""
    listen = f"listen 127.0.0.1:{port};"
    ssl_conf = ""
    if tls is not None:
        listen = f"listen 127.0.0.1:{port} ssl;"
        ssl_conf = f"""
        ssl_certificate {tls.cert};
        ssl_certificate_key {tls.key};
        ssl_protocols {NGINX_TLS_PROTOCOLS};
        ssl_ciphers {NGINX_TLS_CIPHERS};
        ssl_prefer_server_ciphers on;
        ssl_ecdh_curve {NGINX_TLS_GROUPS};
        ssl_session_tickets on;
        ssl_session_cache none;"""
    return f"""# written by bench/{os.path.basename(sys.argv[0])}
worker_processes 1;
pid {d}/nginx.pid;
error_log {log_path} warn;
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
        {listen}{ssl_conf}
        location = /health {{
            default_type application/json;
            return 200 '{{"status":"ok"}}\\n';
        }}
    }}
}}
"""


class Nginx(Server):
    """Debian's nginx in <tmpdir>/<subdir> on a free loopback port (nginx_config above),
    in the foreground; serves HTTPS when tls (a TLSFiles) is given."""
    binary = "/usr/sbin/nginx"

    def __init__(self, tmpdir, pidfile, name="nginx", subdir="nginx", tls=None):
        super().__init__(tmpdir, pidfile, tls)
        self.name = name
        self.subdir = subdir

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise BenchError(f"{self.binary} not found (apt-get install nginx-light)")
        d = os.path.join(self.tmpdir, self.subdir)
        os.makedirs(os.path.join(d, "logs"), exist_ok=True)
        self.config_path = os.path.join(d, "nginx.conf")
        self.log_path = os.path.join(d, "logs", "error.log")
        # A port picked here could be taken before nginx binds it: retry a few times.
        for attempt in range(5):
            self.port = free_port()
            with open(self.config_path, "w") as f:
                f.write(nginx_config(d, self.port, self.log_path, self.tls))
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


def nginx_version():
    try:
        p = subprocess.run([Nginx.binary, "-v"], capture_output=True, text=True, timeout=5)
        return (p.stderr or p.stdout).strip().replace("nginx version: ", "")
    except (OSError, subprocess.TimeoutExpired):
        return "nginx"


# ---------------------------------------------------------------- wrk, s_time

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
    # wrk's "timeout" counts requests with no answer after --timeout (2 s by default): a slow
    # answer, not a broken connection; callers may report them instead of failing.
    r["timeouts"] = int(m.group(4)) if m else 0
    return r


def run_measured(server, cmd, seconds, logdir, label, tool):
    """Run a load generator (cmd, bounded by itself to about `seconds`) against server and
    measure around it: server CPU (all its processes), steal, the generator's own CPU and
    everybody else's. Returns (stdout, measurements); the raw output goes to
    logdir/label.<tool>.txt. A generator that overruns seconds + 30 is killed."""
    server.check_alive()
    cpu0 = server.cpu_ticks()
    st0, busy0, tot0 = cpu_times()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)  # only the generator is reaped in between
    t0 = time.monotonic()
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as p:
        server.record_pid(p.pid)  # for the backstop in run.sh
        try:
            stdout, stderr = p.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise BenchError(f"{tool} against {server.name} did not finish in {seconds + 30}s")
        except BaseException:
            p.kill()
            p.wait()
            raise
    cpu1 = server.cpu_ticks()
    st1, busy1, tot1 = cpu_times()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = time.monotonic() - t0
    with open(os.path.join(logdir, f"{label}.{tool}.txt"), "w") as f:
        f.write(" ".join(cmd) + "\n" + stdout + stderr)
    if p.returncode != 0:
        raise BenchError(f"{tool} exited {p.returncode}: {stderr.strip()}")
    server.check_alive()
    r = {"elapsed_s": elapsed}
    r["cpu_s"] = (cpu1 - cpu0) / CLK_TCK
    r["steal_pct"] = 100.0 * (st1 - st0) / max(1, tot1 - tot0)
    client_s = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    r["wrk_cores"] = client_s / elapsed  # the load generator's cores (wrk or s_time)
    r["server_cores"] = r["cpu_s"] / elapsed
    # CPU used by everything else on the machine (other users' builds and tests),
    # in cores: the noise this run competed with.
    r["other_cores"] = max(0.0, (busy1 - busy0) / CLK_TCK - r["cpu_s"] - client_s) / elapsed
    return stdout, r


def run_wrk(server, seconds, threads, conns, logdir, label):
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", server.url("/health")]
    stdout, m = run_measured(server, cmd, seconds, logdir, label, "wrk")
    r = parse_wrk(stdout)
    if r["requests"] == 0:
        raise BenchError(f"wrk made no requests to {server.name}")
    r.update(m)
    r["cpu_us_per_req"] = r["cpu_s"] * 1e6 / r["requests"]
    return r


def progress_line(i, n, name_a, a, name_b, b):
    """The line printed after each pair while the benchmark runs."""
    return (f"pair {i}/{n}: {name_a} {a['rps']:.0f} req/s, {name_b} {b['rps']:.0f} req/s, "
            f"ratio {a['rps'] / b['rps']:.2f}x; CPU/req {a['cpu_us_per_req']:.2f} vs "
            f"{b['cpu_us_per_req']:.2f} us; server/wrk/other cores {a['server_cores']:.2f}/"
            f"{a['wrk_cores']:.2f}/{a['other_cores']:.2f} vs {b['server_cores']:.2f}/"
            f"{b['wrk_cores']:.2f}/{b['other_cores']:.2f}")


# ---------------------------------------------------------------- report

def mib(n_bytes):
    return n_bytes / (1024 * 1024)


def fmt_k(rps):
    return f"{rps / 1000:.1f}k"


def median_of(key, runs):
    return statistics.median(r[key] for r in runs)


def print_table(hdr, rows, left=(), out=None):
    """A Markdown table: header left-aligned, cells right-aligned but for the columns in left."""
    out = out or sys.stdout
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(hdr)]
    out.write("| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(hdr)) + " |\n")
    out.write("|" + "|".join("-" * (x + 2) for x in widths) + "|\n")
    for r in rows:
        out.write("| " + " | ".join(c.ljust(widths[i]) if i in left else c.rjust(widths[i])
                                    for i, c in enumerate(r)) + " |\n")


def stripped_size(path):
    """Size after `strip` (debug info excluded), via a temporary copy."""
    with tempfile.NamedTemporaryFile() as tmp:
        r = subprocess.run(["strip", "-o", tmp.name, path], capture_output=True)
        return os.path.getsize(tmp.name) if r.returncode == 0 else os.path.getsize(path)


# ---------------------------------------------------------------- set-up

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


def read_bench_env(args):
    """BENCH_PAIRS, BENCH_SECONDS, BENCH_WARMUP, BENCH_THREADS, BENCH_CONNECTIONS into args."""
    args.pairs = env_int("BENCH_PAIRS", 5, 1)
    args.seconds = env_int("BENCH_SECONDS", 10, 1)
    args.warmup = env_int("BENCH_WARMUP", 2, 0)
    args.threads = env_int("BENCH_THREADS", 1, 1)
    args.connections = env_int("BENCH_CONNECTIONS", 64, 1)


def run_bench(body, cleanup):
    """Run body() for its exit status. A BenchError, an OSError or an
    interrupt becomes one line on stderr and status 1; cleanup() (stop what
    was started) always runs."""
    try:
        return body()
    except (BenchError, OSError) as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"bench: interrupted ({e})", file=sys.stderr)
        return 1
    finally:
        cleanup()


def raise_on_signals():
    """SIGTERM and SIGHUP raise KeyboardInterrupt, so `finally` blocks stop the servers."""
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
