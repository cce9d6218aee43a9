"""docs/plugins.md's walkthrough, as a third party would do it: install the
header and rampart-plugin.pc, build docs/examples/hello_plugin/hello.c out
of tree with pkg-config, drop hello.so into a plugin directory and load it.
Also: a build of the same plugin for another ABI is refused (exit 78), and
a missing plugin file is refused."""
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import BUILD, ROOT, Daemon, scaled

EXAMPLE = os.path.join(ROOT, "docs", "examples", "hello_plugin", "hello.c")


class ExamplePlugin(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="rampart-plugin-sdk-")
        destdir = os.path.join(cls.dir, "root")
        subprocess.run(["meson", "install", "-C", BUILD, "--destdir", destdir, "--no-rebuild", "--tags", "devel",
                        "--quiet"], check=True, capture_output=True, timeout=scaled(120))
        pcs = [os.path.join(dp, f) for dp, _, fs in os.walk(destdir) for f in fs if f == "rampart-plugin.pc"]
        assert pcs, "rampart-plugin.pc was not installed"
        prefix = subprocess.run(["pkg-config", "--variable=prefix", pcs[0]], capture_output=True, text=True,
                                check=True).stdout.strip()
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]))
        cflags = subprocess.run(["pkg-config", "--define-variable=prefix=" + destdir + prefix, "--cflags",
                                 "rampart-plugin"], capture_output=True, text=True, check=True, env=env).stdout.split()
        cls.good = os.path.join(cls.dir, "good")
        cls.stale = os.path.join(cls.dir, "stale")
        for d in (cls.good, cls.stale):
            os.makedirs(d)
        cc = ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", *cflags, EXAMPLE]
        subprocess.run(cc + ["-o", os.path.join(cls.good, "hello.so")], check=True, timeout=scaled(60))
        subprocess.run(cc + ["-DHELLO_ABI_MAJOR=99", "-o", os.path.join(cls.stale, "hello.so")], check=True,
                       timeout=scaled(60))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_built_out_of_tree_and_loaded(self):
        with Daemon(config={"plugins": {"dir": self.good, "load": ["hello"]},
                            "hello": {"greeting": "hi from the plugin"}}) as d:
            r = d.request("GET", "/hello")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json(), {"greeting": "hi from the plugin"})
            self.assertEqual(d.request("PUT", "/hello/note", body="one").json(), {"notes": 1})
            self.assertEqual(d.request("PUT", "/hello/note", body="two").json(), {"notes": 2})
            self.assertEqual(d.request("DELETE", "/hello/note").status, 405)
            loaded = d.wait_log(lambda e: e.get("msg") == "plugin loaded")
            self.assertEqual(loaded["plugin"], "hello")

    def test_plugin_config_errors_name_file_line_and_allowed_keys(self):
        d = Daemon(config={"plugins": {"dir": self.good, "load": ["hello"]}, "hello": {"greting": "typo"}})
        d.start(wait=False)
        self.assertEqual(d.wait(), 78)
        text = d.log_text()
        self.assertRegex(text, r"rampart\.yml:\d+:\d+: hello\.greting: unknown key")
        self.assertIn("allowed: greeting", text)
        d.cleanup()

    def test_other_abi_refused(self):
        d = Daemon(config={"plugins": {"dir": self.stale, "load": ["hello"]}})
        d.start(wait=False)
        self.assertEqual(d.wait(), 78)
        self.assertIn("plugin hello built for ABI 99, host has 1: rebuild", d.log_text())
        d.cleanup()

    def test_missing_plugin_refused(self):
        d = Daemon(config={"plugins": {"dir": self.good, "load": ["nosuch"]}})
        d.start(wait=False)
        self.assertEqual(d.wait(), 78)
        self.assertIn("plugin nosuch:", d.log_text())
        self.assertIn("not found", d.log_text())
        d.cleanup()

    def test_check_config_reports_plugin_problems(self):
        d = Daemon(config={"plugins": {"dir": self.stale, "load": ["hello"]}})
        out = subprocess.run([os.path.join(BUILD, "rampartd"), "--check-config", "-c", d.config_path],
                             capture_output=True, text=True, timeout=scaled(10), env=d.env)
        self.assertEqual(out.returncode, 78)
        self.assertIn("built for ABI 99", out.stderr)
        d.cleanup()


if __name__ == "__main__":
    unittest.main()
