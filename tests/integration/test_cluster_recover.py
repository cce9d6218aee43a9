"""Recovery after permanent quorum loss, by the procedure of docs/cluster.md
("Failures and recovery"): three nodes, two destroyed for good, the
survivor recovered offline with `rampartctl cluster recover` as a one-voter
cluster. Its data is intact and it takes writes. The commands of the doc's
recover block run here as written, and their output must match."""
import json
import os
import re
import shutil
import subprocess
import unittest

from cluster_util import AUTH, RAMPARTCTL, ClusterCase
from harness import BUILD, ROOT, scaled

DOC = os.path.join(ROOT, "docs", "cluster.md")


def doc_block():
    """[(command, expected output lines)] of the recover block."""
    with open(DOC) as f:
        text = f.read()
    block = re.search(r"<!-- recover:begin -->\n```console\n(.*?)```\n<!-- recover:end -->", text, re.S).group(1)
    steps = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


class Recover(ClusterCase):
    def shell(self, d, command):
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
        env.update(PATH=f"{BUILD}:{env['PATH']}", CONFIG=d.config_path, DATA_DIR=os.path.join(d.dir, "data"))
        return subprocess.run(["sh", "-c", command], cwd=d.dir, env=env, capture_output=True, text=True,
                              timeout=scaled(30))

    def recover(self, d, *args, json_out=False):
        return subprocess.run([RAMPARTCTL, *(["--json"] if json_out else []), "cluster", "recover", *args],
                              capture_output=True, text=True, timeout=scaled(30), cwd=d.dir)

    def test_survivor_of_three_recovers_alone_with_its_data(self):
        nodes = self.start_cluster(3)
        self.wait_ready(nodes)
        for i in range(30):
            self.put_on_leader(nodes, f"keep/{i}", f"v{i}")
        survivor, lost = nodes[0], nodes[1:]
        self.wait_value(survivor, "keep/29", b"v29")

        # Two nodes are gone for good: killed, their disks destroyed.
        for d in lost:
            d.proc.kill()
            d.proc.wait()
            shutil.rmtree(os.path.join(d.dir, "data"))
        # The survivor alone has no quorum: no leader, writes refused.
        self.eventually(lambda: survivor.request("GET", "/ready").status == 503, timeout=15, what="not ready")
        self.assertEqual(survivor.request("PUT", "/v1/kv/x", body=b"1", headers=AUTH).status, 503)

        # The procedure. Stopped, recovery refused while it runs:
        r = self.recover(survivor, "-c", survivor.config_path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("stop rampartd on this node first", r.stderr)
        survivor.stop()
        # The lost members leave etc/peers.yml (they may never connect again).
        with open(os.path.join(survivor.dir, "peers.yml"), "w") as f:
            f.write(self.peers_yaml(1, peers=()))
        # The doc's commands, as written.
        for command, expected in doc_block():
            r = self.shell(survivor, command)
            self.assertEqual(r.returncode, 0, f"{command}: {r.stderr}")
            got = r.stdout.replace(survivor.peer_listen, "127.0.0.1:7701").splitlines()
            self.assertEqual(got, expected, command)
        self.assertTrue(os.path.isdir(os.path.join(survivor.dir, "data.before-recover", "raft")))
        with open(os.path.join(survivor.dir, "data", "audit.jsonl")) as f:
            self.assertIn('"cluster_recovered"', f.read())

        self.restart(survivor)
        self.wait_ready([survivor])
        status = self.status(survivor)
        self.assertEqual((status["state"], status["voters"], status["quorum_size"]), ("leader", 1, 1))
        self.assertEqual([m["node_id"] for m in status["members"]], ["node_1"])
        for i in range(30):
            self.wait_value(survivor, f"keep/{i}", f"v{i}".encode(), timeout=5)
        r = survivor.request("PUT", "/v1/kv/after", body=b"recovered", headers=AUTH)
        self.assertEqual((r.status, r.body.strip()), (200, b"true"))
        r = survivor.request("GET", "/v1/kv/after?raw", headers=AUTH)
        self.assertEqual((r.status, r.body), (200, b"recovered"))

        # The new configuration is in the log: a restart keeps it.
        survivor.stop()
        self.restart(survivor)
        self.wait_ready([survivor])
        self.wait_value(survivor, "after", b"recovered")
        self.wait_value(survivor, "keep/0", b"v0")

    def test_refusals(self):
        nodes = self.start_cluster(3, start=False)
        d = nodes[0]
        # Usage.
        self.assertEqual(self.recover(d).returncode, 2)
        self.assertEqual(self.recover(d, "-c", d.config_path, "--bogus").returncode, 2)
        # A pristine node has nothing to recover.
        r = self.recover(d, "-c", d.config_path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("holds no Raft state: nothing to recover", r.stderr)
        # A voter must be a member the peers file names, other than this node.
        d.start()
        d.stop()
        r = self.recover(d, "-c", d.config_path, "--voter", "node_9")
        self.assertEqual((r.returncode, r.stderr.strip()), (1, "rampartctl: --voter node_9: not in the peers file"))
        r = self.recover(d, "-c", d.config_path, "--voter", "node_1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("a voter already", r.stderr)
        # An unreadable configuration.
        r = self.recover(d, "-c", os.path.join(d.dir, "missing.yml"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing.yml", r.stderr)

    def test_two_survivors_of_three_recover_as_a_pair(self):
        nodes = self.start_cluster(3)
        self.wait_ready(nodes)
        for i in range(10):
            self.put_on_leader(nodes, f"pair/{i}", str(i))
        a, b, lost = nodes
        for d in (a, b):
            self.wait_value(d, "pair/9", b"9")
        ids = {d.node_id: self.status(d)["raft_id"] for d in (a, b)}
        lost.proc.kill()
        lost.proc.wait()
        shutil.rmtree(os.path.join(lost.dir, "data"))
        for d in (a, b):
            d.stop()
        r = self.recover(a, "-c", a.config_path, "--voter", b.node_id)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("the cluster is now 2 voter(s)", r.stdout)
        r = self.recover(b, "-c", b.config_path, "--voter", a.node_id, json_out=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"node_id": b.node_id, "voters": [
            {"node_id": b.node_id, "raft_id": ids[b.node_id], "address": b.peer_listen},
            {"node_id": a.node_id, "raft_id": ids[a.node_id], "address": a.peer_listen}]})
        for d in (a, b):
            self.restart(d)
        self.wait_ready([a, b], timeout=30)
        leader = self.leader_of([a, b])
        self.assertEqual((self.status(leader)["voters"], self.status(leader)["quorum_size"]), (2, 2))
        self.put_on_leader([a, b], "pair/after", b"yes")
        for d in (a, b):
            self.wait_value(d, "pair/after", b"yes")
            self.wait_value(d, "pair/0", b"0")


if __name__ == "__main__":
    unittest.main()
