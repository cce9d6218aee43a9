"""docs/tls.md's rotation playbook, run step by step as written against
two nodes: node_1 pins node_2 by key, node_2 gets a new key and
certificate. Between the steps node_1 must still reach node_2 (a new
mutual-TLS dial through the peer_echo test plugin), and a peer connection
opened before the rotation must keep working through node_2's reload."""
import json
import os
import subprocess
import time
import unittest

from harness import BUILD, ROOT, scaled
from test_tls import TlsCase
from tls_util import spki_sha256


def playbook_steps():
    """[(title, [command, ...])] from the block between the rotation markers."""
    with open(os.path.join(ROOT, "docs", "tls.md")) as f:
        text = f.read()
    block = text.split("<!-- rotation:begin -->", 1)[1].split("<!-- rotation:end -->", 1)[0]
    steps = []
    for line in block.splitlines():
        if line.startswith("# "):
            steps.append((line[2:], []))
        elif line.startswith("$ "):
            steps[-1][1].append(line[2:])
    return steps


class RotationPlaybook(TlsCase):
    def test_playbook_as_written(self):
        steps = playbook_steps()
        self.assertEqual(len(steps), 5)
        node2_cert, _ = self.certs.node(2)
        pins_1 = {"peers": {"node_2": "spki-sha256:" + spki_sha256(node2_cert)}, "report_only": False}
        pins_2 = {"peers": {"node_1": "spki-sha256:" + spki_sha256(self.certs.node(1)[0])}, "report_only": False}
        n2 = self.daemon(peers=self.peers_yaml(2), pins=pins_2, node_id="node_2",
                         load=("transport_tls", "metrics", "peer_echo")).start()
        n1 = self.daemon(peers=self.peers_yaml(1, peers=[("node_2", n2.peer_listen)]), pins=pins_1,
                         load=("transport_tls", "metrics", "peer_echo")).start()
        env = dict(os.environ)
        env.update({
            "PATH": BUILD + os.pathsep + env["PATH"],
            "CERT_DIR": self.certs.dir,
            "NODE": "node_2",
            "NODE_PEER": n2.peer_listen,
            "NODE_PID": str(n2.proc.pid),
            "PIDS": f"{n1.proc.pid} {n2.proc.pid}",
            "PINS_FILES": os.path.join(n1.dir, "pinned_certs.json"),
        })
        live = self.open_live_echo(n2)
        reloads = 0
        for title, commands in steps:
            before = {n: self.reload_count(n) for n in (n1, n2)}
            script = "set -euo pipefail\n" + "\n".join(commands) + "\n"
            out = subprocess.run(["bash", "-c", script], env=env, cwd=self.certs.dir, capture_output=True,
                                 timeout=scaled(30))
            self.assertEqual(out.returncode, 0, f"step {title!r} failed:\n{out.stdout}\n{out.stderr}")
            signalled = [n for n in (n1, n2) if any(c.startswith("kill -HUP") and (
                "$PIDS" in c or (n is n2 and "$NODE_PID" in c)) for c in commands)]
            for node in signalled:
                self.wait_reload(node, before[node], title)
            reloads += bool(signalled)
            status, body = self.echo(n1, n2)
            self.assertEqual(status, 200, f"node_1 cannot reach node_2 after step {title!r}: {body}\n"
                                          f"{n1.log_text()[-3000:]}")
            self.assert_live_echo(live, title)
        self.assertEqual(reloads, 3)
        # In the end node_1 pins only the new key, which node_2 now presents.
        with open(env["PINS_FILES"]) as f:
            final = json.load(f)
        new_pin = "spki-sha256:" + spki_sha256(node2_cert)
        self.assertEqual(final["peers"]["node_2"], [new_pin])
        self.assertNotEqual(new_pin, pins_1["peers"]["node_2"])
        live.kill()
        live.communicate()

    @staticmethod
    def reload_count(node):
        return sum(1 for e in node.log_entries() if e.get("msg") == "transport material reloaded")

    def wait_reload(self, node, before, title):
        deadline = time.monotonic() + scaled(10)
        while self.reload_count(node) <= before:
            self.assertLess(time.monotonic(), deadline, f"no reload after step {title!r}:\n{node.log_text()[-2000:]}")
            time.sleep(0.05)

    def echo(self, n1, n2):
        r = n1.request("POST", f"/peer-echo?addr={n2.peer_listen}&node=node_2", body="rotate", timeout=15)
        return r.status, r.body

    def open_live_echo(self, n2):
        cert, key = self.certs.node(3)
        proc = subprocess.Popen(["openssl", "s_client", "-connect", n2.peer_listen, "-CAfile", self.certs.ca,
                                 "-cert", cert, "-key", key, "-quiet"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        proc.stdin.write(b"RAMPART/1 echo\n")
        proc.stdin.flush()
        self.assert_live_echo(proc, "before")
        return proc

    def assert_live_echo(self, proc, title):
        line = f"still-here-{title[:2].strip('.')}\n".encode()
        proc.stdin.write(line)
        proc.stdin.flush()
        self.assertEqual(proc.stdout.readline(), line, f"live connection lost after step {title!r}")


if __name__ == "__main__":
    unittest.main()
