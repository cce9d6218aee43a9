"""The HTTP front's limits against a real rampartd, each at its bound
(accepted) and just past it (refused with the right status and code, then
the connection closes): body, header block, URI, request deadline
(slowloris), idle keep-alive, connection cap; and request smuggling:
ambiguous framing gets 400 and close, and whatever was sent behind it is
never answered. Limits are lowered through the config to keep this fast."""
import os
import resource
import select
import signal
import socket
import time
import unittest

from harness import Daemon, ResponseStream, build_request, parse_response, parse_responses, recv_all, scaled

SMUGGLED = b"GET /ready HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: SMUGGLED\r\n\r\n"


def head_with_header_bytes(total, request_id="hb", path="/health"):
    """A GET whose header block (names, ": ", values and CRLFs, as the
    daemon counts it: not the request line, not the final CRLF) is exactly
    `total` bytes."""
    fixed = [("Host", "localhost"), ("X-Request-Id", request_id)]
    used = sum(len(k) + len(v) + 4 for k, v in fixed)
    pad = total - used - len("X-Pad") - 4
    assert pad >= 1, total
    lines = [f"GET {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in fixed] + [f"X-Pad: {'p' * pad}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked_body(body, size=100):
    out = b""
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


class Base(unittest.TestCase):
    CONFIG = {}

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(config={"api": dict(cls.CONFIG)}).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def tearDown(self):
        self.assertIsNone(self.d.proc.poll(), f"rampartd exited:\n{self.d.log_text()[-3000:]}")
        self.assertEqual(self.d.request("GET", "/health").status, 200)

    def assert_refused(self, data, status, code, stream_after=True):
        """Send `data` (followed by a smuggled request) on a fresh
        connection: exactly one answer, `status`/`code`, Connection: close,
        then the daemon closes; the smuggled request is never answered."""
        with self.d.connect(timeout=2) as s:
            s.sendall(data + (SMUGGLED if stream_after else b""))
            out = recv_all(s)
        rs = parse_responses(out)
        self.assertEqual(len(rs), 1, f"expected one answer, got {rs}")
        r = rs[0]
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.json()["code"], code, r)
        self.assertEqual(r.headers.get("connection"), "close", r)
        self.assertNotIn(b"SMUGGLED", out)
        return r

    def assert_served(self, data, status=200, count=1):
        with self.d.connect() as s:
            s.sendall(data + SMUGGLED)
            rs = ResponseStream(s).read(count + 1)
        self.assertEqual(len(rs), count + 1, rs)
        for r in rs[:count]:
            self.assertEqual(r.status, status, r)
        # The connection stays usable after a request at the bound.
        self.assertEqual((rs[-1].status, rs[-1].headers["x-request-id"]), (200, "SMUGGLED"))
        return rs[0]


class BodyLimit(Base):
    CONFIG = {"max_body_bytes": 1024}

    def post(self, body, headers=None):
        return build_request("POST", "/health", body, headers)

    def test_content_length_at_bound_accepted(self):
        # POST /health is a 405, but only after the body was read whole.
        self.assert_served(self.post(b"b" * 1024), status=405)

    def test_content_length_over_bound_413(self):
        r = self.assert_refused(self.post(b"b" * 1025), 413, "body_too_large")
        self.assertIn("1024", r.json()["error"])

    def test_chunked_at_bound_accepted(self):
        data = b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked_body(b"c" * 1024)
        self.assert_served(data, status=405)

    def test_chunked_over_bound_413(self):
        data = b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked_body(b"c" * 1025)
        self.assert_refused(data, 413, "body_too_large")

    def test_one_huge_chunk_413(self):
        data = b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n" + b"c" * 2000
        self.assert_refused(data, 413, "body_too_large")

    def test_expect_100_over_bound_refused_before_body(self):
        with self.d.connect() as s:
            s.sendall(build_request("POST", "/health", b"", {"Content-Length": "1025", "Expect": "100-continue"}))
            stream = ResponseStream(s)
            r = stream.next(interim=True)
            self.assertEqual(r.status, 413)  # no interim 100 first
            self.assertEqual(r.json()["code"], "body_too_large")
            self.assertTrue(stream.closed_by_peer())

    def test_large_body_without_expect_still_gets_413(self):
        # A client that sends its whole (too large) body without waiting
        # must be able to send it all and then read the 413, not a
        # connection reset: the daemon lingers (FIN, then reads and discards
        # until the client closes), as nginx does.
        body = b"x" * (4 * 1024 * 1024)
        with self.d.connect() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            data = self.post(body)
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError) as e:
                self.fail(f"the daemon reset the connection while the body was being sent: {e}")
            try:
                out = recv_all_strict(s)
            except ConnectionResetError as e:
                self.fail(f"connection reset instead of a 413: {e}")
        r = parse_response(out)
        self.assertEqual(r.status, 413)
        self.assertEqual(r.json()["code"], "body_too_large")


class ReloadedLimits(unittest.TestCase):
    def test_reloaded_limit_applies_to_next_request_on_open_connection(self):
        # "New limits apply to new requests": also on a keep-alive
        # connection opened before the SIGHUP.
        with Daemon(config={"api": {"max_body_bytes": 4096}}) as d:
            with d.connect() as s:
                stream = ResponseStream(s)
                s.sendall(build_request("POST", "/health", b"x" * 3000))
                self.assertEqual(stream.next().status, 405)
                n = len(d.log_entries())
                with open(d.config_path) as f:
                    cfg = f.read().replace("max_body_bytes: 4096", "max_body_bytes: 2048")
                self.assertIn("max_body_bytes: 2048", cfg)
                d.write_config(cfg)
                d.signal(signal.SIGHUP)
                d.wait_log(lambda e: e.get("msg") == "configuration reloaded" and d.log_entries().index(e) >= n)
                s.sendall(build_request("POST", "/health", b"x" * 3000))
                r = stream.next()
                self.assertEqual((r.status, r.json()["code"]), (413, "body_too_large"))
                self.assertIn("2048", r.json()["error"])
                self.assertTrue(stream.closed_by_peer())


class HeaderLimit(Base):
    CONFIG = {"max_header_bytes": 1024}

    def test_header_block_at_bound_accepted(self):
        self.assert_served(head_with_header_bytes(1024))

    def test_header_block_over_bound_431(self):
        r = self.assert_refused(head_with_header_bytes(1025), 431, "header_too_large")
        self.assertIn("1024", r.json()["error"])

    def test_huge_single_header_431(self):
        data = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 100000 + b"\r\n\r\n"
        self.assert_refused(data, 431, "header_too_large")

    def test_many_small_headers_counted(self):
        lines = ["GET /health HTTP/1.1", "Host: x"] + [f"X-{i}: v" for i in range(200)]
        self.assert_refused(("\r\n".join(lines) + "\r\n\r\n").encode(), 431, "header_too_large")

    def test_header_arriving_in_pieces_still_counted(self):
        data = head_with_header_bytes(1025)
        with self.d.connect() as s:
            for i in range(0, len(data), 100):
                try:
                    s.sendall(data[i:i + 100])
                except (BrokenPipeError, ConnectionResetError):
                    break
                time.sleep(0.005)
            r = parse_response(recv_all(s))
        self.assertEqual((r.status, r.json()["code"]), (431, "header_too_large"))


class HeaderCount(Base):
    CONFIG = {"max_header_bytes": 65536}

    def test_256_headers_accepted_257_refused(self):
        ok = ["GET /health HTTP/1.1", "Host: x"] + [f"X-{i}: v" for i in range(255)]
        self.assert_served(("\r\n".join(ok) + "\r\n\r\n").encode())
        bad = ["GET /health HTTP/1.1", "Host: x"] + [f"X-{i}: v" for i in range(256)]
        self.assert_refused(("\r\n".join(bad) + "\r\n\r\n").encode(), 431, "header_too_large")


class UriLimit(Base):
    CONFIG = {"max_uri_bytes": 256}

    def target(self, size):
        t = "/health?q=" + "u" * (size - len("/health?q="))
        assert len(t) == size
        return t

    def test_uri_at_bound_accepted(self):
        self.assert_served(build_request("GET", self.target(256)))

    def test_uri_over_bound_414(self):
        r = self.assert_refused(build_request("GET", self.target(257)), 414, "uri_too_long")
        self.assertIn("256", r.json()["error"])

    def test_very_long_uri_414(self):
        self.assert_refused(build_request("GET", self.target(70000)), 414, "uri_too_long")


def recv_all_strict(sock):
    """Like recv_all, but a reset is an error rather than a quiet end."""
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


class RequestTimeout(Base):
    CONFIG = {"request_timeout_ms": 1000, "idle_timeout_ms": 10000}

    def trickle(self, s, data, interval=0.2, limit=6.0):
        """Send `data` a byte every `interval` s until the daemon answers or
        closes; returns seconds from the first byte to that moment."""
        start = time.monotonic()
        for i in range(len(data)):
            if time.monotonic() - start > scaled(limit):
                break
            try:
                s.sendall(data[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            readable, _, _ = select.select([s], [], [], interval)
            if readable:
                break
        else:
            select.select([s], [], [], scaled(limit))
        return time.monotonic() - start

    def test_slowloris_header_trickle_gets_408(self):
        data = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"s" * 200 + b"\r\n\r\n"
        with self.d.connect(timeout=10) as s:
            elapsed = self.trickle(s, data)
            out = recv_all(s)
        # The deadline counts from the first byte; 5 bytes a second do not extend it.
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, scaled(1.6), "the deadline was extended by trickled bytes")
        r = parse_response(out)
        self.assertEqual(r.status, 408)
        self.assertEqual(r.json()["code"], "request_timeout")
        self.assertEqual(r.headers.get("connection"), "close")

    def test_slow_body_gets_408(self):
        with self.d.connect(timeout=10) as s:
            s.sendall(build_request("POST", "/health", b"", {"Content-Length": "500"}))
            elapsed = self.trickle(s, b"b" * 500)
            r = parse_response(recv_all(s))
        self.assertLess(elapsed, scaled(1.6))
        self.assertEqual((r.status, r.json()["code"]), (408, "request_timeout"))

    def test_partial_head_then_silence_gets_408_and_close(self):
        with self.d.connect(timeout=10) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHo")
            t0 = time.monotonic()
            r = parse_response(recv_all(s))
            elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 408)
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, scaled(1.6))

    def test_deadline_is_per_request_not_per_connection(self):
        # Requests that each arrive within 1 s keep a connection going far
        # longer than 1 s.
        with self.d.connect(timeout=10) as s:
            stream = ResponseStream(s)
            for i in range(4):
                req = build_request("GET", "/health", b"", {"X-Request-Id": f"per-{i}"})
                s.sendall(req[:10])
                time.sleep(0.3)
                s.sendall(req[10:20])
                time.sleep(0.3)
                s.sendall(req[20:])
                r = stream.next()
                self.assertEqual((r.status, r.headers["x-request-id"]), (200, f"per-{i}"))

    def test_idle_time_before_a_request_does_not_count(self):
        with self.d.connect(timeout=10) as s:
            time.sleep(1.3)
            s.sendall(build_request("GET", "/health"))
            r = ResponseStream(s).next()
            self.assertIsNotNone(r, "closed while idle, before the idle timeout")
            self.assertEqual(r.status, 200)

    def test_complete_request_just_inside_deadline_accepted(self):
        with self.d.connect(timeout=10) as s:
            req = build_request("POST", "/health", b"abcdef")
            s.sendall(req[:-3])
            time.sleep(0.7)
            s.sendall(req[-3:])
            r = ResponseStream(s).next()
            self.assertEqual(r.status, 405)

    def test_many_slowloris_connections_do_not_block_others(self):
        socks = []
        try:
            for _ in range(50):
                s = self.d.connect(timeout=10)
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                socks.append(s)
            # Everyone else is still served at once.
            t0 = time.monotonic()
            self.assertEqual(self.d.request("GET", "/health").status, 200)
            self.assertLess(time.monotonic() - t0, 0.5)
            deadline = time.monotonic() + scaled(5)
            statuses = []
            for s in socks:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                statuses.append(parse_response(recv_all(s)).status)
            self.assertEqual(statuses, [408] * 50)
        finally:
            for s in socks:
                s.close()


class IdleTimeout(Base):
    CONFIG = {"idle_timeout_ms": 500, "request_timeout_ms": 5000}

    def test_idle_keep_alive_connection_closed(self):
        with self.d.connect(timeout=5) as s:
            stream = ResponseStream(s)
            s.sendall(build_request("GET", "/health"))
            self.assertEqual(stream.next().status, 200)
            t0 = time.monotonic()
            self.assertTrue(stream.closed_by_peer(), "unexpected bytes on an idle connection")
            elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 0.4)
        self.assertLess(elapsed, scaled(1.5))

    def test_connection_that_never_sends_is_closed(self):
        with self.d.connect(timeout=5) as s:
            t0 = time.monotonic()
            self.assertEqual(recv_all(s), b"")
            elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 0.4)
        self.assertLess(elapsed, scaled(1.5))

    def test_activity_keeps_connection_open(self):
        with self.d.connect(timeout=5) as s:
            stream = ResponseStream(s)
            for i in range(6):  # 6 x 0.3 s = 1.8 s, well past one idle period
                s.sendall(build_request("GET", "/health", b"", {"X-Request-Id": f"act-{i}"}))
                r = stream.next()
                self.assertIsNotNone(r, f"closed after {i} requests")
                self.assertEqual(r.headers["x-request-id"], f"act-{i}")
                time.sleep(0.3)

    def test_idle_timeout_does_not_cut_a_request_in_progress(self):
        # The request deadline (5 s) applies while a request arrives, not
        # the idle timeout (0.5 s).
        with self.d.connect(timeout=5) as s:
            req = build_request("GET", "/health")
            s.sendall(req[:8])
            time.sleep(0.9)
            s.sendall(req[8:])
            r = ResponseStream(s).next()
            self.assertIsNotNone(r, "closed by the idle timeout mid-request")
            self.assertEqual(r.status, 200)


def open_files_soft_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted and (hard == resource.RLIM_INFINITY or hard >= wanted):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class ManyConnections(Base):
    CONFIG = {"max_connections": 1200}
    N = 1000

    def test_thousand_connections_at_once_all_served(self):
        soft = open_files_soft_limit(self.N + 200)
        if soft < self.N + 200:
            self.skipTest(f"ulimit -n is {soft}; need {self.N + 200} for {self.N} client sockets")
        with open(f"/proc/{self.d.proc.pid}/limits") as f:
            line = next(l for l in f if l.startswith("Max open files"))
        if int(line.split()[3]) < self.N + 100:
            self.skipTest(f"the daemon may open only {line.split()[3]} files")
        socks = []
        deadline = time.monotonic() + scaled(30)
        try:
            for _ in range(self.N):
                self.assertLess(time.monotonic(), deadline, f"only {len(socks)} connected in time")
                socks.append(self.d.connect(timeout=10))
            for i, s in enumerate(socks):
                s.sendall(build_request("GET", "/health", b"", {"X-Request-Id": f"many-{i}"}))
            for i, s in enumerate(socks):
                r = ResponseStream(s).next()
                self.assertIsNotNone(r, f"connection {i} closed unanswered")
                self.assertEqual((r.status, r.headers["x-request-id"]), (200, f"many-{i}"))
            # All still open: a second round on every connection.
            for i, s in enumerate(socks):
                s.sendall(build_request("GET", "/ready", b"", {"X-Request-Id": f"again-{i}"}))
            for i, s in enumerate(socks):
                r = ResponseStream(s).next()
                self.assertEqual((r.status, r.headers["x-request-id"]), (200, f"again-{i}"))
            self.assertEqual(self.d.request("GET", "/health").status, 200)
        finally:
            for s in socks:
                s.close()
        # Healthy after they all go away.
        self.assertEqual(self.d.request("GET", "/ready").status, 200)


class OutOfDescriptors(unittest.TestCase):
    def test_daemon_survives_running_out_of_file_descriptors(self):
        # max_connections above what the process may open: the excess cannot
        # even be accepted. The daemon must neither crash nor spin, must
        # answer nothing malformed, and must serve again once clients leave.
        import subprocess
        from harness import RAMPARTD
        d = Daemon(config={"api": {"max_connections": 1000}})
        d.log_file = open(d.log_path, "ab")
        d.proc = subprocess.Popen([RAMPARTD, "-c", d.config_path], cwd=d.dir, env=d.env, stdout=d.log_file,
                                  stderr=subprocess.STDOUT,
                                  preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)))
        socks = []
        try:
            d.wait_started()
            for _ in range(150):
                socks.append(d.connect(timeout=2))
            outcomes = {}
            for s in socks:
                try:
                    s.sendall(build_request("GET", "/health"))
                    r = ResponseStream(s).next()
                    key = r.status if r else "closed"
                except (ConnectionResetError, BrokenPipeError):
                    key = "closed"
                outcomes[key] = outcomes.get(key, 0) + 1
            self.assertEqual(set(outcomes) - {200, 503, "closed"}, set(), outcomes)
            self.assertGreater(outcomes.get(200, 0), 30, outcomes)
            with open(f"/proc/{d.proc.pid}/stat") as f:
                before = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
            time.sleep(1)
            with open(f"/proc/{d.proc.pid}/stat") as f:
                after = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
            ticks = os.sysconf("SC_CLK_TCK")
            self.assertLess((after - before) / ticks, 0.3, "the daemon spins while out of descriptors")
            for s in socks:
                s.close()
            socks = []
            deadline = time.monotonic() + scaled(3)
            while True:
                try:
                    status = d.request("GET", "/health", timeout=1).status
                except (OSError, ValueError):
                    status = None
                if status == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            self.assertEqual(status, 200)
            self.assertIsNone(d.proc.poll())
        finally:
            for s in socks:
                s.close()
            d.cleanup()


class ConnectionCap(Base):
    CONFIG = {"max_connections": 5, "idle_timeout_ms": 10000}

    def check_503(self, s, send_first):
        if send_first:
            s.sendall(build_request("GET", "/health", b"", {"X-Request-Id": "excess"}))
        stream = ResponseStream(s)
        try:
            r = stream.next()
        except ConnectionResetError as e:
            self.fail(f"excess connection reset instead of a clean 503: {e}")
        self.assertIsNotNone(r, "excess connection closed without an answer")
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["code"], "too_many_connections")
        self.assertTrue(r.headers.get("retry-after", "").isdigit(), r.headers)
        self.assertEqual(r.headers.get("connection"), "close")
        self.assertTrue(stream.closed_by_peer())

    def test_sixth_connection_gets_503_and_first_five_still_work(self):
        socks = [self.d.connect() for _ in range(5)]
        try:
            streams = [ResponseStream(s) for s in socks]
            for i, (s, st) in enumerate(zip(socks, streams)):
                s.sendall(build_request("GET", "/health", b"", {"X-Request-Id": f"in-{i}"}))
                self.assertEqual(st.next().status, 200)
            with self.d.connect() as extra:
                self.check_503(extra, send_first=False)
            with self.d.connect() as extra:
                self.check_503(extra, send_first=True)
            self.d.wait_log(lambda e: e.get("msg") == "request" and e.get("status_code") == 503)
            for i, (s, st) in enumerate(zip(socks, streams)):
                s.sendall(build_request("GET", "/ready", b"", {"X-Request-Id": f"still-{i}"}))
                r = st.next()
                self.assertEqual((r.status, r.headers["x-request-id"]), (200, f"still-{i}"))
            # A freed slot is usable again.
            socks.pop().close()
            deadline = time.monotonic() + scaled(3)
            while True:
                r = self.d.request("GET", "/health")
                if r.status == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            self.assertEqual(r.status, 200)
        finally:
            for s in socks:
                s.close()

    def test_burst_of_excess_connections_all_answered_503(self):
        socks = [self.d.connect() for _ in range(5)]
        try:
            for s in socks:
                s.sendall(build_request("GET", "/health"))
                self.assertEqual(ResponseStream(s).next().status, 200)
            extras = [self.d.connect() for _ in range(50)]
            try:
                for e in extras:
                    e.sendall(build_request("GET", "/health"))
                for e in extras:
                    self.check_503(e, send_first=False)
            finally:
                for e in extras:
                    e.close()
        finally:
            for s in socks:
                s.close()

    def tearDown(self):
        # tearDown's own /health needs a free slot: wait for the closes.
        deadline = time.monotonic() + scaled(3)
        while self.d.request("GET", "/health").status != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        super().tearDown()


class Smuggling(Base):
    """Ambiguous framing: 400 bad_request, close, nothing behind it answered."""

    CASES = {
        "cl_then_te": b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "te_then_cl": b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        "duplicate_cl_same": b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "duplicate_cl_differ": b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
        "cl_list": b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
        "negative_cl": b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\nabc",
        "plus_cl": b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
        "overflowing_cl": b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "bad_chunk_size": b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        "negative_chunk_size": b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n",
        "overflowing_chunk_size": b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  b"10000000000000003\r\nabc\r\n0\r\n\r\n",
        "chunk_longer_than_size": b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
        "te_not_chunked": b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
        "te_chunked_twice": b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "te_space_before_colon": b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        "cl_space_before_colon": b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc",
        "space_before_colon": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Thing : 1\r\n\r\n",
        "tab_before_colon": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Thing\t: 1\r\n\r\n",
        "obs_fold": b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
        "obs_fold_tab": b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n",
        "obs_fold_te": b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
        "missing_host": b"GET /health HTTP/1.1\r\n\r\n",
        "double_host": b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "bare_lf_in_headers": b"GET /health HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
        "bare_cr_in_headers": b"GET /health HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n",
        "header_without_colon": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Nocolon\r\n\r\n",
        "nul_in_header": b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
        "upgrade": b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        # A transfer coding the daemon does not implement must not be
        # accepted, and both framing headers present is ambiguous even if
        # one is empty.
        "te_gzip_chunked": b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "te_gzip_then_te_chunked": b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "empty_te": b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n",
        "empty_te_with_cl": b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\nContent-Length: 3\r\n\r\nabc",
    }

    def test_http10_keep_alive_with_transfer_encoding_is_not_kept_alive(self):
        # RFC 9112 6.1: a Transfer-Encoding in an HTTP/1.0 request is faulty
        # framing; the daemon may answer it (400, or the route's answer) but
        # must close right after, whatever Connection says.
        data = (b"POST /health HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n0\r\n\r\n")
        with self.d.connect(timeout=2) as s:
            s.sendall(data + SMUGGLED)
            out = recv_all(s)
        rs = parse_responses(out)
        self.assertEqual(len(rs), 1, f"expected one answer, got {rs}")
        self.assertIn(rs[0].status, (400, 405), rs[0])
        self.assertEqual(rs[0].headers.get("connection"), "close", rs[0])
        self.assertNotIn(b"SMUGGLED", out)

    def test_smuggled_request_in_a_later_packet_is_not_answered(self):
        with self.d.connect() as s:
            s.sendall(self.CASES["cl_then_te"])
            stream = ResponseStream(s)
            r = stream.next()
            self.assertEqual(r.status, 400)
            try:
                s.sendall(SMUGGLED)
            except (BrokenPipeError, ConnectionResetError):
                pass
            try:
                rest = recv_all_strict(s)
            except ConnectionResetError:
                rest = b""
        self.assertEqual(stream.buf + rest, b"")


def _make_case(name, data):
    def test(self):
        self.assert_refused(data, 400, "bad_request")
    test.__name__ = f"test_{name}"
    return test


for _name, _data in Smuggling.CASES.items():
    setattr(Smuggling, f"test_{_name}", _make_case(_name, _data))


if __name__ == "__main__":
    unittest.main()
