"""The metrics plugin against a real rampartd: GET /metrics in the
Prometheus text format (checked by promtool), HTTP counters by route
pattern / method / status, the optional bearer token (file, environment,
SIGHUP), config errors, and bounded cardinality under a flood of distinct
unmatched paths."""
import os
import re
import shutil
import signal
import socket
import subprocess
import unittest

from harness import BUILD, Daemon, ResponseStream, build_request, scaled, yaml_of

PLUGIN_DIR = os.path.join(BUILD, "plugins")
PLUGINS = {"plugins": {"dir": PLUGIN_DIR, "load": ["metrics"]}}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TOKEN = "scrape-0123456789abcdef"

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text):
    """{(name, frozenset(labels.items())): value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(text, name, **labels):
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def series(text, name):
    """Label sets of one metric (for a histogram, of its _count)."""
    return [dict(labels) for (n, labels) in samples(text) if n == name]


def config(**sections):
    cfg = dict(PLUGINS)
    cfg.update(sections)
    return cfg


def metrics_config(d, **metrics):
    """The full YAML a Daemon started with PLUGINS plus a metrics section writes."""
    cfg = {
        "node": {"id": "node_1", "data_dir": os.path.join(d.dir, "data")},
        "api": {"listen": "127.0.0.1:0"},
        "log": {"level": "info", "format": "json", "sampling": 1},
    }
    cfg.update(PLUGINS)
    if metrics:
        cfg["metrics"] = metrics
    return yaml_of(cfg)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


class Exposition(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(config=config()).start()

    def tearDown(self):
        self.d.cleanup()

    def scrape(self, headers=None):
        r = self.d.request("GET", "/metrics", headers=headers)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], CONTENT_TYPE)
        return r.body.decode()

    def test_served_with_help_and_type(self):
        text = self.scrape()
        self.assertIn("# HELP rampart_http_requests_total ", text)
        self.assertIn("# TYPE rampart_http_requests_total counter", text)
        self.assertIn("# TYPE rampart_http_request_duration_seconds histogram", text)
        self.assertIn("# TYPE rampart_build_info gauge", text)
        version = subprocess.run([os.path.join(BUILD, "rampartd"), "--version"], capture_output=True,
                                 text=True).stdout.split()[-1]
        self.assertEqual(value(text, "rampart_build_info", version=version), 1.0)
        loaded = self.d.wait_log(lambda e: e.get("msg") == "plugin loaded")
        self.assertEqual(loaded["plugin"], "metrics")

    def test_head_is_served_too(self):
        with self.d.connect() as s:
            s.sendall(build_request("HEAD", "/metrics", close=True))
            r = ResponseStream(s).next(head=True)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], CONTENT_TYPE)

    def test_counts_by_route_and_status(self):
        n = 7
        for i in range(n):
            self.assertEqual(self.d.request("GET", "/health").status, 200)
            self.assertEqual(self.d.request("GET", f"/nope/{i}").status, 404)
        self.assertEqual(self.d.request("POST", "/health", body="x").status, 405)
        text = self.scrape()
        self.assertEqual(value(text, "rampart_http_requests_total", route="/health", method="GET", status="200"), n)
        self.assertEqual(value(text, "rampart_http_requests_total", route="unmatched", method="GET", status="404"), n)
        # A 405 has no route either: the path is known, the method is not.
        self.assertEqual(value(text, "rampart_http_requests_total", route="unmatched", method="POST", status="405"), 1)
        self.assertEqual(value(text, "rampart_http_request_duration_seconds_count", route="/health", method="GET"), n)
        self.assertEqual(value(text, "rampart_http_request_duration_seconds_bucket", route="/health", method="GET",
                               le="+Inf"), n)
        self.assertEqual(value(text, "rampart_http_request_duration_seconds_count", route="unmatched", method="GET"), n)
        # Never a raw path as a label value.
        self.assertNotIn("/nope", text)
        # Bucket bounds print as people write them (dashboards match le as a string).
        self.assertIn('le="0.0005"', text)
        self.assertIn('le="0.005"', text)
        # The scrape itself is counted once it has been answered.
        again = self.scrape()
        self.assertEqual(value(again, "rampart_http_requests_total", route="/metrics", method="GET", status="200"), 1)

    def test_promtool_accepts_the_output(self):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool not installed (Debian package prometheus)")
        for i in range(3):
            self.d.request("GET", "/health")
            self.d.request("GET", f"/missing-{i}")
            self.d.request("DELETE", "/health")
        self.scrape()
        text = self.scrape()
        out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                             timeout=scaled(30))
        self.assertEqual(out.returncode, 0, f"promtool:\n{out.stdout}{out.stderr}\n---\n{text}")

    def test_flood_of_distinct_paths_does_not_grow_series(self):
        self.d.request("GET", "/health")
        baseline = self.scrape()
        # Keep-alive: 2,000 distinct unmatched paths on one connection.
        with self.d.connect(timeout=30) as s:
            stream = ResponseStream(s)
            for i in range(2000):
                s.sendall(build_request("GET", f"/scan/{i}/x{i * 7919}"))
                r = stream.next()
                self.assertEqual(r.status, 404)
        text = self.scrape()
        counter = series(text, "rampart_http_requests_total")
        routes = {c["route"] for c in counter}
        self.assertEqual(routes, {"/health", "/metrics", "unmatched"})
        self.assertEqual(len(counter), 3, counter)
        self.assertEqual(value(text, "rampart_http_requests_total", route="unmatched", method="GET", status="404"), 2000)
        hist = series(text, "rampart_http_request_duration_seconds_count")
        self.assertEqual({h["route"] for h in hist}, {"/health", "/metrics", "unmatched"})
        self.assertNotIn("/scan/", text)
        # Two more series (the scrape's own, the unmatched ones): the
        # exposition grew by a bounded amount, not by 2,000 series.
        self.assertLess(len(text), len(baseline) + 8192)


class Token(unittest.TestCase):
    def check_protected(self, d, token):
        r = d.request("GET", "/metrics")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertIn("Bearer", r.headers["www-authenticate"])
        self.assertEqual(r.json()["code"], "missing_token")
        self.assertIn("error", r.json())
        for wrong in ("wrong-0123456789abcdef", token[:-1], token + "x", "", token.upper()):
            r = d.request("GET", "/metrics", headers=bearer(wrong))
            self.assertEqual(r.status, 401, wrong)
            self.assertEqual(r.json()["code"], "invalid_token")
        r = d.request("GET", "/metrics", headers={"Authorization": f"Basic {token}"})
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["code"], "invalid_token")
        for header in (bearer(token), {"Authorization": f"bearer  {token} "}):
            r = d.request("GET", "/metrics", headers=header)
            self.assertEqual(r.status, 200, header)
            self.assertIn("# TYPE rampart_http_requests_total counter", r.body.decode())
        # Refusals are counted like any other answer: 1 missing, 5 wrong, 1 Basic.
        text = d.request("GET", "/metrics", headers=bearer(token)).body.decode()
        self.assertEqual(value(text, "rampart_http_requests_total", route="/metrics", method="GET", status="401"), 7)
        # The token never reaches the log.
        self.assertNotIn(token, d.log_text())

    def test_token_from_file(self):
        with Daemon(config=config(metrics={"token": TOKEN})) as d:
            self.check_protected(d, TOKEN)
            # Other routes are not affected.
            self.assertEqual(d.request("GET", "/health").status, 200)

    def test_token_from_environment(self):
        env_token = "from-env-0123456789abcdef"
        with Daemon(config=config(), env={"RAMPART_METRICS_TOKEN": env_token}) as d:
            self.check_protected(d, env_token)

    def test_environment_overrides_file(self):
        env_token = "from-env-0123456789abcdef"
        with Daemon(config=config(metrics={"token": TOKEN}), env={"RAMPART_METRICS_TOKEN": env_token}) as d:
            self.assertEqual(d.request("GET", "/metrics", headers=bearer(TOKEN)).status, 401)
            self.assertEqual(d.request("GET", "/metrics", headers=bearer(env_token)).status, 200)

    def test_sighup_changes_the_token(self):
        with Daemon(config=config()) as d:
            self.assertEqual(d.request("GET", "/metrics").status, 200)
            d.write_config(metrics_config(d, token=TOKEN))
            before = len(d.log_entries())
            d.signal(signal.SIGHUP)
            d.wait_log(lambda e: e.get("msg") == "configuration reloaded" and d.log_entries().index(e) >= before)
            self.assertEqual(d.request("GET", "/metrics").status, 401)
            self.assertEqual(d.request("GET", "/metrics", headers=bearer(TOKEN)).status, 200)
            # Counters survive the reload.
            text = d.request("GET", "/metrics", headers=bearer(TOKEN)).body.decode()
            self.assertEqual(value(text, "rampart_http_requests_total", route="/metrics", method="GET", status="200"), 2)


class ConfigErrors(unittest.TestCase):
    def test_unknown_key_exits_78_naming_file_line_and_allowed_keys(self):
        d = Daemon(config=config(metrics={"tokn": TOKEN}))
        d.start(wait=False)
        self.assertEqual(d.wait(), 78)
        text = d.log_text()
        self.assertRegex(text, r"rampart\.yml:\d+:\d+: metrics\.tokn: unknown key")
        self.assertIn("allowed: token", text)
        self.assertNotIn(TOKEN, text)
        d.cleanup()

    def test_short_token_refused(self):
        d = Daemon(config=config(metrics={"token": "short"}))
        d.start(wait=False)
        self.assertEqual(d.wait(), 78)
        # Caught by the schema (min length), with the file position.
        self.assertRegex(d.log_text(), r"rampart\.yml:\d+:\d+: metrics\.token: shorter than 16 characters")
        out = subprocess.run([os.path.join(BUILD, "rampartd"), "--check-config", "-c", d.config_path],
                             capture_output=True, text=True, timeout=scaled(10), env=d.env, cwd=d.dir)
        self.assertEqual(out.returncode, 78)
        self.assertIn("metrics.token: shorter than 16 characters", out.stderr)
        d.cleanup()

    def test_check_config_reports_unknown_key(self):
        d = Daemon(config=config(metrics={"port": "9100"}))
        out = subprocess.run([os.path.join(BUILD, "rampartd"), "--check-config", "-c", d.config_path],
                             capture_output=True, text=True, timeout=scaled(10), env=d.env, cwd=d.dir)
        self.assertEqual(out.returncode, 78)
        self.assertIn("metrics.port: unknown key", out.stderr + out.stdout)
        d.cleanup()


class OwnPort(unittest.TestCase):
    """metrics.listen: /metrics on a listener of its own, not the API port."""

    def test_metrics_served_on_its_own_port_only(self):
        d = Daemon(config=config(metrics={"listen": "127.0.0.1:0"}))
        d.start()
        self.addCleanup(d.cleanup)
        entry = d.wait_log(lambda e: e.get("msg") == "plugin listener" and e.get("plugin") == "metrics")
        host, port = entry["listen"].rsplit(":", 1)
        d.request("GET", "/health")
        self.assertEqual(d.request("GET", "/metrics").status, 404)
        with socket.create_connection((host, int(port)), timeout=scaled(5)) as s:
            s.sendall(build_request("GET", "/metrics", close=True))
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        text = body.decode()
        self.assertGreaterEqual(value(text, "rampart_http_requests_total", route="/health", method="GET",
                                      status="200"), 1)
        promtool = shutil.which("promtool")
        if promtool:
            out = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                                 timeout=scaled(10))
            self.assertEqual(out.returncode, 0, out.stderr + out.stdout)

    def test_unbindable_address_exits_78(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            d = Daemon(config=config(metrics={"listen": f"127.0.0.1:{port}"}))
            d.start(wait=False)
            self.assertEqual(d.wait(), 78)
            self.assertIn("plugin listener refused", d.log_text())
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
