"""The operator's view of a cluster (docs/cluster.md, "Cluster status"):
GET /v1/status/leader and /v1/status/peers (no token, Consul's shapes),
GET /v1/cluster/status (read token; replication progress on the leader),
the rampart_raft_* metrics and `rampartctl cluster status|leader|peers`,
on three nodes over mutual TLS and on a single node."""
import json
import os
import subprocess
import time
import unittest

import test_tls
from cluster_util import AUTH, RAMPARTCTL, TOKEN, ClusterCase, metric_values
from harness import BUILD, run_doc_examples, scaled



class ThreeNodeStatus(ClusterCase):
    def setUp(self):
        self.nodes = self.start_cluster()
        self.wait_ready(self.nodes)
        self.put_on_leader(self.nodes, "status/a", b"1")  # any node: followers forward writes

        def one_leader():
            leaders = [d for d in self.nodes if self.status(d)["state"] == "leader"]
            return leaders[0] if len(leaders) == 1 else None

        self.leader = self.eventually(one_leader, what="exactly one node calling itself leader")
        for i in range(5):
            self.assertEqual(self.leader.request("PUT", f"/v1/kv/status/k{i}", body=b"v", headers=AUTH).status, 200)
        for d in self.nodes:
            self.wait_value(d, "status/k4", b"v")
        self.followers = [d for d in self.nodes if d is not self.leader]
        self.node_id = {d: f"node_{i + 1}" for i, d in enumerate(self.nodes)}

    def test_leader_and_peers_agree_on_every_node_without_a_token(self):
        for d in self.nodes:
            leader = self.get_json(d, "/v1/status/leader")
            self.assertEqual(leader, self.leader.peer_listen, d.dir)
            peers = self.get_json(d, "/v1/status/peers")
            self.assertEqual(sorted(peers), sorted(n.peer_listen for n in self.nodes))
        # /v1/cluster/status is not a /v1/status/ route: it needs a token.
        self.assertEqual(self.leader.request("GET", "/v1/cluster/status").status, 401)

    def test_status_on_the_leader_shows_every_member_caught_up(self):
        def caught_up():
            s = self.status(self.leader)
            members = s["members"]
            if all(m["lag"] == 0 and m["match_index"] == s["last_index"] for m in members) \
                    and s["commit_index"] == s["applied_index"] == s["last_index"]:
                return s
            return None

        s = self.eventually(caught_up, what="every member at the leader's last index")
        self.assertEqual(s["node_id"], self.node_id[self.leader])
        self.assertEqual((s["state"], s["role"], s["voters"], s["quorum_size"]), ("leader", "voter", 3, 2))
        self.assertTrue(s["progress_known"])
        self.assertEqual(s["leader"]["node_id"], self.node_id[self.leader])
        self.assertEqual(s["leader"]["address"], self.leader.peer_listen)
        self.assertGreaterEqual(s["term"], 1)
        self.assertGreaterEqual(s["leader_changes"], 1)
        self.assertGreaterEqual(s["applied_index"], 6)  # six writes at least
        by_id = {m["node_id"]: m for m in s["members"]}
        self.assertEqual(sorted(by_id), ["node_1", "node_2", "node_3"])
        for d in self.nodes:
            m = by_id[self.node_id[d]]
            self.assertEqual(m["address"], d.peer_listen)
            self.assertEqual(m["role"], "voter")
            self.assertEqual(m["leader"], d is self.leader)
            self.assertEqual(m["self"], d is self.leader)
            self.assertTrue(m["raft_id"].isdigit())
            # Followers answer heartbeats (100 ms) all the time.
            self.assertIsNotNone(m["last_contact_ms"])
            self.assertLess(m["last_contact_ms"], 2000)

    def test_status_on_a_follower_is_limited_to_what_it_knows(self):
        for d in self.followers:
            s = self.eventually(lambda: (lambda s: s if s["applied_index"] == s["commit_index"] else None)(
                self.status(d)), what="follower applied its commits")
            self.assertEqual((s["state"], s["role"], s["node_id"]), ("follower", "voter", self.node_id[d]))
            self.assertFalse(s["progress_known"])
            self.assertEqual(s["leader"]["node_id"], self.node_id[self.leader])
            self.assertIsNotNone(s["leader"]["last_contact_ms"])
            self.assertLess(s["leader"]["last_contact_ms"], 2000)
            for m in s["members"]:
                self.assertIsNone(m["match_index"])
                self.assertIsNone(m["lag"])
                if m["self"]:
                    self.assertEqual(m["last_contact_ms"], 0)
                elif m["leader"]:
                    self.assertIsNotNone(m["last_contact_ms"])
                else:
                    self.assertIsNone(m["last_contact_ms"])
        terms = {self.status(d)["term"] for d in self.nodes}
        self.assertEqual(len(terms), 1, terms)

    def test_metrics_are_present_and_consistent(self):
        def settled():
            texts = [self.metrics(d) for d in self.nodes]
            lag = metric_values(texts[self.nodes.index(self.leader)], "rampart_raft_replication_lag")
            # Gauges refresh every second: wait for every node's.
            applied = [metric_values(t, "rampart_raft_applied_index").get("", 0) for t in texts]
            if len(lag) == 2 and all(v == 0 for v in lag.values()) and min(applied) >= 6:
                return texts
            return None

        texts = self.eventually(settled, what="the leader reporting both followers at lag 0")
        leaders = sum(metric_values(t, "rampart_raft_is_leader")[""] for t in texts)
        self.assertEqual(leaders, 1)
        terms = {metric_values(t, "rampart_raft_term")[""] for t in texts}
        self.assertEqual(len(terms), 1)
        self.assertGreaterEqual(terms.pop(), 1)
        for d, t in zip(self.nodes, texts):
            self.assertEqual(metric_values(t, "rampart_quorum_size")[""], 2)
            self.assertGreaterEqual(metric_values(t, "rampart_raft_leader_changes_total")[""], 1)
            self.assertGreaterEqual(metric_values(t, "rampart_raft_commit_index")[""], 6)
            self.assertGreaterEqual(metric_values(t, "rampart_raft_applied_index")[""], 6)
            if d is not self.leader:
                self.assertEqual(metric_values(t, "rampart_raft_replication_lag"), {}, "followers report no lag")
        lag = metric_values(texts[self.nodes.index(self.leader)], "rampart_raft_replication_lag")
        self.assertEqual(sorted(lag), sorted(f'peer="{self.node_id[d]}"' for d in self.followers))
        # Every write proposed on the leader was timed.
        count = metric_values(texts[self.nodes.index(self.leader)], "rampart_raft_apply_duration_seconds_count")
        self.assertGreaterEqual(count[""], 6)
        # The whole page still parses for Prometheus.
        check = subprocess.run(["promtool", "check", "metrics"], input=texts[0], capture_output=True, text=True)
        self.assertNotIn("error", check.stderr.lower(), check.stderr)

    def test_rampartctl_cluster_commands(self):
        for d in self.nodes:
            out = self.ctl(d, "cluster", "leader", token=None)
            self.assertEqual((out.returncode, out.stdout), (0, self.leader.peer_listen + "\n"), out.stderr)
        out = self.ctl(self.followers[0], "cluster", "peers", token=None)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(sorted(out.stdout.split()), sorted(d.peer_listen for d in self.nodes))
        out = self.ctl(self.followers[0], "--json", "cluster", "peers", token=None)
        self.assertEqual(sorted(json.loads(out.stdout)), sorted(d.peer_listen for d in self.nodes))
        out = self.ctl(self.leader, "--json", "cluster", "leader", token=None)
        self.assertEqual(json.loads(out.stdout), self.leader.peer_listen)

        out = self.ctl(self.leader, "cluster", "status")
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertIn(f"Node:     {self.node_id[self.leader]} (leader, voter)", lines)
        self.assertIn("Quorum:   2 of 3 voters", lines)
        header = next(line for line in lines if line.startswith("NODE"))
        self.assertEqual(header.split(), ["NODE", "RAFT", "ID", "ADDRESS", "ROLE", "STATE", "LAST", "CONTACT",
                                          "MATCH", "LAG"])
        rows = [line.split() for line in lines[lines.index(header) + 1:] if line.startswith("node_")]
        self.assertEqual(len(rows), 3)
        for row in rows:
            self.assertIn(row[0], ("node_1", "node_2", "node_3"))
        me = next(r for r in rows if r[0] == self.node_id[self.leader])
        self.assertEqual(me[1], "*")  # this node is marked
        self.assertIn("leader", me)

        out = self.ctl(self.leader, "--json", "cluster", "status")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["state"], "leader")

        out = self.ctl(self.followers[0], "cluster", "status")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("known only on the leader", out.stdout)
        self.assertIn("(follower, voter)", out.stdout)

        # Failures and usage.
        self.assertEqual(self.ctl(self.leader, "cluster", "status", token=None).returncode, 1)
        self.assertEqual(self.ctl(self.leader, "cluster").returncode, 2)
        self.assertEqual(self.ctl(self.leader, "cluster", "bogus").returncode, 2)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
        gone = subprocess.run([RAMPARTCTL, "--addr", f"127.0.0.1:{test_tls.free_port()}", "cluster", "leader"],
                              capture_output=True, text=True, env=env, timeout=scaled(10))
        self.assertEqual(gone.returncode, 1)

    def test_new_leader_after_the_leader_stops(self):
        before = {d: self.status(d)["leader_changes"] for d in self.followers}
        self.leader.stop()

        def new_leader():
            seen = set()
            for d in self.followers:
                r = d.request("GET", "/v1/status/leader")
                seen.add(json.loads(r.body) if r.status == 200 else None)
            # The old leader's address lingers until an election timeout.
            stale = {None, "", self.leader.peer_listen}
            return seen.pop() if len(seen) == 1 and not seen & stale else None

        address = self.eventually(new_leader, timeout=15, what="the survivors agreeing on a new leader")
        self.assertIn(address, [d.peer_listen for d in self.followers])
        new = next(d for d in self.followers if d.peer_listen == address)
        s = self.status(new)
        self.assertEqual(s["state"], "leader")
        for d in self.followers:
            self.assertGreater(self.status(d)["leader_changes"], before[d])
        # The stopped member: still a voter, not heard from, and behind
        # once the new leader writes.
        self.assertEqual(new.request("PUT", "/v1/kv/status/after", body=b"x", headers=AUTH).status, 200)
        old = next(m for m in self.status(new)["members"] if m["node_id"] == self.node_id[self.leader])
        self.assertEqual(old["role"], "voter")
        self.assertFalse(old["leader"])
        self.assertGreater(old["lag"], 0)
        self.assertTrue(old["last_contact_ms"] is None or old["last_contact_ms"] > 0)
        texts = [self.metrics(d) for d in self.followers]
        self.assertEqual(sum(metric_values(t, "rampart_raft_is_leader")[""] for t in texts), 1)


class SingleNodeStatus(ClusterCase):
    """No peers file: a one-node cluster of itself."""

    def start_single(self):
        d = self.daemon(extra={"auth": {"enabled": True, "bootstrap_token": TOKEN}})
        d.start()
        self.wait_ready([d])
        return d

    def test_single_node(self):
        d = self.start_single()
        self.assertEqual(self.get_json(d, "/v1/status/leader"), d.peer_listen)
        self.assertEqual(self.get_json(d, "/v1/status/peers"), [d.peer_listen])
        self.assertEqual(d.request("PUT", "/v1/kv/one", body=b"1", headers=AUTH).status, 200)
        s = self.status(d)
        self.assertEqual((s["node_id"], s["state"], s["role"], s["voters"], s["quorum_size"]),
                         ("node_1", "leader", "voter", 1, 1))
        self.assertEqual(s["leader_changes"], 1)
        self.assertEqual([(m["node_id"], m["self"], m["leader"], m["lag"], m["last_contact_ms"])
                          for m in s["members"]], [("node_1", True, True, 0, 0)])
        text = self.eventually(lambda: (lambda t: t if metric_values(t, "rampart_raft_applied_index")[""] >= 2
                                        else None)(self.metrics(d)), what="applied index in the metrics")
        self.assertEqual(metric_values(text, "rampart_raft_is_leader")[""], 1)
        self.assertEqual(metric_values(text, "rampart_quorum_size")[""], 1)
        self.assertEqual(metric_values(text, "rampart_raft_leader_changes_total")[""], 1)
        self.assertEqual(metric_values(text, "rampart_raft_replication_lag"), {})
        self.assertEqual(metric_values(text, "rampart_raft_apply_duration_seconds_count")[""], 1)
        out = self.ctl(d, "cluster", "status")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("Quorum:   1 of 1 voters", out.stdout)

    def test_doc_examples(self):
        """Every "$ command" in the fenced blocks between docs/cluster.md's
        cluster-examples markers runs against a one-node cluster and prints
        what the doc says (ports substituted)."""
        d = self.start_single()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
        env["PATH"] = BUILD + os.pathsep + env.get("PATH", "")
        env["AUTH"] = f"Authorization: Bearer {TOKEN}"
        env["RAMPART_HTTP_ADDR"] = d.address
        env["RAMPART_HTTP_TOKEN"] = TOKEN
        run_doc_examples(self, "cluster.md", "cluster-examples", env, min_steps=5,
                         command_subs={"localhost:7700": d.address}, expected_subs={"127.0.0.1:7701": d.peer_listen})


if __name__ == "__main__":
    unittest.main()
