"""The etcd comparisons of `make bench` start: their shared module (bench/kvlib.py) imports and
the command line parses. Benchmarks never run here (they take minutes and need a quiet machine);
this only catches a script broken by a change to the code it shares."""
import os
import subprocess
import sys
import unittest

from harness import scaled

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench")


def run_script(name, *args):
    return subprocess.run([sys.executable, os.path.join(BENCH, name), *args], capture_output=True, text=True,
                          timeout=scaled(30))


class BenchScriptsStart(unittest.TestCase):
    def test_help(self):
        for name in ("kv_vs_etcd.py", "cluster_vs_etcd.py"):
            p = run_script(name, "--help")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("--datadir", p.stdout)

    def test_cluster_script_refuses_an_unknown_phase(self):
        p = run_script("cluster_vs_etcd.py", "--phases", "throughput,nonsense")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown ['nonsense']", p.stderr)


if __name__ == "__main__":
    unittest.main()
