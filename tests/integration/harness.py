"""Start real rampartd processes and talk to them over real sockets.

Every daemon gets its own temporary directory, config file and an
ephemeral port (api.listen port 0; the bound address is read from the
"rampartd started" log line). Logs are JSON lines kept in a file so tests
can assert on them.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("RAMPART_BUILD", os.path.join(ROOT, "build"))
RAMPARTD = os.path.join(BUILD, "rampartd")
RAMPARTCTL = os.path.join(BUILD, "rampartctl")
SLOW = float(os.environ.get("RAMPART_SLOW_FACTOR", "1"))
# Set by `make test-asan`: memory figures (RSS) are not meaningful there.
SANITIZED = os.environ.get("RAMPART_SANITIZED") == "1"
# Leave each node's directory (logs, data) behind to read after a failure.
KEEP_DIRS = os.environ.get("RAMPART_KEEP_DIRS") == "1"


def scaled(seconds):
    """Timeouts stretch under sanitizers."""
    return seconds * SLOW


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def yaml_of(config):
    """Render a {section: {key: value}} dict as YAML (enough for our schema)."""
    lines = []

    def scalar(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        return json.dumps(str(v))

    def emit(mapping, indent):
        for key, value in mapping.items():
            pad = "  " * indent
            if isinstance(value, dict):
                lines.append(f"{pad}{key}:")
                emit(value, indent + 1)
            elif isinstance(value, list):
                lines.append(f"{pad}{key}: [{', '.join(scalar(v) for v in value)}]")
            else:
                lines.append(f"{pad}{key}: {scalar(value)}")

    emit(config, 0)
    return "\n".join(lines) + "\n"


class Daemon:
    """One rampartd process. Use as a context manager or call stop()."""

    def __init__(self, config=None, env=None, args=None, config_text=None, workdir=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="rampart-it-")
        self.owns_dir = workdir is None
        self.config_path = os.path.join(self.dir, "rampart.yml")
        base = {
            "node": {"id": "node_1", "data_dir": os.path.join(self.dir, "data")},
            "api": {"listen": "127.0.0.1:0"},
            "log": {"level": "info", "format": "json", "sampling": 1},
            # The shipped policies, as a node built from this tree runs them.
            "policies": {"dir": os.path.join(ROOT, "policies")},
        }
        if config:
            for section, values in config.items():
                base.setdefault(section, {}).update(values)
        self.write_config(config_text if config_text is not None else yaml_of(base))
        self.log_path = os.path.join(self.dir, "rampartd.log")
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("RAMPART_") and k not in ("RAMPART_BUILD", "RAMPART_SLOW_FACTOR"):
                del self.env[k]
        self.env.update(env or {})
        self.args = args if args is not None else ["-c", self.config_path]
        self.proc = None
        self.address = None

    def write_config(self, text):
        with open(self.config_path, "w") as f:
            f.write(text)

    # -- lifecycle -------------------------------------------------------
    def start(self, wait=True):
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen([RAMPARTD] + self.args, cwd=self.dir, env=self.env,
                                     stdout=self.log_file, stderr=subprocess.STDOUT)
        if wait:
            self.wait_started()
        return self

    def wait_started(self, timeout=10):
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            for entry in self.log_entries():
                if entry.get("msg") == "rampartd started":
                    self.address = entry["listen"]
                    host, port = self.address.rsplit(":", 1)
                    self.host = host.strip("[]")
                    self.port = int(port)
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"rampartd exited with {self.proc.returncode}:\n{self.log_text()}")
            time.sleep(0.02)
        raise RuntimeError(f"rampartd did not start:\n{self.log_text()}")

    def signal(self, signum):
        self.proc.send_signal(signum)

    def wait(self, timeout=15):
        return self.proc.wait(timeout=scaled(timeout))

    def stop(self, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=scaled(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log_file.close()
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        self.stop()
        if self.owns_dir and not KEEP_DIRS:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- logs --------------------------------------------------------------
    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_entries(self):
        out = []
        for line in self.log_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def wait_log(self, predicate, timeout=5):
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            for entry in self.log_entries():
                if predicate(entry):
                    return entry
            time.sleep(0.02)
        raise AssertionError(f"log line not found; log:\n{self.log_text()[-4000:]}")

    # -- talking -----------------------------------------------------------
    def connect(self, timeout=5):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(scaled(timeout))
        s.connect((self.host, self.port))
        return s

    def raw(self, data, timeout=5, read_until_close=True):
        """Send raw bytes, return everything received until close/timeout."""
        with self.connect(timeout) as s:
            s.sendall(data)
            return recv_all(s) if read_until_close else recv_response(s)

    def request(self, method, path, body=b"", headers=None, timeout=5):
        """One request on a fresh connection; returns a Response."""
        with self.connect(timeout) as s:
            s.sendall(build_request(method, path, body, headers, close=True))
            return parse_response(recv_all(s))


def wait_until_ready(d, timeout=10):
    """Poll GET /ready until the one-node daemon `d` answers 200."""
    deadline = time.monotonic() + scaled(timeout)
    while d.request("GET", "/ready").status != 200:
        if time.monotonic() > deadline:
            raise AssertionError(f"{d.dir}: node never became ready")
        time.sleep(0.02)
    return d


def build_request(method, path, body=b"", headers=None, close=False, host="localhost"):
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    hdrs = dict(headers or {})
    if body or method in ("PUT", "POST"):
        hdrs.setdefault("Content-Length", str(len(body)))
    if close:
        hdrs.setdefault("Connection", "close")
    for k, v in hdrs.items():
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def recv_all(sock):
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> value (last wins)
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:200]!r}>"


def parse_responses(data):
    """Split a byte stream into Responses (Content-Length framing)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError(f"incomplete response head: {data[:200]!r}")
        lines = head.decode("latin-1").split("\r\n")
        _, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        if int(status) == 100:
            data = rest
            continue
        out.append(Response(int(status), reason, headers, rest[:length]))
        data = rest[length:]
    return out


def parse_response(data):
    responses = parse_responses(data)
    if len(responses) != 1:
        raise ValueError(f"expected one response, got {len(responses)}: {data[:300]!r}")
    return responses[0]


def recv_response(sock):
    """Read exactly one response (Content-Length framed) from a socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.decode("latin-1").split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


def run_cli(args, env=None, timeout=30, cwd=None):
    return subprocess.run(args, capture_output=True, text=True, timeout=scaled(timeout),
                          env=env, cwd=cwd or ROOT)


# -- streaming responses (pipelining, keep-alive, HEAD) -------------------------
class ResponseStream:
    """Reads responses one by one from a socket, keeping any bytes that
    belong to the next response (pipelining). Knows that a HEAD response
    has no body whatever its Content-Length says."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def _fill(self):
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def next(self, head=False, interim=False):
        """The next response, or None if the peer closed before sending one.
        Interim (1xx) responses are skipped unless `interim` is true.
        Raises socket.timeout if nothing whole arrives in the socket's timeout."""
        while True:
            while b"\r\n\r\n" not in self.buf:
                if not self._fill():
                    if self.buf:
                        raise ValueError(f"connection closed inside a response head: {self.buf[:200]!r}")
                    return None
            head_bytes, _, rest = self.buf.partition(b"\r\n\r\n")
            lines = head_bytes.decode("latin-1").split("\r\n")
            _, status, reason = (lines[0].split(" ", 2) + [""])[:3]
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            status = int(status)
            if 100 <= status < 200:
                self.buf = rest
                if interim:
                    return Response(status, reason, headers, b"")
                continue
            length = 0 if head else int(headers.get("content-length", "0"))
            while len(rest) < length:
                if not self._fill():
                    raise ValueError("connection closed inside a response body")
                rest = self.buf.partition(b"\r\n\r\n")[2]
            self.buf = rest[length:]
            return Response(status, reason, headers, rest[:length])

    def read(self, count, head=False):
        out = []
        for _ in range(count):
            r = self.next(head=head)
            if r is None:
                break
            out.append(r)
        return out

    def closed_by_peer(self):
        """True when the peer closes (EOF or reset) with no further bytes;
        False when more bytes arrive. socket.timeout if neither happens."""
        if self.buf:
            return False
        return not self._fill()


def doc_console_steps(doc, marker):
    """The `$ ` commands of the console blocks between <!-- marker:begin -->
    and <!-- marker:end --> in docs/<doc>, each with the lines it should print:
    [[command, [expected lines]], ...]. The tests that run a doc's examples
    as written use this."""
    with open(os.path.join(ROOT, "docs", doc)) as f:
        text = f.read()
    block = text.split(f"<!-- {marker}:begin -->", 1)[1].split(f"<!-- {marker}:end -->", 1)[0]
    steps, in_fence = [], False
    for line in block.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        elif in_fence and line.startswith("$ "):
            steps.append([line[2:], []])
        elif in_fence and steps:
            steps[-1][1].append(line)
    return steps


def run_doc_examples(case, doc, marker, env, *, command_subs=None, expected_subs=None, min_steps=1,
                     strip_cr=False, cwd=None, timeout=20):
    """Run the `$ ` steps of docs/<doc>'s <marker> blocks in order with bash
    (pipefail, `env`, `cwd`) and assert, on the unittest.TestCase `case`,
    that each prints the lines under it. The doc is written for its default
    addresses: `command_subs` ({doc text: real value}) is applied to each
    command before it runs, `expected_subs` to the expected lines before the
    comparison. `strip_cr` drops the \\r of HTTP headers (curl -i)."""
    steps = doc_console_steps(doc, marker)
    case.assertGreaterEqual(len(steps), min_steps, f"too few examples between the {marker} markers of docs/{doc}")
    for command, expected in steps:
        for doc_text, real in (command_subs or {}).items():
            command = command.replace(doc_text, real)
        out = subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, cwd=cwd, capture_output=True,
                             text=True, timeout=scaled(timeout))
        got = out.stdout.rstrip("\n")
        if strip_cr:
            got = got.replace("\r", "")
        want = "\n".join(expected)
        for doc_text, real in (expected_subs or {}).items():
            want = want.replace(doc_text, real)
        case.assertEqual(got, want, f"docs/{doc} step: {command}\nstderr: {out.stderr}")
