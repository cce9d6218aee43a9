"""Three nodes form a Raft cluster over the mutual-TLS peer port (the
engine's streams bridged through the transport plugin): they elect a
leader, a write on the leader reaches every node, and a node restarted
from its data catches up."""
import os
import subprocess
import time
import unittest

from cluster_util import AUTH, ClusterCase
from harness import scaled


class ThreeNodes(ClusterCase):
    def test_forms_over_mutual_tls_and_replicates(self):
        nodes = self.start_cluster()
        self.wait_ready(nodes)
        leader = self.put_on_leader(nodes, "greeting", b"hello")
        for d in nodes:
            self.wait_value(d, "greeting", b"hello")
        # The engine's streams ran over TLS handshakes on the peer port.
        self.assertTrue(any(e.get("msg") == "store bootstrapped a cluster" for e in leader.log_entries()))

    def test_followers_forward_writes_and_reads_to_the_leader(self):
        nodes = self.start_cluster()
        self.wait_ready(nodes)
        leader = self.put_on_leader(nodes, "first", b"1")
        followers = [d for d in nodes if d is not leader]
        for i, f in enumerate(followers):
            r = f.request("PUT", f"/v1/kv/via-{i}", body=f"v{i}", headers=AUTH)
            self.assertEqual((r.status, r.body.strip()), (200, b"true"), r.body)
            # A default read on a follower is the leader's: it sees the write at once.
            r = f.request("GET", f"/v1/kv/via-{i}?raw", headers=AUTH)
            self.assertEqual((r.status, r.body), (200, f"v{i}".encode()))
        for d in nodes:
            self.wait_value(d, "via-1", b"v1")
        # CAS and errors come back as the leader gave them.
        r = followers[0].request("PUT", "/v1/kv/first?cas=1", body=b"x", headers=AUTH)
        self.assertEqual((r.status, r.body.strip()), (200, b"false"))
        self.assertEqual(followers[0].request("PUT", "/v1/kv/x", body=b"1").status, 401)
        # The token is checked where the request is served, too.
        self.assertEqual(followers[1].request("PUT", "/v1/kv/x", body=b"1",
                                              headers={"Authorization": "Bearer wrong-token-000000000"}).status, 401)
        # An idempotent retry through another follower is deduplicated by the state machine.
        key = {"Idempotency-Key": "retry-1", **AUTH}
        a = followers[0].request("PUT", "/v1/kv/once", body=b"A", headers=key)
        b = followers[1].request("PUT", "/v1/kv/once", body=b"A", headers=key)
        self.assertEqual((a.status, b.status), (200, 200))
        self.assertEqual(b.headers.get("idempotent-replayed"), "true")

    def test_leader_killed_a_new_one_takes_writes(self):
        nodes = self.start_cluster()
        self.wait_ready(nodes)
        leader = self.put_on_leader(nodes, "before", b"1")
        leader.proc.kill()
        leader.proc.wait()
        survivors = [d for d in nodes if d is not leader]
        deadline = time.monotonic() + scaled(15)
        status = None
        while time.monotonic() < deadline:
            r = survivors[0].request("PUT", "/v1/kv/after", body=b"2", headers=AUTH, timeout=10)
            status = r.status
            if status == 200:
                break
            self.assertEqual(r.status, 503, r.body)  # never a hang or another error
            self.assertIn("retry-after", r.headers)
            time.sleep(0.2)
        self.assertEqual(status, 200)
        for d in survivors:
            self.wait_value(d, "after", b"2")
            self.wait_value(d, "before", b"1")

    def test_restarted_follower_catches_up(self):
        nodes = self.start_cluster()
        self.wait_ready(nodes)
        self.put_on_leader(nodes, "a", b"1")
        # put_on_leader returns the node that accepted the write, which may be
        # a follower that forwarded it: stop a real follower.
        leader = self.leader_of(nodes)
        follower = next(d for d in nodes if d is not leader)
        follower.stop()
        for i in range(20):
            self.assertEqual(leader.request("PUT", f"/v1/kv/k{i}", body=str(i), headers=AUTH).status, 200)
        os.rename(follower.log_path, follower.log_path + ".1")  # the harness finds the new address
        follower.start()
        self.wait_value(follower, "k19", b"19")
        self.wait_value(follower, "a", b"1")

    def test_stranger_certificate_cannot_join_raft(self):
        nodes = self.start_cluster()
        self.wait_ready(nodes)
        # A certificate from our CA naming no member: refused by the bridge.
        cert, key = self.certs.issue("intruder", ["node_9"])
        subprocess.run(["openssl", "s_client", "-connect", nodes[0].peer_listen, "-CAfile", self.certs.ca,
                               "-cert", cert, "-key", key, "-quiet"], input=b"RAMPART/1 raft\n" + b"\0" * 64,
                              capture_output=True, timeout=scaled(10))
        nodes[0].wait_log(lambda e: e.get("msg") == "raft: refused a connection from a certificate that names no member")


if __name__ == "__main__":
    unittest.main()
