"""The Lua policies as an operator meets them: edit policies/ratelimit.lua,
send SIGHUP (or POST /v1/admin/reload, or `rampartctl reload`), and the
limits change at once without resetting buckets; a broken edit keeps the
last good generation, names file:line, and shows in the metrics."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import BUILD, RAMPARTCTL, ROOT, Daemon, build_request, recv_response, scaled

PLUGINS = os.path.join(BUILD, "plugins")
TOKEN = "admin-token-0123456789abcdef"


def metric(text, name, labels=""):
    m = re.search(r"^" + re.escape(name + labels) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


class Policies(unittest.TestCase):
    def setUp(self):
        self.policies = tempfile.mkdtemp(prefix="rampart-policies-")
        for f in os.listdir(os.path.join(ROOT, "policies")):
            shutil.copy(os.path.join(ROOT, "policies", f), self.policies)
        self.ratelimit = os.path.join(self.policies, "ratelimit.lua")
        with open(self.ratelimit) as f:
            self.original = f.read()

    def tearDown(self):
        shutil.rmtree(self.policies, ignore_errors=True)

    def set_unauth_limit(self, limit):
        """Edit the unauthenticated rule's limit and burst in the file."""
        text = self.original
        block = text[text.index('name = "unauthenticated"'):]
        edited = block.replace("limit = 30,", f"limit = {limit},", 1).replace("burst = 30,", f"burst = {limit},", 1)
        with open(self.ratelimit, "w") as f:
            f.write(text[:text.index('name = "unauthenticated"')] + edited)

    def daemon(self, **extra):
        config = {"policies": {"dir": self.policies},
                  "plugins": {"dir": PLUGINS, "load": ["ratelimit", "metrics"]},
                  "auth": {"enabled": True, "bootstrap_token": TOKEN}}
        config.update(extra)
        return Daemon(config=config)

    def statuses(self, d, n):
        s = d.connect()
        out = []
        for _ in range(n):
            s.sendall(build_request("GET", "/health"))
            out.append(int(recv_response(s).split(b" ", 2)[1]))
        s.close()
        return out

    def metrics(self, d):
        return d.request("GET", "/metrics", headers={"Authorization": "Bearer " + TOKEN}).body.decode()

    def reload(self, d, msg):
        before = len(d.log_entries())
        d.signal(signal.SIGHUP)
        return d.wait_log(lambda e: e.get("msg") == msg and d.log_entries().index(e) >= before)

    def test_edit_and_sighup_changes_limit_without_resetting_buckets(self):
        self.set_unauth_limit(10)
        with self.daemon() as d:
            self.assertEqual(self.statuses(d, 4), [200] * 4)  # 6 tokens left of 10
            self.set_unauth_limit(20)
            self.reload(d, "policies reloaded")
            # Rescaled, not reset: 6/10 of the bucket becomes 12/20, so the
            # 13th request is refused (a reset would allow 20).
            got = self.statuses(d, 14)
            self.assertEqual(got[:12], [200] * 12, got)
            self.assertEqual(got[12:], [429, 429], got)
            m = self.metrics(d)
            self.assertEqual(metric(m, "rampart_policy_generation"), 2)
            self.assertEqual(metric(m, "rampart_reload_total", '{result="success"}'), 1)

    def test_broken_edit_keeps_last_good_generation(self):
        self.set_unauth_limit(5)
        with self.daemon() as d:
            with open(self.ratelimit, "a") as f:
                f.write("\nthis is not lua\n")
            before = len(d.log_entries())
            d.signal(signal.SIGHUP)
            halted = d.wait_log(lambda e: e.get("msg", "").startswith("policy reload halted:")
                                and d.log_entries().index(e) >= before)
            self.assertRegex(halted["msg"], r"policy reload halted: .*ratelimit\.lua:\d+: ")
            # Still generation 1 with limit 5.
            self.assertEqual(self.statuses(d, 6), [200] * 5 + [429])
            m = self.metrics(d)
            self.assertEqual(metric(m, "rampart_policy_generation"), 1)
            self.assertEqual(metric(m, "rampart_reload_total", '{result="failure"}'), 1)

    def test_admin_reload_route_and_rampartctl(self):
        with self.daemon() as d:
            self.assertEqual(d.request("POST", "/v1/admin/reload").status, 401)
            r = d.request("POST", "/v1/admin/reload", headers={"Authorization": "Bearer " + TOKEN})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json(), {"reloaded": True, "policy_generation": 2})
            env = dict(os.environ, RAMPART_HTTP_ADDR=d.address, RAMPART_HTTP_TOKEN=TOKEN)
            out = subprocess.run([RAMPARTCTL, "reload"], capture_output=True, text=True, env=env,
                                 timeout=scaled(10))
            self.assertEqual(out.returncode, 0, out.stderr)
            with open(self.ratelimit, "a") as f:
                f.write("\nreturn nil\n")
            out = subprocess.run([RAMPARTCTL, "reload"], capture_output=True, text=True, env=env,
                                 timeout=scaled(10))
            self.assertEqual(out.returncode, 1)
            self.assertIn("reload_failed", out.stderr)

    def test_broken_policy_at_start_exits_78(self):
        with open(self.ratelimit, "a") as f:
            f.write("\nlocal = 1\n")
        d = self.daemon()
        d.start(wait=False)
        self.assertEqual(d.wait(), 78)
        self.assertRegex(d.log_text(), r"policy reload halted: .*ratelimit\.lua:\d+:")
        d.cleanup()

    def test_missing_configured_policy_dir_exits_78(self):
        d = Daemon(config={"policies": {"dir": "/nonexistent/policies"}})
        d.start(wait=False)
        self.assertEqual(d.wait(), 78)
        self.assertIn("policies.dir /nonexistent/policies does not exist", d.log_text())
        d.cleanup()

    def test_check_config_and_rampartctl_policy_check(self):
        with open(os.path.join(self.policies, "backoff.lua"), "w") as f:
            f.write("return { delay_ms = 5 }\n")  # not a function
        out = subprocess.run([RAMPARTCTL, "policy", "check", self.policies], capture_output=True, text=True,
                             timeout=scaled(10))
        self.assertEqual(out.returncode, 1)
        self.assertIn("backoff.lua", out.stderr)
        d = self.daemon()
        out = subprocess.run([os.path.join(BUILD, "rampartd"), "--check-config", "-c", d.config_path],
                             capture_output=True, text=True, timeout=scaled(10), env=d.env)
        self.assertEqual(out.returncode, 78)
        self.assertIn("backoff.lua", out.stderr)
        d.cleanup()
        ok = subprocess.run([RAMPARTCTL, "policy", "check", os.path.join(ROOT, "policies")], capture_output=True,
                            text=True, timeout=scaled(10))
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn("policies OK", ok.stdout)


if __name__ == "__main__":
    unittest.main()
