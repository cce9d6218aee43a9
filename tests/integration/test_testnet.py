"""The local testnet (issue 6): docs/cluster.md's "Local testnet" commands,
run as written against a temporary directory, so a developer's running
testnet under var/testnet is never touched. `make testnet` and `make
testnet-stop` are run as the Makefile runs them (scripts/testnet.sh start |
stop) with the build under test (RAMPART_BUILD) instead of building.

Checks: the env file has every variable the issue names, the three nodes
answer and hold the key written at start, a second start says the testnet
is running and changes nothing, scripts/testnet-rounds.sh passes its four
pinned rounds and leaves its artifacts, and the stop ends every node. The
testnet is always stopped (finally), whatever fails."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import BUILD, ROOT, scaled


def doc_commands():
    """The commands of docs/cluster.md's testnet block, in order."""
    with open(os.path.join(ROOT, "docs", "cluster.md")) as f:
        text = f.read()
    block = text.split("<!-- testnet:begin -->", 1)[1].split("<!-- testnet:end -->", 1)[0]
    return [line[2:].split("  #", 1)[0].strip() for line in block.splitlines() if line.startswith("$ ")]


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, v = line.split("=", 1)
                env[k] = v
    return env


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"rampartd" in f.read()
    except OSError:
        return False


class LocalTestnet(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="rampart-testnet-")
        self.dir = os.path.join(self.work, "testnet")
        self.artifacts = os.path.join(self.work, "artifacts")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
        self.env.update({"RAMPART_BUILD": BUILD, "RAMPART_TESTNET_DIR": self.dir,
                         "RAMPART_TESTNET_ARTIFACTS": self.artifacts, "RAMPART_SLOW_FACTOR": str(scaled(1)),
                         # A healthy node exits well within its 10 s drain deadline.
                         "RAMPART_TESTNET_STOP_TIMEOUT": str(int(scaled(11)))})

    def tearDown(self):
        shutil.rmtree(self.work, ignore_errors=True)

    def translate(self, command):
        """A documented command as the test runs it: make targets as the
        Makefile runs them, paths into the temporary testnet."""
        with open(os.path.join(ROOT, "Makefile")) as f:
            makefile = f.read()
        self.assertRegex(makefile, r"(?m)^testnet: build\n\t@?RAMPART_BUILD=\$\(BUILD\) scripts/testnet\.sh start$")
        self.assertRegex(makefile, r"(?m)^testnet-stop:\n\t@?scripts/testnet\.sh stop$")
        command = {"make testnet": "scripts/testnet.sh start", "make testnet-stop": "scripts/testnet.sh stop"}.get(
            command, command)
        command = command.replace("var/testnet", self.dir).replace("artifacts/testnet", self.artifacts)
        return re.sub(r"(^|\s)build/", lambda m: m.group(1) + BUILD + "/", command)

    def run_doc(self, command, timeout):
        script = f"set -euo pipefail\nif [ -f {self.dir}/env ]; then . {self.dir}/env; fi\n{self.translate(command)}\n"
        out = subprocess.run(["bash", "-c", script], cwd=ROOT, env=self.env, capture_output=True, text=True,
                             timeout=scaled(timeout))
        self.assertEqual(out.returncode, 0, f"`{command}` failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
                                            f"\n{self.node_logs()}")
        return out.stdout

    def node_logs(self):
        text = ""
        for i in (1, 2, 3):
            path = os.path.join(self.dir, f"node_{i}", "rampartd.log")
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text += f"---- node_{i}\n" + "".join(f.readlines()[-20:])
        return text

    def get(self, addr, path, token):
        req = urllib.request.Request(f"http://{addr}{path}", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()

    def stop_everything(self):
        env_path = os.path.join(self.dir, "env")
        if not os.path.exists(env_path):
            return
        subprocess.run(["scripts/testnet.sh", "stop"], cwd=ROOT, env=self.env, capture_output=True,
                       timeout=scaled(60))
        for k, v in read_env(env_path).items():  # belt and braces: nothing may outlive the test
            if re.fullmatch(r"NODE\d_PID", k) and v and alive(int(v)):
                os.kill(int(v), signal.SIGKILL)

    def test_testnet_and_rounds(self):
        commands = doc_commands()
        self.assertEqual(commands[0], "make testnet")
        self.assertEqual(commands[-1], "make testnet-stop")
        self.assertIn("scripts/testnet-rounds.sh", commands)
        started = time.monotonic()
        try:
            for command in commands:
                if command == "scripts/testnet-rounds.sh":
                    out = self.run_doc(command, 150)
                    self.check_rounds(out)
                elif command == "make testnet-stop":
                    self.check_running_then_stop(command)
                else:
                    out = self.run_doc(command, 60)
                    if command == "make testnet":
                        self.check_started(out)
                    elif "rampartctl" in command:
                        self.assertIn("ready", out)
                    elif command.startswith("curl"):
                        self.assertRegex(out, r"^hello-\d+$")
        finally:
            self.stop_everything()
        print(f"testnet: {time.monotonic() - started:.1f} s", flush=True)

    def check_started(self, out):
        env = read_env(os.path.join(self.dir, "env"))
        for i in (1, 2, 3):
            self.assertRegex(env[f"NODE{i}_API"], r"^127\.0\.0\.1:\d+$")
            self.assertRegex(env[f"NODE{i}_PEER"], r"^127\.0\.0\.1:\d+$")
            self.assertTrue(alive(int(env[f"NODE{i}_PID"])), f"node_{i} is not running")
        self.assertEqual(len({env[f"NODE{i}_{k}"] for i in (1, 2, 3) for k in ("API", "PEER")}), 6)
        self.assertTrue(os.path.isfile(os.path.join(env["CERT_DIR"], "ca.pem")))
        self.assertGreaterEqual(len(env["TOKEN"]), 32)
        self.assertEqual(os.stat(os.path.join(self.dir, "env")).st_mode & 0o077, 0)
        for i in (1, 2, 3):
            node = os.path.join(self.dir, f"node_{i}")
            with open(os.path.join(node, "rampartd.pid")) as f:
                self.assertEqual(f.read().strip(), env[f"NODE{i}_PID"])
            with open(os.path.join(node, "pinned_certs.json")) as f:
                pins = f.read()
            self.assertEqual(len(re.findall(r"spki-sha256:[0-9a-f]{64}", pins)), 2)
            with open(os.path.join(node, "peers.yml")) as f:
                self.assertIn("allow_insecure_peers: false", f.read())
            status, body = self.get(env[f"NODE{i}_API"], "/v1/kv/testnet/hello?raw&stale", env["TOKEN"])
            self.assertEqual(status, 200)
            self.assertRegex(body, rb"^hello-\d+$")
        self.assertIn("rampartctl", out)
        self.assertRegex(out, r"leader: node_\d|node_\d took the write")
        # A second start finds it running and changes nothing.
        again = self.run_doc("make testnet", 30)
        self.assertIn("already running", again)
        self.assertEqual(read_env(os.path.join(self.dir, "env")), env)

    def check_rounds(self, out):
        for r in (1, 2, 3, 4):
            self.assertRegex(out, rf"round {r}: PASS")
        with open(os.path.join(self.artifacts, "summary.txt")) as f:
            self.assertIn("result: PASS", f.read())
        for r in (1, 2, 3, 4):
            snap = os.path.join(self.artifacts, f"round_{r}", "node_1.after.prom")
            with open(snap) as f:
                self.assertIn("rampart_tls_handshakes_total", f.read())
        for i in (1, 2, 3):
            self.assertTrue(os.path.getsize(os.path.join(self.artifacts, "logs", f"node_{i}.log")) > 0)
        violations = [n for n in os.listdir(os.path.join(self.artifacts, "round_3")) if n.endswith("pin_violations.log")]
        self.assertEqual(len(violations), 1)

    def check_running_then_stop(self, command):
        env = read_env(os.path.join(self.dir, "env"))
        pids = [int(env[f"NODE{i}_PID"]) for i in (1, 2, 3)]
        for i, pid in enumerate(pids, 1):
            self.assertTrue(alive(pid), f"node_{i} died during the rounds")
        out = self.run_doc(command, 60)
        self.assertEqual(len(re.findall(r"(?m)^testnet: node_\d: pid \d+ (stopped|did not stop)", out)), 3, out)
        self.assertIn("testnet: stopped", out)
        # Every node drains and exits on SIGTERM (a node with peers once hung here).
        self.assertNotIn("did not stop", out)
        for pid in pids:
            self.assertFalse(alive(pid))


if __name__ == "__main__":
    unittest.main()
