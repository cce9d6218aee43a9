"""Signals: SIGHUP reloads the configuration (good, broken, restart-only
changes); SIGTERM and SIGINT drain in-flight requests and exit 0."""
import os
import shutil
import signal
import socket
import time
import unittest

from harness import Daemon, build_request, parse_response, recv_all, scaled, yaml_of


def base_config(d, **sections):
    cfg = {
        "node": {"id": "node_1", "data_dir": d.dir + "/data"},
        "api": {"listen": "127.0.0.1:0"},
        "log": {"level": "info", "format": "json", "sampling": 1},
    }
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return yaml_of(cfg)


class Reload(unittest.TestCase):
    def setUp(self):
        self.d = Daemon().start()

    def tearDown(self):
        self.d.cleanup()

    def reload_and_wait(self, msg):
        before = len(self.d.log_entries())
        self.d.signal(signal.SIGHUP)
        return self.d.wait_log(lambda e: e.get("msg") == msg and self.d.log_entries().index(e) >= before)

    def test_reloadable_limit_applies(self):
        big = b"x" * 3000
        self.assertEqual(self.d.request("POST", "/health", body=big).status, 405)
        self.d.write_config(base_config(self.d, api={"max_body_bytes": 2048}))
        done = self.reload_and_wait("configuration reloaded")
        self.assertIn("api.max_body_bytes", done["changed"])
        r = self.d.request("POST", "/health", body=big)
        self.assertEqual(r.status, 413)
        self.assertEqual(r.json()["code"], "body_too_large")

    def test_log_level_applies(self):
        self.d.write_config(base_config(self.d, log={"level": "warn"}))
        self.reload_and_wait("configuration reloaded")
        n = len(self.d.log_entries())
        self.d.request("GET", "/health")
        time.sleep(0.2)
        self.assertFalse([e for e in self.d.log_entries()[n:] if e.get("msg") == "request"])

    def test_broken_config_keeps_running_one(self):
        self.d.write_config("api:\n  max_body_bytes: [oops\n")
        self.reload_and_wait("config reload failed; keeping the running configuration")
        problem = self.d.wait_log(lambda e: e.get("msg") == "config reload: invalid")
        self.assertIn("rampart.yml", problem["problem"])
        self.assertEqual(self.d.request("GET", "/health").status, 200)
        # Still the old limit (64 KiB): a 3000-byte body is not refused.
        self.assertEqual(self.d.request("POST", "/health", body=b"x" * 3000).status, 405)

    def test_invalid_value_keeps_running_one(self):
        self.d.write_config(base_config(self.d, api={"max_body_bytes": 1}))
        self.reload_and_wait("config reload failed; keeping the running configuration")
        self.assertEqual(self.d.request("POST", "/health", body=b"x" * 3000).status, 405)

    def test_restart_only_change_is_named(self):
        self.d.write_config(base_config(self.d, node={"id": "other"}, api={"max_body_bytes": 4096}))
        warn = self.reload_and_wait("config reload: these settings change only at restart")
        self.assertIn("node.id", warn["keys"])
        done = self.d.wait_log(lambda e: e.get("msg") == "configuration reloaded")
        self.assertIn("api.max_body_bytes", done["changed"])
        # The running identity did not change.
        self.d.request("GET", "/health")
        last = [e for e in self.d.log_entries() if e.get("msg") == "request"][-1]
        self.assertEqual(last["node_id"], "node_1")

    def test_many_reloads_in_a_row(self):
        for i in range(20):
            self.d.write_config(base_config(self.d, api={"max_body_bytes": 4096 + i}))
            self.d.signal(signal.SIGHUP)
        time.sleep(scaled(0.5))
        self.assertEqual(self.d.request("GET", "/health").status, 200)


class DevReload(unittest.TestCase):
    """`make run` starts `rampartd --dev` with the default etc/rampart.yml
    and no -c: SIGHUP must re-read that same file (it once read the
    defaults instead, silently undoing the file's settings)."""

    def test_dev_node_reloads_its_default_config_file(self):
        d = Daemon(args=["--dev"])
        os.makedirs(os.path.join(d.dir, "etc"))
        etc = os.path.join(d.dir, "etc", "rampart.yml")
        shutil.copy(d.config_path, etc)
        with d:
            big = b"x" * 3000
            self.assertEqual(d.request("POST", "/health", body=big).status, 405)
            with open(etc) as f:
                text = f.read().replace('listen: "127.0.0.1:0"', 'listen: "127.0.0.1:0"\n  max_body_bytes: 2048')
            with open(etc, "w") as f:
                f.write(text)
            before = len(d.log_entries())
            d.signal(signal.SIGHUP)
            done = d.wait_log(lambda e: e.get("msg") == "configuration reloaded" and d.log_entries().index(e) >= before)
            self.assertIn("api.max_body_bytes", done["changed"])
            self.assertEqual(d.request("POST", "/health", body=big).status, 413)


class Drain(unittest.TestCase):
    def test_sigterm_finishes_request_in_flight(self):
        with Daemon() as d:
            s = d.connect()
            req = build_request("POST", "/health", body=b"0123456789", headers={"X-Request-Id": "inflight-1"})
            s.sendall(req[:-5])  # head and half the body
            time.sleep(0.2)
            d.signal(signal.SIGTERM)
            d.wait_log(lambda e: e.get("msg") == "shutting down: draining connections")
            # New connections are refused once draining started.
            with self.assertRaises(OSError):
                d.connect(timeout=1).sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                raise OSError("connected")
            s.sendall(req[-5:])
            resp = parse_response(recv_all(s))
            self.assertEqual(resp.status, 405)
            self.assertEqual(resp.headers.get("x-request-id"), "inflight-1")
            self.assertEqual(resp.headers.get("connection"), "close")
            self.assertEqual(d.wait(), 0)

    def test_sigint_with_idle_keepalive_exits_promptly(self):
        with Daemon() as d:
            s = d.connect()
            s.sendall(build_request("GET", "/health"))
            s.recv(4096)
            t0 = time.monotonic()
            d.signal(signal.SIGINT)
            self.assertEqual(d.wait(), 0)
            self.assertLess(time.monotonic() - t0, scaled(2))
            self.assertEqual(s.recv(4096), b"")  # closed by the server
            s.close()

    def test_drain_deadline_closes_stuck_client(self):
        with Daemon(config={"api": {"shutdown_timeout_ms": 500, "request_timeout_ms": 60000}}) as d:
            s = d.connect()
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never finishes
            time.sleep(0.1)
            t0 = time.monotonic()
            d.signal(signal.SIGTERM)
            self.assertEqual(d.wait(), 0)
            self.assertLess(time.monotonic() - t0, scaled(3))
            d.wait_log(lambda e: e.get("msg") == "drain deadline passed: closing remaining connections")
            s.close()


if __name__ == "__main__":
    unittest.main()
