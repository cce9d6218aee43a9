"""Logging as the brief says: JSON (default) or console, the standard
access-log fields, sampling of high-volume routes with errors never
sampled, and no secrets in any line."""
import json
import unittest

from harness import Daemon

ACCESS_FIELDS = {"ts", "level", "msg", "node_id", "request_id", "source_ip", "method", "path",
                 "status_code", "duration_ms"}


def requests_logged(d):
    return [e for e in d.log_entries() if e.get("msg") == "request"]


class JsonLog(unittest.TestCase):
    def test_access_line_fields(self):
        with Daemon() as d:
            r = d.request("GET", "/health?x=1", headers={"X-Request-Id": "abc-123"})
            self.assertEqual(r.headers["x-request-id"], "abc-123")
            entry = d.wait_log(lambda e: e.get("request_id") == "abc-123")
            self.assertTrue(ACCESS_FIELDS <= set(entry), set(entry))
            self.assertEqual(entry["path"], "/health")  # no query string
            self.assertEqual(entry["status_code"], 200)
            self.assertEqual(entry["source_ip"], "127.0.0.1")
            self.assertEqual(entry["method"], "GET")
            self.assertEqual(entry["level"], "info")

    def test_every_line_is_json(self):
        with Daemon() as d:
            d.request("GET", "/nope")
            d.raw(b"garbage\r\n\r\n")
            d.stop()
            for line in d.log_text().splitlines():
                json.loads(line)

    def test_sampling_high_volume_but_never_errors(self):
        with Daemon(config={"log": {"sampling": 10}}) as d:
            s = d.connect()
            from harness import build_request, recv_response
            for _ in range(100):
                s.sendall(build_request("GET", "/health"))
                recv_response(s)
            for _ in range(7):
                s.sendall(build_request("GET", "/nope"))
                recv_response(s)
            s.close()
            d.stop()
            logged = requests_logged(d)
            health = [e for e in logged if e["path"] == "/health"]
            missing = [e for e in logged if e["path"] == "/nope"]
            self.assertEqual(len(health), 10)
            self.assertEqual(len(missing), 7)

    def test_secrets_never_logged(self):
        secret = "tok-SUPERSECRET-0123456789"
        with Daemon(config={"log": {"level": "debug"}},
                    env={"RAMPART_AUTH_BOOTSTRAP_TOKEN": secret, "RAMPART_AUTH_ENABLED": "true"}) as d:
            d.request("GET", "/health?token=" + secret, headers={"Authorization": "Bearer " + secret})
            d.request("GET", "/nope", headers={"Authorization": "Bearer " + secret, "X-Api-Key": secret})
            d.raw(("GET /health HTTP/1.1\r\nAuthorization: Bearer " + secret + "\r\n\r\n").encode())
            # A token from the replicated state: created, used (allowed,
            # refused for its role), revoked, used again (401).
            admin = {"Authorization": "Bearer " + secret}
            made = d.request("PUT", "/v1/acl/token", body='{"Role": "read", "Prefix": "app/"}', headers=admin)
            self.assertEqual(made.status, 200, made)
            replicated = json.loads(made.body)["SecretID"]
            d.request("GET", "/v1/kv/app/x?token=" + replicated, headers={"Authorization": "Bearer " + replicated})
            d.request("PUT", "/v1/kv/app/x", body=replicated, headers={"Authorization": "Bearer " + replicated})
            d.request("DELETE", "/v1/acl/token/" + json.loads(made.body)["AccessorID"], headers=admin)
            d.request("GET", "/v1/kv/app/x", headers={"Authorization": "Bearer " + replicated})
            d.stop()
            self.assertNotIn(secret, d.log_text())
            self.assertNotIn("SUPERSECRET", d.log_text())
            self.assertNotIn(replicated, d.log_text())
            self.assertNotIn(replicated[:16], d.log_text())


class ConsoleLog(unittest.TestCase):
    def test_console_lines(self):
        import socket
        from harness import free_port
        port = free_port()
        d = Daemon(env={"RAMPART_LOG_FORMAT": "console", "RAMPART_API_LISTEN": f"127.0.0.1:{port}"})
        d.start(wait=False)
        d.host, d.port = "127.0.0.1", port
        import time
        for _ in range(200):
            if "rampartd started" in d.log_text():
                break
            time.sleep(0.02)
        d.request("GET", "/health", headers={"X-Request-Id": "console-1"})
        d.stop()
        text = d.log_text()
        line = next(l for l in text.splitlines() if "console-1" in l)
        self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\S+Z info request request_id=console-1 source_ip=127\.0\.0\.1 "
                               r"method=GET path=/health status_code=200 duration_ms=")
        d.cleanup()


if __name__ == "__main__":
    unittest.main()
