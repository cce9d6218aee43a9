"""transport_tls against real rampartd processes: HTTPS on the API (with
python's ssl, curl and openssl s_client as clients nobody here wrote),
mutual TLS on the peer port between two nodes (dialled through the host's
peer connections by the peer_echo test plugin), certificate and name
checks, pinning, key permissions, insecure mode, garbage on the wire, and
reloading the material on SIGHUP with live connections kept."""
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import BUILD, ROOT, Daemon, scaled, yaml_of
from tls_util import (CertDir, cert_sha256, client_context, https_get, spki_sha256, tls_connect)

SHIPPED_PLUGINS = os.path.join(BUILD, "plugins")
TEST_PLUGINS = os.path.join(BUILD, "tests", "plugins")


def plugin_dir():
    """One directory with the shipped plugins and the peer_echo test plugin."""
    d = tempfile.mkdtemp(prefix="rampart-plugins-")
    for name in ("transport_tls", "metrics"):
        os.symlink(os.path.join(SHIPPED_PLUGINS, name + ".so"), os.path.join(d, name + ".so"))
    os.symlink(os.path.join(TEST_PLUGINS, "peer_echo.so"), os.path.join(d, "peer_echo.so"))
    return d


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        if m and m.group(1) == name:
            got = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
            if got == want:
                return float(m.group(3))
    return 0.0


class TlsCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = CertDir(nodes=3)
        cls.plugins = plugin_dir()

    @classmethod
    def tearDownClass(cls):
        cls.certs.cleanup()
        shutil.rmtree(cls.plugins, ignore_errors=True)

    def api_tls(self, node=1, ca=True, require=False):
        cert, key = self.certs.node(node)
        return {"cert": cert, "key": key, "ca": self.certs.ca if ca else "", "require_client_cert": require}

    def daemon(self, api_tls=None, load=("transport_tls", "metrics"), peers=None, pins=None, node_id="node_1",
               extra=None):
        cfg = {"plugins": {"dir": self.plugins, "load": list(load)}, "node": {"id": node_id}}
        if api_tls is not None:
            cfg["api"] = {"tls": api_tls}
        d = Daemon(config=cfg)
        peer_cfg = {"listen": f"127.0.0.1:{free_port()}",
                    "peers_file": os.path.join(d.dir, "peers.yml"),
                    "pins_file": os.path.join(d.dir, "pinned_certs.json")}
        if peers is not None:
            with open(peer_cfg["peers_file"], "w") as f:
                f.write(peers)
        if pins is not None:
            with open(peer_cfg["pins_file"], "w") as f:
                f.write(json.dumps(pins))
        cfg["peer"] = peer_cfg
        if peers is None:
            del cfg["peer"]["peers_file"]
        if pins is None:
            del cfg["peer"]["pins_file"]
        for section, values in (extra or {}).items():
            cfg.setdefault(section, {}).update(values)
        base = {
            "node": {"id": node_id, "data_dir": os.path.join(d.dir, "data")},
            "api": {"listen": "127.0.0.1:0"},
            "log": {"level": "debug", "format": "json", "sampling": 1},
            "policies": {"dir": os.path.join(ROOT, "policies")},
        }
        for section, values in cfg.items():
            base.setdefault(section, {}).update(values)
        d.write_config(yaml_of(base))
        d.peer_listen = peer_cfg["listen"]
        self.addCleanup(d.cleanup)
        return d

    def peers_yaml(self, node, insecure=False, peers=()):
        cert, key = self.certs.node(node)
        lines = [f"allow_insecure_peers: {'true' if insecure else 'false'}"]
        if not insecure:
            lines += ["tls:", f"  ca_cert: {self.certs.ca}", f"  server_cert: {cert}", f"  server_key: {key}"]
        lines.append("peers:" if peers else "peers: []")
        for node_id, addr in peers:
            host, port = addr.rsplit(":", 1)
            lines += [f"  - node_id: {node_id}", f"    address: {host}", f"    port: {port}"]
        return "\n".join(lines) + "\n"

    def start_failing(self, d):
        """Start a daemon that must refuse its configuration: (code, log)."""
        d.start(wait=False)
        code = d.wait(timeout=10)
        return code, d.log_text()


class ApiHttps(TlsCase):
    def test_https_with_python_ssl_and_curl(self):
        d = self.daemon(api_tls=self.api_tls()).start()
        status, head, body = https_get(d.host, d.port, client_context(self.certs.ca))
        self.assertEqual(status, 200)
        self.assertIn(b'"ok"', body)
        out = subprocess.run(["curl", "-sS", "--cacert", self.certs.ca, f"https://localhost:{d.port}/health"],
                             capture_output=True, timeout=scaled(10))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b'"ok"', out.stdout)
        started = d.wait_log(lambda e: e.get("msg") == "rampartd started")
        self.assertTrue(started["tls"])

    def test_tls12_only_with_aead_suites(self):
        d = self.daemon(api_tls=self.api_tls()).start()
        with tls_connect(d.host, d.port, client_context(self.certs.ca)) as s:
            self.assertEqual(s.version(), "TLSv1.2")
            name = s.cipher()[0]
            self.assertRegex(name, r"ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM|CHACHA20-POLY1305)")
        ctx = client_context(self.certs.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            tls_connect(d.host, d.port, ctx).close()
        status, _, _ = https_get(d.host, d.port, client_context(self.certs.ca))
        self.assertEqual(status, 200)

    def test_keep_alive_many_requests_and_large_body(self):
        d = self.daemon(api_tls=self.api_tls()).start()
        with tls_connect(d.host, d.port, client_context(self.certs.ca)) as s:
            for _ in range(50):
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                buf = b""
                while b"\r\n\r\n" not in buf or not buf.endswith(b"}\n"):
                    buf += s.recv(65536)
                self.assertTrue(buf.startswith(b"HTTP/1.1 200"), buf[:100])
            # A 40 KiB body crosses several TLS records (16 KiB each).
            body = b"x" * 40000
            s.sendall(b"POST /v1/nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\n\r\n" + body)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            self.assertRegex(buf.split(b"\r\n")[0], rb"HTTP/1.1 (401|404)")

    def test_client_certificate_required(self):
        d = self.daemon(api_tls=self.api_tls(require=True)).start()
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            https_get(d.host, d.port, client_context(self.certs.ca))
        cert, key = self.certs.node(2)
        status, _, _ = https_get(d.host, d.port, client_context(self.certs.ca, cert, key))
        self.assertEqual(status, 200)
        out = subprocess.run(["curl", "-sS", "--cacert", self.certs.ca, "--cert", cert, "--key", key,
                              f"https://localhost:{d.port}/health"], capture_output=True, timeout=scaled(10))
        self.assertEqual(out.returncode, 0, out.stderr)
        out = subprocess.run(["curl", "-sS", "--cacert", self.certs.ca, f"https://localhost:{d.port}/health"],
                             capture_output=True, timeout=scaled(10))
        self.assertNotEqual(out.returncode, 0)
        entry = d.wait_log(lambda e: e.get("msg") == "TLS handshake failed")
        self.assertEqual(entry["error"], "tls_error")
        self.assertEqual(entry["reason"], "no_client_certificate")

    def test_client_certificate_from_another_ca_refused(self):
        d = self.daemon(api_tls=self.api_tls(require=True)).start()
        other_ca, other_key = self.certs.other_ca("api-other")
        cert, key = self.certs.issue("stranger", ["node_9"], ca_cert=other_ca, ca_key=other_key)
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            https_get(d.host, d.port, client_context(self.certs.ca, cert, key))
        entry = d.wait_log(lambda e: e.get("msg") == "TLS handshake failed")
        self.assertEqual(entry["reason"], "unknown_ca")

    def test_expired_client_certificate_refused(self):
        d = self.daemon(api_tls=self.api_tls(require=True)).start()
        cert, key = self.certs.issue("expired-client", ["node_2"], days=1, start_offset_days=-3)
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            https_get(d.host, d.port, client_context(self.certs.ca, cert, key))
        entry = d.wait_log(lambda e: e.get("msg") == "TLS handshake failed")
        self.assertEqual((entry["error"], entry["reason"]), ("tls_error", "expired"))

    def test_openssl_s_client_interop(self):
        d = self.daemon(api_tls=self.api_tls()).start()
        out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{d.port}", "-CAfile", self.certs.ca,
                              "-verify_return_error", "-quiet"],
                             input=b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                             capture_output=True, timeout=scaled(10))
        self.assertIn(b"HTTP/1.1 200", out.stdout, out.stderr)

    def test_session_ticket_resumption(self):
        d = self.daemon(api_tls=self.api_tls()).start()
        sess = os.path.join(d.dir, "sess.pem")
        first = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{d.port}", "-CAfile", self.certs.ca,
                                "-sess_out", sess], input=b"", capture_output=True, timeout=scaled(10))
        self.assertIn(b"New, TLSv1.2", first.stdout)
        second = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{d.port}", "-CAfile",
                                 self.certs.ca, "-sess_in", sess], input=b"", capture_output=True,
                                timeout=scaled(10))
        self.assertIn(b"Reused, TLSv1.2", second.stdout)

    def test_resumed_handshakes_answer_requests_sent_right_after(self):
        # In an abbreviated handshake the client speaks last: its request
        # can reach the server with its Finished, before the server's
        # handshake job has ended. It must be answered, not left waiting.
        d = self.daemon(api_tls=self.api_tls()).start()
        ctx = client_context(self.certs.ca)
        with tls_connect(d.host, d.port, ctx) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(4096)
            session = s.session
        resumed = 0
        for _ in range(20):
            raw = socket.create_connection((d.host, d.port), timeout=scaled(5))
            with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 200"))
                resumed += s.session_reused
                session = s.session
        self.assertGreaterEqual(resumed, 15)

    def test_garbage_and_truncated_records_keep_the_daemon_up(self):
        d = self.daemon(api_tls=self.api_tls()).start()
        # Plain HTTP, random bytes, a truncated ClientHello, a huge record length.
        payloads = [b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(4096),
                    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(20),
                    b"\x16\x03\x03\xff\xff" + os.urandom(100), b"\x17\x03\x03\x00\x10" + os.urandom(16)]
        for p in payloads:
            with socket.create_connection((d.host, d.port), timeout=scaled(5)) as s:
                s.sendall(p)
                s.shutdown(socket.SHUT_WR)
                try:
                    while s.recv(4096):
                        pass
                except ConnectionError:
                    pass
        status, _, _ = https_get(d.host, d.port, client_context(self.certs.ca))
        self.assertEqual(status, 200)
        self.assertIsNone(d.proc.poll())

    def test_slow_handshake_times_out(self):
        d = self.daemon(api_tls=self.api_tls(), extra={"api": {"request_timeout_ms": 300}}).start()
        with socket.create_connection((d.host, d.port), timeout=scaled(5)) as s:
            s.sendall(b"\x16\x03\x01")  # the start of a record, then nothing
            t0 = time.monotonic()
            self.assertEqual(s.recv(100), b"")
            self.assertLess(time.monotonic() - t0, scaled(3))

    def test_metrics_count_handshakes_and_cert_expiry(self):
        d = self.daemon(api_tls=self.api_tls()).start()
        https_get(d.host, d.port, client_context(self.certs.ca))
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            https_get(d.host, d.port, client_context(self.certs.other_ca("m")[0]))
        _, _, body = https_get(d.host, d.port, client_context(self.certs.ca), path="/metrics")
        text = body.decode()
        self.assertGreaterEqual(metric(text, "rampart_tls_handshakes_total", side="server", result="ok"), 1)
        expiry = metric(text, "rampart_tls_cert_expiry_seconds", cert="api")
        self.assertGreater(expiry, 300 * 86400)
        self.assertLess(expiry, 367 * 86400)


class CertificateIdentity(TlsCase):
    """A verified client certificate is the caller's identity: its own
    rate-limit bucket (requests_per_min), apart from other certificates and
    from callers without one (unauth_per_min)."""

    def test_each_certificate_has_its_own_bucket(self):
        link = os.path.join(self.plugins, "ratelimit.so")
        if not os.path.exists(link):
            os.symlink(os.path.join(SHIPPED_PLUGINS, "ratelimit.so"), link)
        d = self.daemon(api_tls=self.api_tls(require=False), load=("transport_tls", "ratelimit"),
                        extra={"ratelimit": {"requests_per_min": 3, "unauth_per_min": 1000}}).start()
        ca = self.certs.ca

        def statuses(ctx, n):
            return [https_get(d.host, d.port, ctx)[0] for _ in range(n)]

        cert2 = client_context(ca, *self.certs.node(2))
        cert3 = client_context(ca, *self.certs.node(3))
        self.assertEqual(statuses(cert2, 4), [200, 200, 200, 429])
        self.assertEqual(statuses(cert3, 3), [200, 200, 200])
        self.assertEqual(statuses(client_context(ca), 5), [200] * 5)
        # A certificate from another CA is no identity: it counts as unauthenticated.
        other_ca, other_key = self.certs.other_ca("ident")
        stranger = self.certs.issue("ident-stranger", ["node_2"], ca_cert=other_ca, ca_key=other_key)
        self.assertEqual(statuses(client_context(ca, *stranger), 4), [200] * 4)


class ApiTlsConfigErrors(TlsCase):
    def test_key_with_open_permissions_exits_78(self):
        cert, key = self.certs.node(1)
        loose = os.path.join(self.certs.dir, "loose.key")
        shutil.copy(key, loose)
        os.chmod(loose, 0o644)
        d = self.daemon(api_tls={"cert": cert, "key": loose})
        code, log = self.start_failing(d)
        self.assertEqual(code, 78)
        self.assertIn(f"TLS api key {loose} has insecure permissions 0644 (must be 0600)", log)

    def test_read_only_key_0400_is_fine(self):
        cert, key = self.certs.node(1)
        ro = os.path.join(self.certs.dir, "ro.key")
        shutil.copy(key, ro)
        os.chmod(ro, 0o400)
        d = self.daemon(api_tls={"cert": cert, "key": ro}).start()
        self.assertEqual(https_get(d.host, d.port, client_context(self.certs.ca))[0], 200)

    def test_missing_file_mismatched_key_expired_cert_exit_78(self):
        cert1, key1 = self.certs.node(1)
        _, key2 = self.certs.node(2)
        expired, expired_key = self.certs.issue("expired", ["node_1"], days=1, start_offset_days=-3)
        cases = [({"cert": os.path.join(self.certs.dir, "nope.pem"), "key": key1}, "nope.pem"),
                 ({"cert": cert1, "key": key2}, "does not match"),
                 ({"cert": expired, "key": expired_key}, "expired")]
        for tls, needle in cases:
            with self.subTest(needle=needle):
                d = self.daemon(api_tls=tls)
                code, log = self.start_failing(d)
                self.assertEqual(code, 78, log)
                self.assertIn(needle, log)

    def test_api_tls_without_transport_plugin_exits_78(self):
        d = self.daemon(api_tls=self.api_tls(), load=("metrics",))
        code, log = self.start_failing(d)
        self.assertEqual(code, 78)
        self.assertIn("no transport plugin is loaded", log)

    def test_secure_peers_without_transport_plugin_exit_78(self):
        d = self.daemon(peers=self.peers_yaml(1), load=("metrics",))
        code, log = self.start_failing(d)
        self.assertEqual(code, 78)
        self.assertIn("allow_insecure_peers is false but no transport plugin is loaded", log)

    def test_peers_file_configured_elsewhere_must_exist(self):
        d = self.daemon(extra={"peer": {"peers_file": "/nonexistent/peers.yml"}})
        code, log = self.start_failing(d)
        self.assertEqual(code, 78)
        self.assertIn("/nonexistent/peers.yml: cannot open", log)

    def test_default_peers_file_absent_means_standalone(self):
        d = self.daemon(extra={"peer": {"peers_file": "etc/peers.yml", "pins_file": "etc/pinned_certs.json"}})
        d.start()
        d.wait_log(lambda e: e.get("msg") == "no peers file: a standalone node without a peer port")
        self.assertFalse(any(e.get("msg") == "peer port listening" for e in d.log_entries()))

    def test_pins_file_configured_elsewhere_must_exist(self):
        d = self.daemon(peers=self.peers_yaml(1), extra={"peer": {"pins_file": "/nonexistent/pins.json"}})
        code, log = self.start_failing(d)
        self.assertEqual(code, 78)
        self.assertIn("/nonexistent/pins.json", log)

    def test_bad_peers_file_exits_78_naming_file_and_line(self):
        d = self.daemon(peers="allow_insecure_peers: maybe\npeers: []\n")
        code, log = self.start_failing(d)
        self.assertEqual(code, 78)
        self.assertRegex(log, r"peers\.yml:1:\d+: allow_insecure_peers")


class PeerMutualTls(TlsCase):
    """node_1 dials node_2's peer port (POST /peer-echo on node_1)."""

    def pair(self, pins_1=None, pins_2=None, node_2_cert=None):
        n2 = self.daemon(peers=self.peers_yaml(2), pins=pins_2, node_id="node_2",
                         load=("transport_tls", "metrics", "peer_echo"))
        if node_2_cert:
            n2_cert, n2_key = self.certs.node(2)
            with open(os.path.join(n2.dir, "peers.yml"), "w") as f:
                f.write(self.peers_yaml(2).replace(n2_cert, node_2_cert[0]).replace(n2_key, node_2_cert[1]))
        n2.start()
        n1 = self.daemon(peers=self.peers_yaml(1, peers=[("node_2", n2.peer_listen)]), pins=pins_1,
                         load=("transport_tls", "metrics", "peer_echo")).start()
        return n1, n2

    def echo(self, n1, n2, node="node_2", body="hello-peer"):
        r = n1.request("POST", f"/peer-echo?addr={n2.peer_listen}&node={node}", body=body, timeout=15)
        return r.status, json.loads(r.body)

    def test_mutual_tls_echo_and_identity(self):
        n1, n2 = self.pair()
        status, body = self.echo(n1, n2)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["reply"], "hello-peer")
        self.assertEqual(body["peer"], "node_2")
        self.assertEqual(body["spki"], spki_sha256(self.certs.node(2)[0]))

    def test_wrong_expected_node_id_is_a_tls_error(self):
        n1, n2 = self.pair()
        status, body = self.echo(n1, n2, node="node_3")
        self.assertEqual(status, 502)
        self.assertEqual(body, {"error": "tls_error", "reason": "name_mismatch"})

    def test_unreachable_peer_is_a_network_error(self):
        n1, _ = self.pair()
        r = n1.request("POST", f"/peer-echo?addr=127.0.0.1:{free_port()}&node=node_2", body="x", timeout=15)
        self.assertEqual(r.status, 502)
        self.assertEqual(json.loads(r.body)["error"], "network_error")

    def test_peer_port_refuses_clients_without_certificate(self):
        _, n2 = self.pair()
        host, port = n2.peer_listen.rsplit(":", 1)
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            with tls_connect(host, int(port), client_context(self.certs.ca)) as s:
                s.sendall(b"RAMPART/1 echo\n")
                if not s.recv(10):
                    raise ConnectionError("closed")
        n2.wait_log(lambda e: e.get("msg") == "peer connection refused" and e.get("reason") == "no_client_certificate")

    def test_openssl_s_client_with_node_certificate_reaches_echo(self):
        _, n2 = self.pair()
        cert, key = self.certs.node(3)
        # -quiet implies -ign_eof: s_client stays until killed; read the echo.
        proc = subprocess.Popen(["openssl", "s_client", "-connect", n2.peer_listen, "-CAfile", self.certs.ca,
                                 "-cert", cert, "-key", key, "-verify_return_error", "-quiet"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            proc.stdin.write(b"RAMPART/1 echo\nping-from-openssl\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        finally:
            proc.kill()
            proc.communicate()
        self.assertEqual(line, b"ping-from-openssl\n")

    def test_pin_match_both_forms(self):
        n2_cert = self.certs.node(2)[0]
        for pin in ("sha256:" + cert_sha256(n2_cert), "spki-sha256:" + spki_sha256(n2_cert)):
            with self.subTest(pin=pin.split(":")[0]):
                n1, n2 = self.pair(pins_1={"peers": {"node_2": pin}, "report_only": False})
                self.assertEqual(self.echo(n1, n2)[0], 200)

    def test_pin_mismatch_refused_counted_and_masked(self):
        wrong = "sha256:" + "ab12" + "0" * 56 + "9f0e"
        n1, n2 = self.pair(pins_1={"peers": {"node_2": wrong}, "report_only": False})
        status, body = self.echo(n1, n2)
        self.assertEqual(status, 502)
        self.assertEqual(body, {"error": "tls_error", "reason": "pin_mismatch"})
        text = n1.request("GET", "/metrics").body.decode()
        self.assertEqual(metric(text, "rampart_pinning_violations_total", peer="node_2"), 1)
        log = n1.log_text()
        full = cert_sha256(self.certs.node(2)[0])
        self.assertNotIn(full, log)
        self.assertIn(full[:4], log)

    def test_pin_report_only_accepts_and_counts(self):
        wrong = "spki-sha256:" + "1" * 64
        n1, n2 = self.pair(pins_1={"peers": {"node_2": wrong}, "report_only": True})
        self.assertEqual(self.echo(n1, n2)[0], 200)
        text = n1.request("GET", "/metrics").body.decode()
        self.assertEqual(metric(text, "rampart_pinning_violations_total", peer="node_2"), 1)

    def test_pin_set_with_current_and_next(self):
        n2_cert = self.certs.node(2)[0]
        pins = {"peers": {"node_2": ["spki-sha256:" + "2" * 64, "sha256:" + cert_sha256(n2_cert)]}}
        n1, n2 = self.pair(pins_1=pins)
        self.assertEqual(self.echo(n1, n2)[0], 200)

    def test_server_side_pins_check_the_client(self):
        pins = {"peers": {"node_1": "sha256:" + "3" * 64}}
        n1, n2 = self.pair(pins_2=pins)
        status, body = self.echo(n1, n2)
        self.assertEqual(status, 502)
        self.assertEqual(body["error"], "tls_error")
        n2.wait_log(lambda e: e.get("msg") == "peer connection refused" and e.get("reason") == "pin_mismatch")


class Reload(TlsCase):
    def test_sighup_rotates_certificate_keeps_live_connection(self):
        cert_path = os.path.join(self.certs.dir, "live.pem")
        key_path = os.path.join(self.certs.dir, "live.key")
        c1, k1 = self.certs.node(1)
        shutil.copy(c1, cert_path)
        shutil.copy(k1, key_path)
        os.chmod(key_path, 0o600)
        d = self.daemon(api_tls={"cert": cert_path, "key": key_path}).start()
        live = tls_connect(d.host, d.port, client_context(self.certs.ca))
        old_der = live.getpeercert(binary_form=True)
        new_cert, new_key = self.certs.issue("rotated", ["node_1", "localhost"])
        shutil.copy(new_cert, cert_path)
        shutil.copy(new_key, key_path)
        d.signal(signal.SIGHUP)
        d.wait_log(lambda e: e.get("msg") == "transport material reloaded")
        # The live connection still works on its old session.
        live.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(live.recv(4096).startswith(b"HTTP/1.1 200"))
        live.close()
        with tls_connect(d.host, d.port, client_context(self.certs.ca)) as s:
            self.assertNotEqual(s.getpeercert(binary_form=True), old_der)

    def test_sighup_with_bad_material_keeps_the_old(self):
        cert_path = os.path.join(self.certs.dir, "keep.pem")
        key_path = os.path.join(self.certs.dir, "keep.key")
        c1, k1 = self.certs.node(1)
        shutil.copy(c1, cert_path)
        shutil.copy(k1, key_path)
        os.chmod(key_path, 0o600)
        d = self.daemon(api_tls={"cert": cert_path, "key": key_path}).start()
        with tls_connect(d.host, d.port, client_context(self.certs.ca)) as s:
            before = s.getpeercert(binary_form=True)
        os.chmod(key_path, 0o644)
        d.signal(signal.SIGHUP)
        entry = d.wait_log(lambda e: e.get("msg") == "TLS reload refused; keeping the running material")
        self.assertIn("insecure permissions 0644", entry["problem"])
        with tls_connect(d.host, d.port, client_context(self.certs.ca)) as s:
            self.assertEqual(s.getpeercert(binary_form=True), before)
        self.assertIsNone(d.proc.poll())


class Insecure(TlsCase):
    def test_insecure_peers_warn_at_start_and_repeat(self):
        d = self.daemon(peers=self.peers_yaml(1, insecure=True), load=("metrics", "peer_echo"),
                        extra={"peer": {"insecure_warning_ms": 1000}}).start()
        deadline = time.monotonic() + scaled(5)
        while time.monotonic() < deadline:
            warnings = [e for e in d.log_entries() if e.get("msg", "").startswith("INSECURE")]
            if len(warnings) >= 3:
                break
            time.sleep(0.1)
        self.assertGreaterEqual(len(warnings), 3)
        # Plain TCP on the peer port, no handshake.
        host, port = d.peer_listen.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=scaled(5)) as s:
            s.sendall(b"RAMPART/1 echo\nplain\n")
            self.assertEqual(s.recv(100), b"plain\n")


if __name__ == "__main__":
    unittest.main()


class RampartctlPins(TlsCase):
    """rampartctl pins: compute both forms, and edit a pins file offline."""

    def ctl(self, *args):
        return subprocess.run([os.path.join(BUILD, "rampartctl"), "pins", *args], capture_output=True, text=True,
                              timeout=scaled(10))

    def test_compute_matches_openssl(self):
        cert = self.certs.node(2)[0]
        out = self.ctl("compute", cert)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.split(), ["sha256:" + cert_sha256(cert), "spki-sha256:" + spki_sha256(cert)])

    def test_compute_refuses_what_is_not_a_certificate(self):
        for content in (b"", b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
                        b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", os.urandom(300)):
            path = os.path.join(self.certs.dir, "bad.pem")
            with open(path, "wb") as f:
                f.write(content)
            out = self.ctl("compute", path)
            self.assertEqual(out.returncode, 1, content)
            self.assertIn("not a PEM certificate", out.stderr)
        self.assertEqual(self.ctl("compute", "/nonexistent.pem").returncode, 1)

    def test_add_remove_show_and_limits(self):
        path = os.path.join(self.certs.dir, "pins.json")
        a, b, c = ("spki-sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64)
        self.assertEqual(self.ctl("add", path, "node_2", a).returncode, 0)  # creates the file
        self.assertEqual(self.ctl("add", path, "node_2", b).returncode, 0)
        self.assertEqual(self.ctl("add", path, "node_2", a).returncode, 0)  # already there: no-op
        third = self.ctl("add", path, "node_2", c)
        self.assertEqual(third.returncode, 1)
        self.assertIn("current and a next pin", third.stderr)
        with open(path) as f:
            self.assertEqual(json.load(f)["peers"]["node_2"], [a, b])
        self.assertEqual(self.ctl("remove", path, "node_2", a).returncode, 0)
        self.assertEqual(self.ctl("remove", path, "node_2", a).returncode, 1)
        self.assertIn(f"node_2\t{b}", self.ctl("show", path).stdout)
        for bad in ("sha256:" + "z" * 64, "md5:" + "a" * 32, "sha256:" + "a" * 63, ""):
            out = self.ctl("add", path, "node_3", bad)
            self.assertEqual(out.returncode, 1, bad)
            self.assertIn("not a pin", out.stderr)
        self.assertEqual(self.ctl("add", path).returncode, 2)

    def test_malformed_pins_file_is_left_alone(self):
        path = os.path.join(self.certs.dir, "broken.json")
        for text in ("{", "[]", '{"peers": 3}', "\x00\x01", '{"peers": {"node_2": 5}}'):
            with open(path, "w") as f:
                f.write(text)
            out = self.ctl("add", path, "node_2", "sha256:" + "a" * 64)
            self.assertEqual(out.returncode, 1, text)
            with open(path) as f:
                self.assertEqual(f.read(), text)

    def test_edited_file_is_what_the_daemon_accepts(self):
        path = os.path.join(self.certs.dir, "daemon-pins.json")
        cert = self.certs.node(2)[0]
        self.assertEqual(self.ctl("add", path, "node_2", "spki-sha256:" + spki_sha256(cert)).returncode, 0)
        with open(path) as f:
            pins = json.load(f)
        n2 = self.daemon(peers=self.peers_yaml(2), node_id="node_2", load=("transport_tls", "metrics", "peer_echo"))
        n2.start()
        n1 = self.daemon(peers=self.peers_yaml(1), pins=pins, load=("transport_tls", "metrics", "peer_echo")).start()
        r = n1.request("POST", f"/peer-echo?addr={n2.peer_listen}&node=node_2", body="x", timeout=15)
        self.assertEqual(r.status, 200, r.body)
