"""The supervisor as an operator meets it (issue 7): a plugin's background
work (the flaky_worker test plugin, whose rounds fail on demand) is
restarted under policies/recovery.lua — at once, then with backoff, then its
circuit breaker opens; `rampartctl breaker list` shows it, `rampartctl
breaker reset` (admin) closes it, a half-open trial after the cool-down
closes it once the work heals, and the metrics count every step. The
recovery decision for a failing plugin (disable, or fail closed) and a
policy edit + SIGHUP change the behaviour at once."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from cluster_util import AUTH as CLUSTER_AUTH
from cluster_util import ClusterCase
from test_tls import free_port
from harness import BUILD, RAMPARTCTL, ROOT, Daemon, run_cli, scaled

TASK = "flaky_worker.work"
ADMIN = "admin-token-0123456789abcdef"


def metric(text, name, labels=""):
    m = re.search(r"^" + re.escape(name + labels) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def poll(what, fn, timeout=10):
    """fn() until it returns something true; its last value on timeout fails."""
    deadline = time.monotonic() + scaled(timeout)
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class Supervisor(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="rampart-supervisor-")
        self.plugins = os.path.join(self.work, "plugins")
        os.mkdir(self.plugins)
        os.symlink(os.path.join(BUILD, "tests", "plugins", "flaky_worker.so"),
                   os.path.join(self.plugins, "flaky_worker.so"))
        os.symlink(os.path.join(BUILD, "plugins", "metrics.so"), os.path.join(self.plugins, "metrics.so"))
        self.policies = os.path.join(self.work, "policies")
        shutil.copytree(os.path.join(ROOT, "policies"), self.policies)
        self.recovery = os.path.join(self.policies, "recovery.lua")
        with open(self.recovery) as f:
            self.original = f.read()

    def tearDown(self):
        shutil.rmtree(self.work, ignore_errors=True)

    def edit_recovery(self, task_line=None, fail_closed=False, broken=False):
        """recovery.lua with a row for the flaky task and/or the plugin
        failing closed; `broken` adds a syntax error."""
        text = self.original
        if task_line:
            text = text.replace("  consensus = {", f'  ["{TASK}"] = {task_line},\n  consensus = {{', 1)
        if fail_closed:
            text = text.replace("local FAIL_CLOSED_PLUGINS = {}", "local FAIL_CLOSED_PLUGINS = { flaky_worker = true }")
        if broken:
            text = text.replace("function M.cooldown_ms(", "function M.cooldown_ms(((", 1)
        with open(self.recovery, "w") as f:
            f.write(text)

    def daemon(self):
        return Daemon(config={"policies": {"dir": self.policies},
                              "plugins": {"dir": self.plugins, "load": ["flaky_worker", "metrics"]},
                              "auth": {"enabled": True, "bootstrap_token": ADMIN}})

    # -- helpers ------------------------------------------------------------
    def auth(self, token=ADMIN):
        return {"Authorization": "Bearer " + token}

    def read_token(self, d):
        r = d.request("PUT", "/v1/acl/token", body=json.dumps({"Role": "read"}), headers=self.auth())
        self.assertEqual(r.status, 200, r.body)
        return r.json()["SecretID"]

    def breaker(self, d, token=ADMIN):
        r = d.request("GET", "/v1/agent/breakers", headers=self.auth(token))
        self.assertEqual(r.status, 200, r.body)
        rows = [t for t in r.json() if t["task"] == TASK]
        self.assertEqual(len(rows), 1, r.body)
        return rows[0]

    def stats(self, d):
        return d.request("GET", "/flaky/stats").json()

    def inject(self, d, how):
        self.assertEqual(d.request("POST", "/flaky/fail", body=how).status, 200)

    def metrics(self, d):
        return d.request("GET", "/metrics", headers=self.auth()).body.decode()

    def ctl(self, d, *args, token=ADMIN):
        return run_cli([RAMPARTCTL, "--addr", d.address, "--token", token] + list(args))

    def wait_open(self, d):
        return poll("the breaker to open", lambda: (lambda b: b if b["breaker"] == "open" else None)(self.breaker(d)))

    def wait_running(self, d):
        poll("the work to run again", lambda: (lambda b: b["state"] == "running" and b["breaker"] == "closed")(
            self.breaker(d)) and self.stats(d)["running"] == 1)

    # -- tests ----------------------------------------------------------------
    def test_restarts_then_breaker_list_reset_and_metrics(self):
        # A long cool-down: only an operator's reset brings the work back.
        self.edit_recovery(task_line="{ immediate_max = 1, breaker_at = 5, window_s = 60, cooldown_s = 3600 }")
        with self.daemon() as d:
            reader = self.read_token(d)
            poll("rounds of work", lambda: self.stats(d)["rounds_ok"] > 0)
            self.assertEqual(self.stats(d)["late_register_refused"], 1)
            d.wait_log(lambda e: e.get("msg") == "plugin task refused" and e.get("task") == "bad name")
            b = self.breaker(d, reader)
            self.assertEqual((b["state"], b["breaker"], b["restarts"]), ("running", "closed", 0))

            # Every round and start fails: immediate, backoff 100/200/400 ms
            # (±25 %), and the 5th failure in 60 s opens the breaker.
            self.inject(d, "forever")
            b = self.wait_open(d)
            self.assertEqual((b["state"], b["restarts"], b["failures_in_window"], b["times_opened"]),
                             ("stopped", 4, 5, 1), b)
            self.assertEqual(b["last_action"], "circuit_breaker")
            self.assertEqual(b["last_error"], "start returned -5")
            self.assertGreater(b["retry_in_ms"], 3_500_000)
            starts = self.stats(d)["starts"]
            self.assertEqual(starts, 5)
            time.sleep(scaled(0.5))
            self.assertEqual(self.stats(d)["starts"], starts, "an open breaker restarts nothing")

            m = self.metrics(d)
            self.assertEqual(metric(m, "rampart_task_restart_total", f'{{task="{TASK}"}}'), 4)
            self.assertEqual(metric(m, "rampart_recovery_actions_total", '{action="immediate",result="failure"}'), 1)
            self.assertEqual(metric(m, "rampart_recovery_actions_total", '{action="backoff",result="failure"}'), 3)
            self.assertEqual(metric(m, "rampart_backoff_duration_seconds_count"), 3)
            self.assertGreaterEqual(metric(m, "rampart_backoff_duration_seconds_sum"), 0.075 + 0.15 + 0.3 - 0.001)
            self.assertLessEqual(metric(m, "rampart_backoff_duration_seconds_sum"), 0.125 + 0.25 + 0.5 + 0.001)
            self.assertEqual(metric(m, "rampart_task_breaker_open", f'{{task="{TASK}"}}'), 1)
            self.assertEqual(metric(m, "rampart_recovery_decisions_total",
                                    '{hook="on_plugin_failure",decision="disable"}'), 1)
            # Disabled, not failed closed: the node keeps serving.
            self.assertEqual(d.request("PUT", "/v1/kv/still", body="up", headers=self.auth()).status, 200)
            d.wait_log(lambda e: e.get("msg", "").startswith("plugin task keeps failing: disabled"))

            # The operator's view: a table, and the JSON.
            r = self.ctl(d, "breaker", "list", token=reader)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"(?m)^TASK\s+STATE\s+BREAKER\s+RESTARTS")
            self.assertRegex(r.stdout, rf"(?m)^{re.escape(TASK)}\s+stopped\s+open\s+4\s+5\s+1\s+\d+ms\s+start returned -5$")
            r = self.ctl(d, "--json", "breaker", "list", token=reader)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual([t["breaker"] for t in json.loads(r.stdout) if t["task"] == TASK], ["open"])

            # Resetting needs an admin token; unknown tasks and bad usage fail.
            r = self.ctl(d, "breaker", "reset", TASK, token=reader)
            self.assertEqual(r.returncode, 1)
            self.assertIn("HTTP 403", r.stderr)
            r = self.ctl(d, "breaker", "reset", "no.such_task")
            self.assertEqual(r.returncode, 1)
            self.assertIn('no supervised task is named "no.such_task"', r.stderr)
            self.assertEqual(self.ctl(d, "breaker", "open", TASK).returncode, 2)
            self.assertEqual(d.request("POST", "/v1/agent/breakers/" + TASK, headers=self.auth()).status, 404)

            # Healed and reset: running again at once, breaker closed.
            self.inject(d, "0")
            r = self.ctl(d, "breaker", "reset", TASK)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f"{TASK}: breaker reset; task running, breaker closed", r.stdout)
            self.wait_running(d)
            poll("rounds after the reset", lambda: self.stats(d)["rounds_ok"] > 0)
            m = self.metrics(d)
            self.assertEqual(metric(m, "rampart_task_breaker_open", f'{{task="{TASK}"}}'), 0)
            self.assertEqual(metric(m, "rampart_task_restart_total", f'{{task="{TASK}"}}'), 5)

    def test_policy_edit_and_sighup_then_half_open_trial_closes(self):
        with self.daemon() as d:
            poll("rounds of work", lambda: self.stats(d)["rounds_ok"] > 0)
            # A tighter policy for this task, at once for new work: the 2nd
            # failure opens the breaker, for a 1 s cool-down.
            self.edit_recovery(task_line="{ immediate_max = 1, breaker_at = 2, window_s = 60, cooldown_s = 1 }")
            before = len(d.log_entries())
            d.signal(signal.SIGHUP)
            d.wait_log(lambda e: e.get("msg") == "policies reloaded" and d.log_entries().index(e) >= before)
            self.inject(d, "2")  # one round and one start fail, then the work heals
            poll("the breaker to open", lambda: self.breaker(d)["times_opened"] == 1)
            # After the cool-down the trial restart works and its first good
            # round closes the breaker.
            self.wait_running(d)
            b = self.breaker(d)
            self.assertEqual((b["restarts"], b["times_opened"], b["failures"]), (2, 1, 2), b)
            m = self.metrics(d)
            self.assertEqual(metric(m, "rampart_recovery_actions_total", '{action="immediate",result="failure"}'), 1)
            self.assertEqual(metric(m, "rampart_recovery_actions_total",
                                    '{action="circuit_breaker",result="success"}'), 1)
            self.assertIsNone(metric(m, "rampart_backoff_duration_seconds_count") or None)
            d.wait_log(lambda e: e.get("msg") == "supervised task recovered: circuit breaker closed")

            # A broken edit is refused: the last good policy keeps deciding.
            self.edit_recovery(task_line="{ immediate_max = 1, breaker_at = 2, window_s = 60, cooldown_s = 1 }",
                               broken=True)
            before = len(d.log_entries())
            d.signal(signal.SIGHUP)
            d.wait_log(lambda e: "policy reload halted" in e.get("msg", "") and d.log_entries().index(e) >= before)
            self.inject(d, "2")
            poll("the breaker to open again", lambda: self.breaker(d)["times_opened"] == 2)
            self.wait_running(d)

    def test_plugin_failure_fails_closed_when_the_policy_says_so(self):
        self.edit_recovery(task_line="{ immediate_max = 1, breaker_at = 2, window_s = 60, cooldown_s = 1 }",
                           fail_closed=True)
        # The example in docs/policies.md is this very edit.
        with open(os.path.join(ROOT, "docs", "policies.md")) as f:
            doc = f.read().split("<!-- recovery-example:begin -->", 1)[1].split("<!-- recovery-example:end -->", 1)[0]
        with open(self.recovery) as f:
            edited = f.read()
        for line in doc.splitlines():
            if not line.startswith("```"):
                self.assertIn(line, edited)
        with self.daemon() as d:
            poll("ready", lambda: d.request("GET", "/ready").status == 200)
            self.assertEqual(d.request("PUT", "/v1/kv/k", body="v", headers=self.auth()).status, 200)
            self.inject(d, "forever")
            self.wait_open(d)
            r = d.request("GET", "/v1/kv/k", headers=self.auth())
            self.assertEqual(r.status, 503, r.body)
            self.assertEqual(r.json()["code"], "plugin_failed")
            self.assertIn(TASK, r.json()["error"])
            self.assertEqual(r.headers.get("retry-after"), "10")
            self.assertEqual(d.request("GET", "/ready").status, 503)
            self.assertEqual(d.request("GET", "/health").status, 200)
            self.assertEqual(metric(self.metrics(d), "rampart_recovery_decisions_total",
                                    '{hook="on_plugin_failure",decision="fail_closed"}'), 1)
            # The operator's routes still answer; a reset of healed work opens
            # the node again.
            self.inject(d, "0")
            self.assertEqual(self.ctl(d, "breaker", "reset", TASK).returncode, 0)
            self.wait_running(d)
            self.assertEqual(d.request("GET", "/v1/kv/k", headers=self.auth()).status, 200)
            self.assertEqual(d.request("GET", "/ready").status, 200)

    def test_disk_full_decision_follows_the_policy(self):
        """recovery.on_disk_full, asked before each leadership transfer the
        disk watchdog wants: the default hands over (a lone voter has nobody
        to hand to); after an edit + SIGHUP the next retry stays."""
        config = {"policies": {"dir": self.policies},
                  "plugins": {"dir": self.plugins, "load": ["metrics"]},
                  # Above any free space here: the node is low at once.
                  "node": {"min_free_bytes": 1 << 40}}
        with Daemon(config=config) as d:
            decisions = lambda how: metric(d.request("GET", "/metrics").body.decode(),
                                           "rampart_recovery_decisions_total",
                                           f'{{hook="on_disk_full",decision="{how}"}}') or 0
            # Asked as soon as the node leads while low (then every 5 s).
            poll("a transfer decision", lambda: decisions("transfer") >= 1, timeout=15)
            # No plugin registered work on this node: the core's snapshotter
            # and TTL-check ticker are its only tasks, and neither failed.
            r = run_cli([RAMPARTCTL, "--addr", d.address, "breaker", "list"])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual([line.split()[:4] for line in r.stdout.splitlines()[1:]],
                             [["snapshots", "running", "closed", "0"], ["ttl_checks", "running", "closed", "0"]],
                             r.stdout)
            with open(self.recovery, "w") as f:
                f.write(self.original.replace('return "transfer"', 'return "stay"', 1))
            d.signal(signal.SIGHUP)
            d.wait_log(lambda e: e.get("msg") == "policies reloaded")
            # The guard retries a transfer every 5 s while low.
            poll("a stay decision", lambda: decisions("stay") >= 1, timeout=15)
            self.assertEqual(d.request("PUT", "/v1/kv/k", body="v").status, 507)

    def test_doc_examples(self):
        """Every "$ command" between docs/operations.md's breaker-examples
        markers, run against a node whose flaky work has opened its breaker,
        prints what the doc says."""
        with open(os.path.join(ROOT, "docs", "operations.md")) as f:
            text = f.read()
        block = text.split("<!-- breaker-examples:begin -->", 1)[1].split("<!-- breaker-examples:end -->", 1)[0]
        steps = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append([line[2:], []])
            elif steps and not line.startswith("```"):
                steps[-1][1].append(line)
        self.assertGreaterEqual(len(steps), 6)
        self.edit_recovery(task_line="{ immediate_max = 1, breaker_at = 5, window_s = 60, cooldown_s = 3600 }")
        with self.daemon() as d:
            poll("rounds of work", lambda: self.stats(d)["rounds_ok"] > 0)
            self.inject(d, "forever")
            self.wait_open(d)
            env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
            env["PATH"] = BUILD + os.pathsep + env.get("PATH", "")
            env["AUTH"] = f"Authorization: Bearer {ADMIN}"
            env["RAMPART_HTTP_ADDR"] = d.address
            env["RAMPART_HTTP_TOKEN"] = ADMIN
            for command, expected in steps:
                command = command.replace("localhost:7700", d.address)
                out = subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, capture_output=True,
                                     text=True, timeout=scaled(20))
                self.assertEqual(out.stdout.rstrip("\n"), "\n".join(expected),
                                 f"docs/operations.md step: {command}\nstderr: {out.stderr}")


class QuorumLoss(ClusterCase):
    """recovery.on_quorum_loss on a two-node cluster that lost a node: a read
    that needs the leader is refused (the default) until an edit + SIGHUP
    says serve_stale; then it is answered from the survivor's own state,
    marked stale. Writes stay refused either way."""

    def test_reads_without_a_leader_follow_the_policy(self):
        policies = tempfile.mkdtemp(prefix="rampart-policies-")
        self.addCleanup(shutil.rmtree, policies, True)
        shutil.copytree(os.path.join(ROOT, "policies"), policies, dirs_exist_ok=True)
        nodes = self.start_cluster(n=2, extra={"policies": {"dir": policies}})
        self.wait_ready(nodes)
        self.put_on_leader(nodes, "k", b"v")
        for d in nodes:
            self.wait_value(d, "k", b"v")
        leader = self.leader_of(nodes)
        survivor = next(d for d in nodes if d is not leader)
        leader.proc.kill()
        leader.proc.wait()
        self.eventually(lambda: self.status(survivor)["leader"] is None, timeout=20,
                        what="the survivor to know no leader")
        r = survivor.request("GET", "/v1/kv/k?raw", headers=CLUSTER_AUTH)
        self.assertEqual(r.status, 503, r.body)
        self.assertEqual(r.json()["code"], "no_leader")

        with open(os.path.join(policies, "recovery.lua")) as f:
            text = f.read()
        with open(os.path.join(policies, "recovery.lua"), "w") as f:
            f.write(text.replace('return "refuse"', 'return "serve_stale"', 1))
        before = len(survivor.log_entries())
        survivor.signal(signal.SIGHUP)
        survivor.wait_log(lambda e: e.get("msg") == "policies reloaded" and survivor.log_entries().index(e) >= before)
        r = survivor.request("GET", "/v1/kv/k?raw", headers=CLUSTER_AUTH)
        self.assertEqual((r.status, r.body), (200, b"v"), r.body)
        self.assertEqual(r.headers.get("x-rampart-stale"), "quorum_lost")
        self.assertEqual(survivor.request("PUT", "/v1/kv/k", body=b"w", headers=CLUSTER_AUTH).status, 503)
        m = self.metrics(survivor)
        self.assertGreaterEqual(metric(m, "rampart_recovery_decisions_total",
                                       '{hook="on_quorum_loss",decision="refuse"}'), 1)
        self.assertEqual(metric(m, "rampart_recovery_decisions_total",
                                '{hook="on_quorum_loss",decision="serve_stale"}'), 1)


class PinMismatch(ClusterCase):
    """recovery.on_pin_mismatch: node_1 pins a wrong certificate for node_2.
    Its first Raft dial to node_2 fails the pin, and node_1 leaves node_2
    alone for the policy's hold (60 s) instead of failing the same dial
    again; an edit + SIGHUP (hold 0) lets the engine redial at once."""

    def test_a_peer_failing_its_pin_is_left_alone_for_the_hold(self):
        policies = tempfile.mkdtemp(prefix="rampart-policies-")
        self.addCleanup(shutil.rmtree, policies, True)
        shutil.copytree(os.path.join(ROOT, "policies"), policies, dirs_exist_ok=True)
        ports = [free_port(), free_port()]
        wrong = "sha256:" + "ab12" + "0" * 56 + "9f0e"
        nodes = []
        for i in (1, 2):
            j = 3 - i
            nodes.append(self.daemon(peers=self.peers_yaml(i, peers=[(f"node_{j}", f"127.0.0.1:{ports[j - 1]}")]),
                                     node_id=f"node_{i}",
                                     pins={"peers": {"node_2": wrong}, "report_only": False} if i == 1 else None,
                                     extra={"peer": {"listen": f"127.0.0.1:{ports[i - 1]}"},
                                            "policies": {"dir": policies}}))
        n1, _ = nodes
        for d in nodes:
            d.start()

        # node_1's own dials that failed the pin (node_2's dials to node_1
        # are refused on node_1's side too, but those are not node_1's to hold).
        def violations():
            return sum(1 for e in n1.log_entries() if e.get("msg") == "peer dial failed"
                       and e.get("expected_peer") == "node_2" and e.get("reason") == "pin_mismatch")

        def decisions(how):
            return metric(self.metrics(n1), "rampart_recovery_decisions_total",
                          f'{{hook="on_pin_mismatch",decision="{how}"}}') or 0

        self.eventually(lambda: violations() >= 1, timeout=15, what="a pin violation")
        n1.wait_log(lambda e: e.get("msg", "").startswith("raft: the peer's certificate failed its pin")
                    and e.get("peer") == "node_2" and e.get("hold_s") == 60)
        time.sleep(scaled(2))
        self.assertEqual(violations(), 1, "held: no second dial")
        self.assertGreaterEqual(metric(self.metrics(n1), "rampart_pinning_violations_total", '{peer="node_2"}'), 1)
        self.assertEqual(decisions("hold"), 1)

        with open(os.path.join(policies, "recovery.lua")) as f:
            text = f.read()
        with open(os.path.join(policies, "recovery.lua"), "w") as f:
            f.write(text.replace("return 60\nend", "return 0\nend", 1))
        before = len(n1.log_entries())
        n1.signal(signal.SIGHUP)
        n1.wait_log(lambda e: e.get("msg") == "policies reloaded" and n1.log_entries().index(e) >= before)
        self.eventually(lambda: violations() >= 3, timeout=15, what="the engine dialling again")
        self.assertGreaterEqual(decisions("redial"), 1)


if __name__ == "__main__":
    unittest.main()
