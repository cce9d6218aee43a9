"""rampartd's command line: --version, usage errors, --check-config, exit
codes on bad configuration, environment overrides, --dev, the pid file."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import RAMPARTD, RAMPARTCTL, Daemon, run_cli, scaled


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    env.update(extra)
    return env


class VersionAndUsage(unittest.TestCase):
    def test_version(self):
        out = run_cli([RAMPARTD, "--version"])
        self.assertEqual(out.returncode, 0)
        self.assertRegex(out.stdout, r"^rampartd \d+\.\d+\.\d+\n$")

    def test_unknown_option_is_usage_error(self):
        out = run_cli([RAMPARTD, "--no-such-flag"])
        self.assertEqual(out.returncode, 2)
        self.assertIn("usage: rampartd", out.stderr)

    def test_stray_argument_is_usage_error(self):
        out = run_cli([RAMPARTD, "extra"])
        self.assertEqual(out.returncode, 2)

    def test_rampartctl_version_and_usage(self):
        self.assertEqual(run_cli([RAMPARTCTL, "--version"]).returncode, 0)
        self.assertEqual(run_cli([RAMPARTCTL]).returncode, 2)
        self.assertEqual(run_cli([RAMPARTCTL, "bogus"]).returncode, 2)

    def test_rampartctl_unreachable_node_fails(self):
        out = run_cli([RAMPARTCTL, "--addr", "127.0.0.1:1", "util", "health"], env=clean_env())
        self.assertEqual(out.returncode, 1)
        self.assertIn("127.0.0.1:1", out.stderr)


class CheckConfig(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="rampart-cfg-")
        self.path = os.path.join(self.dir, "rampart.yml")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def check(self, text, env=None):
        with open(self.path, "w") as f:
            f.write(text)
        return run_cli([RAMPARTD, "--check-config", "-c", self.path], env=clean_env(**(env or {})))

    def test_shipped_example_config_is_valid(self):
        out = run_cli([RAMPARTD, "--check-config", "-c", "etc/rampart.yml"], env=clean_env())
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("configuration OK", out.stdout)

    def test_every_problem_reported_at_once_with_position(self):
        text = ("node:\n"
                "  id: node_1\n"
                "api:\n"
                "  listn: 127.0.0.1:7700\n"        # unknown key, line 4
                "  max_body_bytes: lots\n"         # wrong type, line 5
                "  max_header_bytes: 10\n"         # out of range, line 6
                "log:\n"
                "  level: loud\n")                 # bad enum, line 8
        out = self.check(text)
        self.assertEqual(out.returncode, 78)
        err = out.stderr
        self.assertRegex(err, re.escape(self.path) + r":4:\d+: api\.listn")
        self.assertIn("listen", err)  # the allowed keys are listed
        self.assertRegex(err, re.escape(self.path) + r":5:\d+: api\.max_body_bytes")
        self.assertRegex(err, re.escape(self.path) + r":6:\d+: api\.max_header_bytes")
        self.assertRegex(err, re.escape(self.path) + r":8:\d+: log\.level")
        self.assertGreaterEqual(err.count("config error"), 4)

    def test_duplicate_key(self):
        out = self.check("api:\n  listen: 127.0.0.1:1\n  listen: 127.0.0.1:2\n")
        self.assertEqual(out.returncode, 78)
        self.assertRegex(out.stderr, r":3:\d+: api\.listen")

    def test_yaml_syntax_error(self):
        out = self.check("api:\n  listen: [unclosed\n")
        self.assertEqual(out.returncode, 78)
        self.assertIn(self.path, out.stderr)

    def test_missing_file(self):
        out = run_cli([RAMPARTD, "--check-config", "-c", os.path.join(self.dir, "nope.yml")], env=clean_env())
        self.assertEqual(out.returncode, 78)
        self.assertIn("nope.yml", out.stderr)

    def test_bad_environment_override(self):
        out = self.check("", env={"RAMPART_API_MAX_BODY_BYTES": "-5"})
        self.assertEqual(out.returncode, 78)
        self.assertIn("RAMPART_API_MAX_BODY_BYTES", out.stderr)

    def test_secret_never_echoed(self):
        out = self.check("auth:\n  bootstrap_token: [s3cr3t-value]\n")
        self.assertEqual(out.returncode, 78)
        self.assertNotIn("s3cr3t-value", out.stderr + out.stdout)

    def test_daemon_refuses_to_start_on_bad_config(self):
        with open(self.path, "w") as f:
            f.write("api:\n  max_connections: 0\n")
        proc = subprocess.run([RAMPARTD, "-c", self.path], capture_output=True, text=True,
                              timeout=scaled(10), env=clean_env())
        self.assertEqual(proc.returncode, 78)
        self.assertIn("api.max_connections", proc.stderr)


class EnvironmentAndDev(unittest.TestCase):
    def test_environment_overrides_file(self):
        d = Daemon(config={"api": {"listen": "127.0.0.1:1"}},
                   env={"RAMPART_API_LISTEN": "127.0.0.1:0", "RAMPART_NODE_ID": "edge_7",
                        "RAMPART_LOG_FORMAT": "json"})
        with d:
            self.assertEqual(d.request("GET", "/health").status, 200)
            started = d.wait_log(lambda e: e.get("msg") == "rampartd started")
            self.assertEqual(started["node_id"], "edge_7")

    def test_data_dir_override_is_created(self):
        d = Daemon()
        target = os.path.join(d.dir, "elsewhere", "data")
        d.env["RAMPART_NODE_DATA_DIR"] = target
        with d:
            self.assertTrue(os.path.isdir(target))

    def test_ipv6_listen(self):
        with Daemon(env={"RAMPART_API_LISTEN": "[::1]:0"}) as d:
            self.assertTrue(d.address.startswith("[::1]:"))
            self.assertEqual(d.request("GET", "/health").status, 200)

    def test_listen_conflict_is_runtime_failure(self):
        with Daemon() as first:
            second = Daemon(env={"RAMPART_API_LISTEN": first.address})
            second.start(wait=False)
            self.assertEqual(second.wait(), 1)
            self.assertIn("cannot listen", second.log_text())
            second.cleanup()

    def test_dev_mode_loopback_only(self):
        d = Daemon(args=["--dev"], env={"RAMPART_API_LISTEN": "0.0.0.0:0"}, config_text="")
        d.start(wait=False)
        self.assertEqual(d.wait(), 78)
        self.assertIn("loopback", d.log_text())
        d.cleanup()

    def test_dev_mode_uses_var_dev(self):
        d = Daemon(args=["--dev"], env={"RAMPART_API_LISTEN": "127.0.0.1:0"})
        os.remove(d.config_path)  # --dev needs no config file
        with d:
            self.assertTrue(os.path.isdir(os.path.join(d.dir, "var", "dev")))
            self.assertEqual(d.request("GET", "/ready").status, 200)

    def test_pid_file_written_and_removed(self):
        d = Daemon()
        pid_path = os.path.join(d.dir, "rampartd.pid")
        d.env["RAMPART_NODE_PID_FILE"] = pid_path
        d.start()
        with open(pid_path) as f:
            self.assertEqual(int(f.read().strip()), d.proc.pid)
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(pid_path))
        d.cleanup()

    def test_open_files_limit_raised(self):
        # Start with a soft limit below the hard one; the daemon lifts it.
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard <= 256:
            self.skipTest("hard open-files limit too low to lower the soft one")
        d = Daemon()
        d.log_file = open(d.log_path, "ab")
        d.proc = subprocess.Popen([RAMPARTD, "-c", d.config_path], cwd=d.dir, env=d.env,
                                  stdout=d.log_file, stderr=subprocess.STDOUT,
                                  preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)))
        d.wait_started()
        raised = d.wait_log(lambda e: e.get("msg") == "raised open files limit")
        self.assertEqual(raised["from"], 256)
        with open(f"/proc/{d.proc.pid}/limits") as f:
            line = next(l for l in f if l.startswith("Max open files"))
        self.assertEqual(int(line.split()[3]), hard)
        d.cleanup()


if __name__ == "__main__":
    unittest.main()
