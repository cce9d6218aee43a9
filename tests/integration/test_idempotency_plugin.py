"""The idempotency plugin against the real daemon.

The daemon has no write route of its own yet, so these tests load a
test-only plugin, echo_write (plugins/idempotency/tests/echo_write.c), next
to idempotency.so. Its routes count every request they handle and report
the count, so a replay (count unchanged) is told apart from a second run.

Not covered here: an in-flight duplicate (409 idempotency_in_flight). The
ABI's route handlers answer before returning and the loop is single
threaded, so over HTTP a request is never in flight when the next one is
looked up. The plugin's unit tests (plugins/idempotency/tests/
test_idempotency_store.cpp) drive the hooks through a fake host to cover it.
"""
import os
import shutil
import signal
import socket
import tempfile
import time
import unittest

from harness import BUILD, Daemon, build_request, parse_response, parse_responses, recv_all, scaled

IDEMPOTENCY_SO = os.path.join(BUILD, "plugins", "idempotency.so")
ECHO_SO = os.path.join(BUILD, "plugins", "idempotency", "echo_write.so")
METRICS_SO = os.path.join(BUILD, "plugins", "metrics.so")
TOKEN = "idempotency-test-token-0123456789"


class IdempotencyPlugin(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for path in (IDEMPOTENCY_SO, ECHO_SO):
            if not os.path.exists(path):
                raise AssertionError(f"{path} not built (meson -Dplugin_idempotency=true -Dtests=true)")
        cls.plugin_dir = tempfile.mkdtemp(prefix="rampart-idem-plugins-")
        os.symlink(IDEMPOTENCY_SO, os.path.join(cls.plugin_dir, "idempotency.so"))
        os.symlink(ECHO_SO, os.path.join(cls.plugin_dir, "echo_write.so"))
        if os.path.exists(METRICS_SO):
            os.symlink(METRICS_SO, os.path.join(cls.plugin_dir, "metrics.so"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.plugin_dir, ignore_errors=True)

    def daemon(self, idempotency=None, env=None, extra=None, load=("echo_write", "idempotency")):
        config = {"plugins": {"dir": self.plugin_dir, "load": list(load)}}
        if idempotency:
            config["idempotency"] = idempotency
        config.update(extra or {})
        d = Daemon(config=config, env=env)
        self.addCleanup(d.cleanup)
        return d.start()

    @staticmethod
    def put(d, key, body="one", path="/test/echo", method="PUT", headers=None):
        h = dict(headers or {})
        if key is not None:
            h["Idempotency-Key"] = key
        return d.request(method, path, body=body, headers=h)

    @staticmethod
    def count(d):
        return d.request("GET", "/test/count").json()["count"]

    # -- replay mode -------------------------------------------------------
    def test_replay_returns_the_stored_response(self):
        d = self.daemon()
        first = self.put(d, "order-1", body="hello")
        self.assertEqual(first.status, 200)
        self.assertEqual(first.json(), {"count": 1, "method": "PUT", "body_len": 5})
        self.assertNotIn("idempotent-replayed", first.headers)
        again = self.put(d, "order-1", body="hello")
        self.assertEqual(again.status, 200)
        self.assertEqual(again.body, first.body)
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        self.assertEqual(again.headers.get("content-type"), first.headers.get("content-type"))
        # The handler's own headers come back; per-exchange ones do not.
        self.assertEqual(again.headers.get("x-echo-count"), "1")
        self.assertEqual(again.headers.get("x-echo-static"), "kept")
        self.assertIn("ratelimit-remaining", first.headers)
        self.assertNotIn("ratelimit-remaining", again.headers)
        self.assertNotEqual(again.headers.get("x-request-id"), first.headers.get("x-request-id"))
        self.assertEqual(self.count(d), 1)  # the write ran once

    def test_every_write_method_is_deduplicated(self):
        d = self.daemon()
        for i, method in enumerate(["PUT", "POST", "PATCH", "DELETE"], start=1):
            first = self.put(d, f"k-{method}", method=method, body="x")
            again = self.put(d, f"k-{method}", method=method, body="x")
            self.assertEqual(first.json()["count"], i)
            self.assertEqual(again.body, first.body, method)
            self.assertEqual(again.headers.get("idempotent-replayed"), "true", method)
        self.assertEqual(self.count(d), 4)

    def test_pipelined_duplicates_replay(self):
        d = self.daemon()
        req = build_request("PUT", "/test/echo", body="p", headers={"Idempotency-Key": "pipe"})
        last = build_request("PUT", "/test/echo", body="p", headers={"Idempotency-Key": "pipe"}, close=True)
        with d.connect() as s:
            s.sendall(req + req + last)
            responses = parse_responses(recv_all(s))
        self.assertEqual([r.status for r in responses], [200, 200, 200])
        self.assertEqual({r.body for r in responses}, {responses[0].body})
        self.assertEqual([r.headers.get("idempotent-replayed") for r in responses], [None, "true", "true"])
        self.assertEqual(self.count(d), 1)

    def test_same_key_other_request_is_422(self):
        d = self.daemon()
        self.assertEqual(self.put(d, "k", body="one").status, 200)
        for resp in (self.put(d, "k", body="two"),
                     self.put(d, "k", body="one", method="POST"),
                     self.put(d, "k", body="one", path="/test/echo?x=1")):
            self.assertEqual(resp.status, 422, resp)
            self.assertEqual(resp.json()["code"], "idempotency_key_reused")
            self.assertIn("error", resp.json())
        self.assertEqual(self.count(d), 1)
        self.assertEqual(self.put(d, "k", body="one").headers.get("idempotent-replayed"), "true")

    def test_reads_and_keyless_writes_are_not_deduplicated(self):
        d = self.daemon()
        for _ in range(2):
            r = d.request("GET", "/test/echo", headers={"Idempotency-Key": "g"})
            self.assertNotIn("idempotent-replayed", r.headers)
        for _ in range(2):
            self.assertNotIn("idempotent-replayed", self.put(d, None).headers)
        self.assertEqual(self.count(d), 4)
        # An unrouted write is answered 404 every time, not stored.
        for _ in range(2):
            r = self.put(d, "nowhere", path="/test/nowhere")
            self.assertEqual(r.status, 404)
            self.assertNotIn("idempotent-replayed", r.headers)

    def test_bad_key_is_400(self):
        d = self.daemon()
        for key in ("k" * 256, "caf\u00e9".encode().decode("latin-1")):
            r = self.put(d, key)
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.json()["code"], "bad_idempotency_key")
        self.assertEqual(self.put(d, "k" * 255).status, 200)
        self.assertEqual(self.count(d), 1)

    def test_server_errors_release_the_key(self):
        d = self.daemon()
        for _ in range(2):
            r = self.put(d, "flaky", path="/test/status?code=503")
            self.assertEqual(r.status, 503)
            self.assertNotIn("idempotent-replayed", r.headers)
        self.assertEqual(self.count(d), 2)  # each retry ran
        # A client error is the outcome of the write: kept and replayed.
        first = self.put(d, "gone", path="/test/status?code=404")
        again = self.put(d, "gone", path="/test/status?code=404")
        self.assertEqual((first.status, again.status), (404, 404))
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        self.assertEqual(self.count(d), 3)

    def test_response_too_large_to_keep_is_not_run_again(self):
        d = self.daemon(idempotency={"max_body_bytes": 1000})
        self.assertEqual(len(self.put(d, "big", path="/test/big?n=2000").body), 2000)
        again = self.put(d, "big", path="/test/big?n=2000")
        self.assertEqual(again.status, 409)
        self.assertEqual(again.json()["code"], "idempotency_response_too_large")
        self.assertIn("status 200", again.json()["error"])
        small = self.put(d, "small", path="/test/big?n=1000")
        self.assertEqual(self.put(d, "small", path="/test/big?n=1000").body, small.body)
        self.assertEqual(self.count(d), 2)

    def test_metrics(self):
        if not os.path.exists(METRICS_SO):
            self.skipTest("metrics plugin not built")
        d = self.daemon(load=("echo_write", "idempotency", "metrics"), idempotency={"mode": "replay"})
        self.put(d, "a")
        self.put(d, "a")
        self.put(d, "b")
        self.put(d, "a", body="other")
        self.put(d, "x" * 300)
        text = d.request("GET", "/metrics").body.decode()
        for line in ('rampart_idempotency_requests_total{result="new"} 2',
                     'rampart_idempotency_requests_total{result="replayed"} 1',
                     'rampart_idempotency_requests_total{result="mismatch"} 1',
                     'rampart_idempotency_requests_total{result="invalid"} 1',
                     "rampart_idempotency_keys 2"):
            self.assertIn(line + "\n", text)

    # -- scope -------------------------------------------------------------
    def request_from(self, d, source_ip, key, headers=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(scaled(5))
        try:
            s.bind((source_ip, 0))
            s.connect((d.host, d.port))
            h = {"Idempotency-Key": key, **(headers or {})}
            s.sendall(build_request("PUT", "/test/echo", body="same", headers=h, close=True))
            return parse_response(recv_all(s))
        finally:
            s.close()

    def test_keys_are_scoped_by_identity(self):
        d = self.daemon(env={"RAMPART_AUTH_ENABLED": "true", "RAMPART_AUTH_BOOTSTRAP_TOKEN": TOKEN})
        auth = {"Authorization": f"Bearer {TOKEN}"}
        token_first = self.request_from(d, "127.0.0.1", "shared", auth)
        anon_first = self.request_from(d, "127.0.0.1", "shared")
        other_ip = self.request_from(d, "127.0.0.2", "shared")
        self.assertEqual([r.json()["count"] for r in (token_first, anon_first, other_ip)], [1, 2, 3])
        for r in (token_first, anon_first, other_ip):
            self.assertNotIn("idempotent-replayed", r.headers)
        # Each client gets its own answer back.
        self.assertEqual(self.request_from(d, "127.0.0.1", "shared", auth).body, token_first.body)
        self.assertEqual(self.request_from(d, "127.0.0.2", "shared").body, other_ip.body)
        self.assertEqual(self.request_from(d, "127.0.0.1", "shared").body, anon_first.body)
        # A token's scope does not follow the address: same token, other IP.
        self.assertEqual(self.request_from(d, "127.0.0.2", "shared", auth).body, token_first.body)
        self.assertEqual(self.count(d), 3)

    # -- bounds and expiry -------------------------------------------------
    def test_records_expire_after_ttl(self):
        d = self.daemon(idempotency={"ttl_s": 1})
        self.assertEqual(self.put(d, "t").json()["count"], 1)
        self.assertEqual(self.put(d, "t").headers.get("idempotent-replayed"), "true")
        time.sleep(1.3)
        fresh = self.put(d, "t")
        self.assertNotIn("idempotent-replayed", fresh.headers)
        self.assertEqual(fresh.json()["count"], 2)

    def test_max_keys_evicts_least_recently_used(self):
        d = self.daemon(idempotency={"max_keys": 3})
        for key in ("1", "2", "3", "4"):  # "1" is evicted by "4"
            self.put(d, key)
        self.assertEqual(self.count(d), 4)
        for key in ("4", "3", "2"):
            self.assertEqual(self.put(d, key).headers.get("idempotent-replayed"), "true", key)
        self.assertEqual(self.count(d), 4)
        r = self.put(d, "1")  # forgotten: runs again (and evicts "4", now the oldest)
        self.assertNotIn("idempotent-replayed", r.headers)
        self.assertEqual(self.count(d), 5)
        self.assertNotIn("idempotent-replayed", self.put(d, "4").headers)

    # -- reject mode and configuration --------------------------------------
    def test_reject_mode_refuses_any_duplicate(self):
        d = self.daemon(idempotency={"mode": "reject"})
        self.assertEqual(self.put(d, "r", body="one").status, 200)
        for body in ("one", "another"):
            r = self.put(d, "r", body=body)
            self.assertEqual(r.status, 409)
            self.assertEqual(r.json()["code"], "duplicate_request")
            self.assertNotIn("idempotent-replayed", r.headers)
        self.assertEqual(self.count(d), 1)

    def test_mode_from_environment(self):
        d = self.daemon(env={"RAMPART_IDEMPOTENCY_MODE": "reject"})
        self.put(d, "e")
        self.assertEqual(self.put(d, "e").json()["code"], "duplicate_request")

    def test_reload_switches_mode_and_keeps_records(self):
        d = self.daemon()
        first = self.put(d, "kept")
        text = open(d.config_path).read()
        d.write_config(text + "idempotency:\n  mode: reject\n")
        d.signal(signal.SIGHUP)
        d.wait_log(lambda e: e.get("msg") == "configuration reloaded")
        r = self.put(d, "kept")
        self.assertEqual(r.status, 409, r)  # the record survived the reload
        self.assertEqual(r.json()["code"], "duplicate_request")
        self.assertEqual(self.count(d), 1)
        self.assertEqual(first.status, 200)

    def test_bad_configuration_refuses_to_start(self):
        for section, needle in (({"mode": "sometimes"}, 'mode must be "replay" or "reject"'),
                                ({"max_keys": 0}, "idempotency.max_keys: must be between 1 and 1000000"),
                                ({"ttl_s": 86401}, "idempotency.ttl_s: must be between 1 and 86400"),
                                ({"max_entries": 5}, "allowed: mode, max_keys, ttl_s")):
            config = {"plugins": {"dir": self.plugin_dir, "load": ["echo_write", "idempotency"]},
                      "idempotency": section}
            d = Daemon(config=config)
            self.addCleanup(d.cleanup)
            d.start(wait=False)
            self.assertEqual(d.wait(), 78, d.log_text())
            said = "\n".join(f"{e.get('msg', '')} {e.get('problem', '')}" for e in d.log_entries())
            self.assertIn(needle, said)

    def test_sweep_timer_does_not_hold_up_shutdown(self):
        d = self.daemon()
        self.put(d, "k")
        started = time.monotonic()
        self.assertEqual(d.stop(timeout=5), 0, d.log_text()[-2000:])
        self.assertLess(time.monotonic() - started, scaled(3))


if __name__ == "__main__":
    unittest.main()
