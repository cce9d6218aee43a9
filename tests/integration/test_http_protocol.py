"""The HTTP/1.1 front against a real rampartd: keep-alive, pipelining (in
order, also past api.max_pipelined), chunked bodies, HEAD, 404/405 with
Allow, the JSON error shape, X-Request-Id, HTTP/1.0, Expect: 100-continue,
half-closed clients and IPv6."""
import json
import re
import signal
import socket
import time
import unittest

from harness import SANITIZED, Daemon, ResponseStream, build_request, parse_response, parse_responses, recv_all, scaled


def get(path, request_id=None, close=False, method="GET", body=b"", headers=None, version="1.1"):
    """A request's bytes; `request_id` goes in X-Request-Id."""
    hdrs = dict(headers or {})
    if request_id is not None:
        hdrs["X-Request-Id"] = request_id
    data = build_request(method, path, body, hdrs, close=close)
    if version != "1.1":
        data = data.replace(b" HTTP/1.1\r\n", f" HTTP/{version}\r\n".encode(), 1)
    return data


def chunked(method, path, chunks, request_id=None, extra=""):
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
    if request_id:
        head += f"X-Request-Id: {request_id}\r\n"
    out = (head + extra + "\r\n").encode()
    for c in chunks:
        out += f"{len(c):x}\r\n".encode() + c + b"\r\n"
    return out + b"0\r\n\r\n"


def vm_hwm_kib(pid):
    """Peak resident memory of a process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


GENERATED_ID = re.compile(r"^[0-9a-f]{16}$")


class HttpProtocol(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon().start()

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def setUp(self):
        if self.d.proc.poll() is not None:
            self.fail(f"rampartd died:\n{self.d.log_text()[-3000:]}")

    def tearDown(self):
        # Whatever a test did, the daemon must still serve.
        self.assertIsNone(self.d.proc.poll(), "rampartd exited")
        self.assertEqual(self.d.request("GET", "/health").status, 200)

    # -- routes ---------------------------------------------------------------
    def test_health_and_ready(self):
        r = self.d.request("GET", "/health")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.json(), {"status": "ok"})
        r = self.d.request("GET", "/ready")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"status": "ready"})
        self.assertIn("date", r.headers)

    def test_unknown_path_is_404_json(self):
        r = self.d.request("GET", "/no/such/route")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["code"], "not_found")
        self.assertNotIn("allow", r.headers)

    def test_wrong_method_is_405_with_allow(self):
        for method, path in (("POST", "/health"), ("DELETE", "/ready"), ("PUT", "/health")):
            r = self.d.request(method, path)
            self.assertEqual(r.status, 405, (method, path))
            self.assertEqual(r.json()["code"], "method_not_allowed")
            allowed = {m.strip() for m in r.headers["allow"].split(",")}
            self.assertEqual(allowed, {"GET", "HEAD"}, (method, path))

    def test_error_shape_is_json_error_and_code(self):
        for r in (self.d.request("GET", "/nope"), self.d.request("POST", "/health"),
                  parse_response(self.d.raw(b"GET /health HTTP/1.1\r\n\r\n"))):
            self.assertEqual(r.headers["content-type"], "application/json")
            self.assertEqual(int(r.headers["content-length"]), len(r.body))
            doc = r.json()
            self.assertEqual(set(doc), {"error", "code"}, doc)
            self.assertIsInstance(doc["error"], str)
            self.assertTrue(doc["error"])
            self.assertRegex(doc["code"], r"^[a-z_]+$")

    def test_head_on_get_route(self):
        with self.d.connect() as s:
            stream = ResponseStream(s)
            s.sendall(get("/health"))
            g = stream.next()
            s.sendall(get("/health", method="HEAD"))
            h = stream.next(head=True)
            # No body follows a HEAD answer: the next bytes are the next response.
            s.sendall(get("/ready", request_id="after-head"))
            after = stream.next()
        self.assertEqual(h.status, 200)
        self.assertEqual(h.body, b"")
        self.assertEqual(h.headers["content-length"], g.headers["content-length"])
        self.assertEqual(h.headers["content-type"], g.headers["content-type"])
        self.assertEqual((after.status, after.headers["x-request-id"]), (200, "after-head"))
        self.assertEqual(after.json(), {"status": "ready"})

    def test_head_on_unknown_path_is_404_without_body(self):
        data = self.d.raw(get("/nope", method="HEAD", close=True))
        head, sep, rest = data.partition(b"\r\n\r\n")
        self.assertTrue(sep)
        self.assertTrue(head.startswith(b"HTTP/1.1 404 "), data)
        self.assertEqual(rest, b"")

    # -- keep-alive and pipelining ------------------------------------------
    def test_keep_alive_many_requests_one_connection(self):
        with self.d.connect() as s:
            stream = ResponseStream(s)
            for i in range(200):
                s.sendall(get("/health" if i % 2 else "/ready", request_id=f"ka-{i}"))
                r = stream.next()
                self.assertIsNotNone(r, f"connection closed after {i} requests")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.headers["x-request-id"], f"ka-{i}")
                self.assertNotIn("connection", r.headers)

    def test_pipelining_50_in_one_send_answered_in_order(self):
        reqs = [get("/health" if i % 3 else "/nope", request_id=f"pipe-{i:03d}") for i in range(50)]
        with self.d.connect() as s:
            s.sendall(b"".join(reqs))
            rs = ResponseStream(s).read(50)
        self.assertEqual([r.headers["x-request-id"] for r in rs], [f"pipe-{i:03d}" for i in range(50)])
        self.assertEqual([r.status for r in rs], [200 if i % 3 else 404 for i in range(50)])

    def test_pipelining_mixed_methods_and_bodies(self):
        reqs = [
            get("/health", request_id="m0"),
            get("/health", method="POST", body=b"x" * 1000, request_id="m1"),
            chunked("POST", "/ready", [b"abc", b"defgh"], request_id="m2"),
            get("/health", method="HEAD", request_id="m3"),
            get("/ready", request_id="m4"),
        ]
        with self.d.connect() as s:
            s.sendall(b"".join(reqs))
            stream = ResponseStream(s)
            rs = [stream.next(), stream.next(), stream.next(), stream.next(head=True), stream.next()]
        self.assertEqual([r.headers["x-request-id"] for r in rs], ["m0", "m1", "m2", "m3", "m4"])
        self.assertEqual([r.status for r in rs], [200, 405, 405, 200, 200])

    def test_pipelining_past_max_pipelined_stays_in_order(self):
        with Daemon(config={"api": {"max_pipelined": 2}}) as d:
            n = 300
            with d.connect() as s:
                s.sendall(b"".join(get("/health", request_id=f"deep-{i}") for i in range(n)))
                rs = ResponseStream(s).read(n)
            self.assertEqual([r.headers["x-request-id"] for r in rs], [f"deep-{i}" for i in range(n)])
            self.assertTrue(all(r.status == 200 for r in rs))
            self.assertEqual(d.request("GET", "/health").status, 200)

    def test_pipelined_client_that_reads_late_gets_everything(self):
        # A client pipelines ~10 MB of requests before reading a byte of the
        # ~16 MB of answers. The daemon must stop reading from it rather than
        # buffer the answers (its peak memory stays small), then, once the
        # client reads, answer everything in order.
        import selectors
        n = 60000
        pad = "p" * 96
        payload = b"".join(get("/ready", request_id=f"{pad}{i:06d}") for i in range(n))
        with Daemon() as d:
            hwm_before = vm_hwm_kib(d.proc.pid)
            deadline = time.monotonic() + scaled(30)
            received = []
            got = 0
            # A small receive buffer keeps our kernel from absorbing the answers.
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
                s.connect((d.host, d.port))
                s.setblocking(False)
                sent = 0
                stalled_since = None
                while sent < len(payload) and time.monotonic() < deadline:
                    try:
                        sent += s.send(payload[sent:sent + 65536])
                        stalled_since = None
                    except BlockingIOError:
                        stalled_since = stalled_since or time.monotonic()
                        if time.monotonic() - stalled_since > 0.5:
                            break
                        time.sleep(0.01)
                time.sleep(0.3)  # let the daemon chew on what it has
                grown = vm_hwm_kib(d.proc.pid) - hwm_before
                # ASan keeps freed memory in its quarantine, so RSS says
                # nothing there; the bound is checked in the normal build.
                if not SANITIZED:
                    self.assertLess(grown, 8 * 1024, f"daemon buffered {grown} KiB for a client that does not read")
                sel = selectors.DefaultSelector()
                sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
                while got < n and time.monotonic() < deadline:
                    for _, events in sel.select(timeout=0.5):
                        if events & selectors.EVENT_WRITE and sent < len(payload):
                            try:
                                sent += s.send(payload[sent:sent + 65536])
                            except BlockingIOError:
                                pass
                            if sent == len(payload):
                                sel.modify(s, selectors.EVENT_READ)
                        if events & selectors.EVENT_READ:
                            chunk = s.recv(1 << 20)
                            if not chunk:
                                deadline = 0
                            # A status line may straddle two reads.
                            overlap = received[-1][-12:] if received else b""
                            received.append(chunk)
                            got += (overlap + chunk).count(b"HTTP/1.1 200 ")
                sel.close()
            data = b"".join(received)
            # parse_responses() is quadratic on 16 MB; the heads carry all we check.
            self.assertEqual(data.count(b"HTTP/1.1 "), n)
            self.assertEqual(data.count(b"HTTP/1.1 200 OK\r\n"), n)
            ids = re.findall(rb"\r\nX-Request-Id: ([^\r]*)\r\n", data)
            self.assertEqual(ids, [f"{pad}{i:06d}".encode() for i in range(n)])

    def test_request_split_into_single_bytes(self):
        data = get("/health", method="POST", body=b"hello", request_id="bytewise") + get("/ready", request_id="b2")
        with self.d.connect() as s:
            for i in range(len(data)):
                s.sendall(data[i:i + 1])
            rs = ResponseStream(s).read(2)
        self.assertEqual([(r.status, r.headers["x-request-id"]) for r in rs], [(405, "bytewise"), (200, "b2")])

    def test_connection_close_request_ends_the_pipeline(self):
        data = get("/health", request_id="first") + get("/health", request_id="closing", close=True) + \
            get("/ready", request_id="never")
        out = self.d.raw(data)
        rs = parse_responses(out)
        self.assertEqual([r.headers["x-request-id"] for r in rs], ["first", "closing"])
        self.assertEqual(rs[1].headers.get("connection"), "close")

    def test_malformed_request_in_a_pipeline(self):
        # Requests before the bad one are answered in order, then the 400,
        # then the connection closes: nothing after it is answered.
        data = get("/health", request_id="ok-1") + get("/ready", request_id="ok-2") + \
            b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + get("/health", request_id="after-bad")
        out = self.d.raw(data)
        rs = parse_responses(out)
        self.assertEqual([r.status for r in rs], [200, 200, 400])
        self.assertEqual([r.headers["x-request-id"] for r in rs[:2]], ["ok-1", "ok-2"])
        self.assertEqual(rs[2].headers.get("connection"), "close")
        self.assertNotIn(b"after-bad", out)

    def test_client_reset_mid_stream_leaves_daemon_healthy(self):
        import struct
        for _ in range(20):
            s = self.d.connect()
            s.sendall(b"".join(get("/ready", request_id=f"rst-{i}") for i in range(500)))
            s.recv(100)
            # RST instead of FIN, with answers still queued on the daemon's side.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        self.assertEqual(self.d.request("GET", "/ready").status, 200)

    def test_half_closed_client_gets_all_answers(self):
        n = 20
        with self.d.connect() as s:
            s.sendall(b"".join(get("/health", request_id=f"half-{i}") for i in range(n)))
            s.shutdown(socket.SHUT_WR)
            data = recv_all(s)
        rs = parse_responses(data)
        self.assertEqual([r.headers["x-request-id"] for r in rs], [f"half-{i}" for i in range(n)])

    def test_half_closed_mid_request_is_closed_without_answer(self):
        with self.d.connect() as s:
            s.sendall(get("/health", request_id="whole") + b"GET /health HTTP/1.1\r\nHo")
            s.shutdown(socket.SHUT_WR)
            rs = parse_responses(recv_all(s))
        self.assertEqual([r.headers["x-request-id"] for r in rs], ["whole"])

    # -- bodies ---------------------------------------------------------------
    def test_chunked_body_is_read_and_connection_reused(self):
        chunks = [b"a" * 10, b"b" * 1000, b"c" * 1]
        with self.d.connect() as s:
            stream = ResponseStream(s)
            s.sendall(chunked("POST", "/health", chunks, request_id="chunky",
                              extra="Content-Type: text/plain\r\n"))
            r = stream.next()
            self.assertEqual((r.status, r.headers["x-request-id"]), (405, "chunky"))
            # The body was consumed: the next request on the connection parses.
            s.sendall(get("/health", request_id="after-chunks"))
            r = stream.next()
            self.assertEqual((r.status, r.headers["x-request-id"]), (200, "after-chunks"))

    def test_chunked_body_with_extension_and_trailer(self):
        data = (b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5;name=value\r\nhello\r\n0\r\nX-Trailer: yes\r\n\r\n") + get("/ready", request_id="t2")
        with self.d.connect() as s:
            s.sendall(data)
            rs = ResponseStream(s).read(2)
        self.assertEqual([r.status for r in rs], [405, 200])
        self.assertEqual(rs[1].headers["x-request-id"], "t2")

    def test_chunked_body_sent_slowly_in_pieces(self):
        with self.d.connect() as s:
            s.sendall(b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in (b"4\r\n", b"ab", b"cd\r\n", b"0\r\n", b"\r\n"):
                time.sleep(0.02)
                s.sendall(piece)
            r = ResponseStream(s).next()
        self.assertEqual(r.status, 405)

    # -- request ids ------------------------------------------------------------
    def test_sane_request_id_is_echoed_and_logged(self):
        rid = "Abc-123_x.y:z"
        r = self.d.request("GET", "/health", headers={"X-Request-Id": rid})
        self.assertEqual(r.headers["x-request-id"], rid)
        entry = self.d.wait_log(lambda e: e.get("msg") == "request" and e.get("request_id") == rid)
        self.assertEqual(entry["status_code"], 200)
        self.assertEqual(entry["path"], "/health")
        self.assertEqual(entry["method"], "GET")

    def test_request_id_length_bounds(self):
        longest = "L" * 128
        r = self.d.request("GET", "/health", headers={"X-Request-Id": longest})
        self.assertEqual(r.headers["x-request-id"], longest)
        r = self.d.request("GET", "/health", headers={"X-Request-Id": "L" * 129})
        self.assertRegex(r.headers["x-request-id"], GENERATED_ID)

    def test_insane_request_ids_are_replaced(self):
        for bad in ("has space", "semi;colon", "new\\nline", "q\"uote", "x" * 1000, "ünï", "a/b", ""):
            raw = ("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Request-Id: "
                   + bad + "\r\n\r\n").encode("utf-8")
            r = parse_response(self.d.raw(raw))
            self.assertEqual(r.status, 200, bad)
            rid = r.headers["x-request-id"]
            self.assertRegex(rid, GENERATED_ID, bad)
            entry = self.d.wait_log(lambda e, rid=rid: e.get("msg") == "request" and e.get("request_id") == rid)
            self.assertEqual(entry["status_code"], 200)

    def test_generated_ids_are_unique(self):
        with self.d.connect() as s:
            s.sendall(b"".join(get("/health") for _ in range(100)))
            rs = ResponseStream(s).read(100)
        ids = [r.headers["x-request-id"] for r in rs]
        self.assertEqual(len(set(ids)), 100)
        for rid in ids:
            self.assertRegex(rid, GENERATED_ID)

    def test_error_responses_carry_request_id(self):
        r = parse_response(self.d.raw(b"GET /health HTTP/1.1\r\nX-Request-Id: bad-host\r\n\r\n"))
        self.assertEqual(r.status, 400)
        self.assertTrue(r.headers.get("x-request-id"))
        rid = r.headers["x-request-id"]
        self.d.wait_log(lambda e: e.get("msg") == "request" and e.get("request_id") == rid
                        and e.get("status_code") == 400)

    # -- HTTP/1.0 -----------------------------------------------------------------
    def test_http10_closes_by_default(self):
        with self.d.connect() as s:
            s.sendall(b"GET /health HTTP/1.0\r\n\r\n" + b"GET /ready HTTP/1.0\r\n\r\n")
            stream = ResponseStream(s)
            r = stream.next()
            self.assertEqual(r.status, 200)
            self.assertTrue(stream.closed_by_peer(), "HTTP/1.0 connection left open")

    def test_http10_keep_alive(self):
        with self.d.connect() as s:
            stream = ResponseStream(s)
            for i in range(3):
                s.sendall(f"GET /health HTTP/1.0\r\nConnection: keep-alive\r\nX-Request-Id: ten-{i}\r\n\r\n".encode())
                r = stream.next()
                self.assertEqual((r.status, r.headers["x-request-id"]), (200, f"ten-{i}"))
                self.assertEqual(r.headers.get("connection", "").lower(), "keep-alive")
            s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
            r = stream.next()
            self.assertEqual(r.status, 200)
            self.assertTrue(stream.closed_by_peer())

    def test_http11_connection_close(self):
        with self.d.connect() as s:
            s.sendall(get("/health", close=True))
            stream = ResponseStream(s)
            r = stream.next()
            self.assertEqual(r.headers.get("connection"), "close")
            self.assertTrue(stream.closed_by_peer())

    # -- Expect: 100-continue ----------------------------------------------------
    def test_expect_100_continue(self):
        body = b"z" * 2000
        with self.d.connect() as s:
            stream = ResponseStream(s)
            s.sendall(build_request("POST", "/health", b"", {"Content-Length": str(len(body)),
                                                              "Expect": "100-continue",
                                                              "X-Request-Id": "cont"}))
            interim = stream.next(interim=True)
            self.assertEqual(interim.status, 100)
            s.sendall(body)
            r = stream.next()
            self.assertEqual((r.status, r.headers["x-request-id"]), (405, "cont"))
            s.sendall(get("/health", request_id="after-cont"))
            self.assertEqual(stream.next().headers["x-request-id"], "after-cont")

    def test_expect_100_continue_with_chunked_body(self):
        with self.d.connect() as s:
            stream = ResponseStream(s)
            s.sendall(b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                      b"Expect: 100-continue\r\n\r\n")
            self.assertEqual(stream.next(interim=True).status, 100)
            s.sendall(b"3\r\nabc\r\n0\r\n\r\n")
            self.assertEqual(stream.next().status, 405)

    def test_expect_100_continue_when_body_already_sent(self):
        # A client that does not wait for the 100 still gets one answer per request.
        with self.d.connect() as s:
            s.sendall(build_request("POST", "/health", b"abc", {"Expect": "100-continue",
                                                                 "X-Request-Id": "eager"}))
            r = ResponseStream(s).next()
        self.assertEqual((r.status, r.headers["x-request-id"]), (405, "eager"))

    def test_interim_100_waits_for_earlier_answers(self):
        # Pipelined: the 100 for the second request must not appear before
        # the first request's answer.
        with self.d.connect() as s:
            s.sendall(get("/health", request_id="before") +
                      build_request("POST", "/health", b"", {"Content-Length": "3", "Expect": "100-continue"}))
            stream = ResponseStream(s)
            first = stream.next(interim=True)
            self.assertEqual((first.status, first.headers.get("x-request-id")), (200, "before"))
            self.assertEqual(stream.next(interim=True).status, 100)
            s.sendall(b"abc")
            self.assertEqual(stream.next().status, 405)

    def test_unsupported_expectation_is_417(self):
        r = self.d.request("POST", "/health", body=b"abc", headers={"Expect": "200-ok"})
        self.assertEqual(r.status, 417)
        self.assertEqual(r.json()["code"], "expectation_failed")

    # -- other protocol versions -------------------------------------------------
    def test_http2_request_line_is_505(self):
        r = parse_response(self.d.raw(b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n"))
        self.assertEqual(r.status, 505)
        self.assertEqual(r.json()["code"], "http_version_not_supported")


class ReadyWhileShuttingDown(unittest.TestCase):
    def test_ready_is_503_while_draining(self):
        with Daemon(config={"api": {"shutdown_timeout_ms": 5000}}) as d:
            with d.connect() as s:
                req = build_request("GET", "/ready", b"", {"X-Request-Id": "late-ready"})
                s.sendall(req[:12])  # a request in progress keeps the drain waiting
                time.sleep(0.1)
                d.signal(signal.SIGTERM)
                d.wait_log(lambda e: e.get("msg") == "shutting down: draining connections")
                s.sendall(req[12:])
                stream = ResponseStream(s)
                r = stream.next()
                self.assertTrue(stream.closed_by_peer())
            self.assertEqual((r.status, r.headers["x-request-id"]), (503, "late-ready"))
            self.assertEqual(r.json()["code"], "shutting_down")
            self.assertTrue(r.headers.get("retry-after", "").isdigit())
            self.assertEqual(r.headers.get("connection"), "close")
            self.assertEqual(d.wait(), 0)


class HttpIPv6(unittest.TestCase):
    def test_ipv6_loopback(self):
        if not socket.has_ipv6:
            self.skipTest("no IPv6 in this Python")
        try:
            with socket.socket(socket.AF_INET6) as probe:
                probe.bind(("::1", 0))
        except OSError as e:
            self.skipTest(f"no IPv6 loopback: {e}")
        with Daemon(config={"api": {"listen": "[::1]:0"}}) as d:
            self.assertTrue(d.address.startswith("[::1]:"), d.address)
            self.assertEqual(d.host, "::1")
            with d.connect() as s:
                self.assertEqual(s.family, socket.AF_INET6)
                s.sendall(b"".join(get("/health", request_id=f"v6-{i}") for i in range(10)))
                rs = ResponseStream(s).read(10)
            self.assertEqual([r.headers["x-request-id"] for r in rs], [f"v6-{i}" for i in range(10)])
            entry = d.wait_log(lambda e: e.get("request_id") == "v6-0")
            self.assertEqual(entry["source_ip"], "::1")


if __name__ == "__main__":
    unittest.main()
