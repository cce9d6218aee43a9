"""The ratelimit plugin in a real rampartd: the unauthenticated limit (429,
Retry-After, RateLimit headers) and recovery, auth failures (429 with
Retry-After: 60 for the address), an authenticated identity's own bucket,
the environment beating rampart.yml, buckets surviving SIGHUP, and config
errors (exit 78). Shadow rules and CIDR allow-lists come from the policy
file: plugins/ratelimit/tests/test_ratelimit.cpp covers them through
on_policy until the policy host is wired in."""
import os
import re
import signal
import time
import unittest

from harness import BUILD, Daemon, scaled

PLUGINS = {"dir": os.path.join(os.path.abspath(BUILD), "plugins"), "load": ["ratelimit"]}
TOKEN = "correct-horse-battery-staple-42"
ITEM = re.compile(r'^"([a-z0-9_]+)";r=(\d+);t=(\d+)$')


def limited(extra=None, ratelimit=None, **kw):
    config = {"plugins": PLUGINS}
    if ratelimit:
        config["ratelimit"] = ratelimit
    config.update(extra or {})
    return Daemon(config=config, **kw)


def remaining(resp, rule):
    """r of `rule` in the RateLimit header."""
    for item in resp.headers["ratelimit"].split(", "):
        m = ITEM.match(item)
        if m and m.group(1) == rule:
            return int(m.group(2))
    raise AssertionError(f"no {rule} in RateLimit: {resp.headers.get('ratelimit')}")


class RateLimitPlugin(unittest.TestCase):
    def assert_429(self, r, retry_after=None):
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.headers["content-type"], "application/json")
        body = r.json()
        self.assertEqual(body["code"], "rate_limited")
        self.assertTrue(body["error"].startswith("rate limit exceeded for "), body)
        self.assertRegex(r.headers["retry-after"], r"^[1-9]\d*$")
        if retry_after is not None:
            self.assertEqual(int(r.headers["retry-after"]), retry_after)
        self.assertIn("ratelimit-policy", r.headers)
        self.assertIn("ratelimit", r.headers)

    def test_unauthenticated_limit_headers_and_recovery(self):
        # 30 per minute: a token every 2 s.
        with limited(ratelimit={"unauth_per_min": 30}) as d:
            first = d.request("GET", "/health")
            self.assertEqual(first.status, 200)
            self.assertEqual(first.headers["ratelimit-policy"], '"unauthenticated";q=30;w=60')
            self.assertEqual(first.headers["ratelimit"], '"unauthenticated";r=29;t=2')
            self.assertNotIn("retry-after", first.headers)
            ok = 1
            while ok < 40:
                r = d.request("GET", "/health")
                if r.status != 200:
                    break
                self.assertEqual(r.headers["ratelimit-policy"], '"unauthenticated";q=30;w=60')
                ok += 1
            self.assertGreaterEqual(ok, 30)
            self.assertLessEqual(ok, 32)  # a token or two may accrue meanwhile
            self.assert_429(r, retry_after=2)
            self.assertEqual(remaining(r, "unauthenticated"), 0)
            self.assertIn("unauthenticated", r.json()["error"])
            # Unrouted requests count too (a scanner's 404s).
            self.assert_429(d.request("GET", "/no/such/path"))
            # The bucket refills: one request per 2 s.
            time.sleep(2.2)
            r = d.request("GET", "/health")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(remaining(r, "unauthenticated"), 0)
            self.assert_429(d.request("GET", "/ready"))

    def test_auth_failures_get_429_retry_after_60(self):
        auth = {"auth": {"enabled": True, "bootstrap_token": TOKEN}}
        with limited(extra=auth) as d:
            bad = {"Authorization": "Bearer not-the-right-token-at-all"}
            for i in range(10):
                r = d.request("GET", "/v1/x", headers=bad)
                self.assertEqual(r.status, 401, r)
                # The 401 still says what is left of the address's budget.
                self.assertEqual(remaining(r, "unauthenticated"), 29 - i)
            r = d.request("GET", "/v1/x", headers=bad)
            self.assert_429(r, retry_after=60)
            self.assertIn("auth_failures", r.json()["error"])
            self.assertEqual(r.headers["ratelimit"], '"auth_failures";r=0;t=60')
            self.assertEqual(r.headers["ratelimit-policy"], '"auth_failures";q=10;w=60')
            # Every request from the address waits now, a right token included.
            r = d.request("GET", "/v1/x", headers={"Authorization": f"Bearer {TOKEN}"})
            self.assert_429(r)
            self.assertIn(int(r.headers["retry-after"]), (59, 60))
            self.assert_429(d.request("GET", "/health"))

    def test_authenticated_identity_has_its_own_bucket(self):
        config = {"auth": {"enabled": True, "bootstrap_token": TOKEN}}
        with limited(extra=config, ratelimit={"requests_per_min": 3, "unauth_per_min": 5}) as d:
            good = {"Authorization": f"Bearer {TOKEN}"}
            for i in range(3):
                r = d.request("GET", "/v1/kv/a", headers=good)
                self.assertEqual(r.status, 404, r)  # authenticated; no KV store yet
                self.assertEqual(r.headers["ratelimit-policy"], '"authenticated";q=3;w=60')
                self.assertEqual(remaining(r, "authenticated"), 2 - i)
            r = d.request("GET", "/v1/kv/a", headers=good)
            self.assert_429(r, retry_after=20)
            self.assertIn("identity", r.json()["error"])
            # The same address without credentials has its own, untouched budget.
            r = d.request("GET", "/health")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["ratelimit-policy"], '"unauthenticated";q=5;w=60')
            self.assertEqual(remaining(r, "unauthenticated"), 4)
            # An unauthenticated route with a token still counts for the identity.
            self.assert_429(d.request("GET", "/health", headers=good))

    def test_environment_beats_the_file(self):
        with limited(ratelimit={"unauth_per_min": 50}, env={"RAMPART_RATELIMIT_UNAUTH_PER_MIN": "3"}) as d:
            for _ in range(3):
                r = d.request("GET", "/health")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.headers["ratelimit-policy"], '"unauthenticated";q=3;w=60')
            self.assert_429(d.request("GET", "/health"), retry_after=20)

    def test_buckets_survive_sighup_and_rescale(self):
        with limited(ratelimit={"unauth_per_min": 3}) as d:
            for _ in range(3):
                self.assertEqual(d.request("GET", "/health").status, 200)
            self.assert_429(d.request("GET", "/health"))
            # Same settings: the empty bucket stays empty.
            d.signal(signal.SIGHUP)
            d.wait_log(lambda e: e.get("msg") == "configuration reloaded")
            self.assert_429(d.request("GET", "/health"))
            # A new rate: the rule changes, the bucket keeps its (empty) share.
            with open(d.config_path) as f:
                d.write_config(f.read().replace("unauth_per_min: 3", "unauth_per_min: 600"))
            d.signal(signal.SIGHUP)
            d.wait_log(lambda e: "ratelimit rules reloaded" in str(e.get("msg")))
            r = d.request("GET", "/health")
            # 600/min refills 10 tokens a second: one is there by now, or soon.
            deadline = time.monotonic() + scaled(2)
            while r.status == 429 and time.monotonic() < deadline:
                time.sleep(0.1)
                r = d.request("GET", "/health")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.headers["ratelimit-policy"], '"unauthenticated";q=600;w=60')
            self.assertLess(remaining(r, "unauthenticated"), 100)  # not reset to a full 600

    def test_bench_profile(self):
        # plugins/ratelimit/README.md, "The bench/test profile": the limits at
        # their maxima, no blocks, loopback allow-listed (environment form).
        env = {"RAMPART_RATELIMIT_AUTH_FAILURES_PER_MIN": "1000000", "RAMPART_RATELIMIT_AUTH_FAILURES_BLOCK_MIN": "0",
               "RAMPART_RATELIMIT_REQUESTS_PER_MIN": "1000000", "RAMPART_RATELIMIT_UNAUTH_PER_MIN": "1000000",
               "RAMPART_RATELIMIT_ALLOW_CIDRS": "127.0.0.0/8, ::1/128"}
        with limited(ratelimit={"unauth_per_min": 1}, env=env) as d:
            for _ in range(50):
                r = d.request("GET", "/health")
                self.assertEqual(r.status, 200, r)
                self.assertNotIn("ratelimit", r.headers)  # no rule applies to loopback
        # Without the allow-list the raised numbers alone also hold a test's load.
        env.pop("RAMPART_RATELIMIT_ALLOW_CIDRS")
        with limited(env=env) as d:
            for _ in range(50):
                r = d.request("GET", "/health")
                self.assertEqual(r.status, 200, r)
            self.assertEqual(r.headers["ratelimit-policy"], '"unauthenticated";q=1000000;w=60')

    def test_metrics(self):
        config = {"auth": {"enabled": True, "bootstrap_token": TOKEN},
                  "plugins": dict(PLUGINS, load=["ratelimit", "metrics"])}
        with limited(extra=config, ratelimit={"unauth_per_min": 3}) as d:
            statuses = [d.request("GET", "/health").status for _ in range(4)]
            self.assertEqual(statuses, [200, 200, 200, 429])
            bad = {"Authorization": "Bearer not-the-right-token-at-all"}
            for _ in range(2):
                self.assertEqual(d.request("GET", "/v1/x", headers=bad).status, 429)  # 401, but out of budget
            # The scrape uses the token: its own bucket, not the exhausted address's.
            r = d.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            self.assertEqual(r.status, 200, r)
            text = r.body.decode()

            def value(name, **labels):
                for line in text.splitlines():
                    if not line.startswith(name):
                        continue
                    head, _, v = line.rpartition(" ")
                    got = dict(re.findall(r'(\w+)="([^"]*)"', head))
                    if head.split("{")[0] == name and got == labels:
                        return float(v)
                raise AssertionError(f"{name}{labels} not in:\n{text}")

            self.assertEqual(value("rampart_ratelimit_decisions_total", rule="unauthenticated", decision="allowed"), 3)
            self.assertEqual(value("rampart_ratelimit_decisions_total", rule="unauthenticated", decision="limited"), 3)
            self.assertEqual(value("rampart_ratelimit_decisions_total", rule="authenticated", decision="allowed"), 1)
            self.assertEqual(value("rampart_auth_failures_total", reason="invalid_token"), 2)
            self.assertEqual(value("rampart_ratelimit_tracked_keys"), 2)  # the address and the token
            self.assertEqual(value("rampart_http_requests_total", route="/health", method="GET", status="429"), 1)

    def test_config_errors_exit_78(self):
        d = limited(ratelimit={"unauth_per_minute": 5})
        d.start(wait=False)
        self.assertEqual(d.wait(), 78)
        self.assertRegex(d.log_text(), r"rampart\.yml:\d+:\d+: ratelimit\.unauth_per_minute: unknown key")
        self.assertIn("unauth_per_min", d.log_text())
        d.cleanup()
        d = limited(ratelimit={"unauth_per_min": 0})
        d.start(wait=False)
        self.assertEqual(d.wait(), 78)
        d.cleanup()
        # max_tracked_keys and allow_cidrs, from the environment or the file.
        d = limited(env={"RAMPART_RATELIMIT_MAX_TRACKED_KEYS": "15"})
        d.start(wait=False)
        self.assertEqual(d.wait(), 78)
        self.assertIn("RAMPART_RATELIMIT_MAX_TRACKED_KEYS: 15 is out of range", d.log_text())
        d.cleanup()
        d = limited(ratelimit={"max_tracked_keys": 15})
        d.start(wait=False)
        self.assertEqual(d.wait(), 78)
        self.assertRegex(d.log_text(), r"rampart\.yml:\d+:\d+: ratelimit\.max_tracked_keys")
        d.cleanup()
        with limited(ratelimit={"max_tracked_keys": 16, "allow_cidrs": ["10.0.0.0/8"]}) as d:
            self.assertEqual(d.request("GET", "/health").status, 200)
        with limited(env={"RAMPART_RATELIMIT_MAX_TRACKED_KEYS": "16"}) as d:
            self.assertEqual(d.request("GET", "/health").status, 200)
        d = limited(env={"RAMPART_RATELIMIT_ALLOW_CIDRS": "127.0.0.0/8,127.0.0.1/33"})
        d.start(wait=False)
        self.assertEqual(d.wait(), 78)
        self.assertIn('allow_cidrs[2] \\"127.0.0.1/33\\"', d.log_text())
        d.cleanup()


if __name__ == "__main__":
    unittest.main()
