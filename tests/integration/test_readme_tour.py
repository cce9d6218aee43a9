"""The README's tour, run as written against a dev node started as
`make run` starts it (rampartd --dev from the repository layout).

Each "$ command" line runs in bash from a scratch copy of the repository
layout; the lines after it are its expected output. localhost:7700 is
replaced by the dev node's actual address so the test never collides with
a node a developer left running.
"""
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import BUILD, ROOT, free_port, scaled


def tour_steps():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    block = text.split("<!-- tour:begin -->", 1)[1].split("<!-- tour:end -->", 1)[0]
    lines = [l for l in block.splitlines() if not l.startswith("```")]
    steps = []
    for line in lines:
        if line.startswith("$ "):
            steps.append([line[2:], []])
        elif steps:
            steps[-1][1].append(line)
    return steps


class ReadmeTour(unittest.TestCase):
    def test_tour(self):
        steps = tour_steps()
        self.assertGreaterEqual(len(steps), 8)
        work = tempfile.mkdtemp(prefix="rampart-tour-")
        daemon = None
        try:
            os.symlink(BUILD, os.path.join(work, "build"))
            os.symlink(os.path.join(ROOT, "policies"), os.path.join(work, "policies"))
            shutil.copytree(os.path.join(ROOT, "etc"), os.path.join(work, "etc"))
            port = free_port()
            addr = f"127.0.0.1:{port}"
            env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
            env.update(RAMPART_API_LISTEN=addr, RAMPART_HTTP_ADDR=addr)
            log = open(os.path.join(work, "dev.log"), "wb")
            daemon = subprocess.Popen([os.path.join(BUILD, "rampartd"), "--dev"], cwd=work, env=env,
                                      stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + scaled(10)
            while not os.path.exists(os.path.join(work, "var/dev/rampartd.pid")):
                self.assertIsNone(daemon.poll(), "dev node exited")
                self.assertLess(time.monotonic(), deadline, "dev node did not start")
                time.sleep(0.05)
            for command, expected in steps:
                command = command.replace("localhost:7700", addr)
                out = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=work, env=env,
                                     capture_output=True, text=True, timeout=scaled(20))
                want = "\n".join(expected).replace("127.0.0.1:7700", addr)
                self.assertEqual(out.stdout.rstrip("\n").replace("\r", ""), want,
                                 f"README tour step: {command}\nstderr: {out.stderr}")
            self.assertEqual(daemon.wait(timeout=scaled(15)), 0)
            log.close()
            with open(os.path.join(work, "dev.log")) as f:
                text = f.read()
            self.assertIn("configuration reloaded", text)
        finally:
            if daemon is not None and daemon.poll() is None:
                daemon.kill()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
