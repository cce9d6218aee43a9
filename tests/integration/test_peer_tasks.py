"""The engine's peer connections under the supervisor (docs/operations.md,
"Supervised tasks and circuit breakers"): each peer a node dials is the task
raft_peer.<node id>. A peer that is down fails its dials; recovery.lua backs
off and opens the breaker, but every wait is capped at one election timeout
(the shipped cool-down is 30 s), so the peer is dialled again as soon as it
is back: its breaker closes and it catches up. Real daemons over mutual TLS."""
import signal
import time
import unittest

from cluster_util import AUTH, ClusterCase, metric_values


class PeerTasks(ClusterCase):
    load = ("transport_tls", "metrics")

    def task(self, d, name):
        rows = [t for t in self.get_json(d, "/v1/agent/breakers", headers=AUTH) if t["task"] == name]
        return rows[0] if rows else None

    def breaker_open(self, d, name):
        return metric_values(self.metrics(d), "rampart_task_breaker_open").get(f'task="{name}"')

    def test_a_dead_peer_opens_its_breaker_and_is_redialled_within_an_election(self):
        nodes = self.start_cluster(3)
        self.wait_ready(nodes)
        leader = self.leader_of(nodes)
        followers = [d for d in nodes if d is not leader]
        gone = followers[1]
        name = f"raft_peer.{gone.node_id}"
        self.eventually(lambda: (self.task(leader, name) or {}).get("state") == "running",
                        what=f"{name} running on the leader")
        self.assertEqual(self.task(leader, f"raft_peer.{followers[0].node_id}")["breaker"], "closed")

        gone.signal(signal.SIGKILL)
        gone.wait()
        gone.stop()  # closes its log file
        # Dials fail (the engine asks every 100 ms): at once, then 100, 200,
        # 400 ms, and the 5th failure opens the breaker.
        self.eventually(lambda: self.task(leader, name)["breaker"] == "open", timeout=15,
                        what=f"{name}'s breaker open")
        task = self.task(leader, name)
        self.assertEqual(task["last_error"], "dial failed: network_error", task)
        self.assertGreaterEqual(task["failures"], 5, task)
        # The cool-down is recovery.lua's 30 s, capped at the election timeout (500 ms).
        self.assertLessEqual(task["retry_in_ms"], 500, task)
        self.assertEqual(self.breaker_open(leader, name), 1)
        # Trials keep failing while it is down; the breaker stays open, the
        # others are untouched, the cluster keeps its quorum.
        time.sleep(1.5)
        task = self.task(leader, name)
        self.assertEqual(task["breaker"], "open", task)
        self.assertGreaterEqual(task["times_opened"], 2, task)
        self.assertEqual(self.task(leader, f"raft_peer.{followers[0].node_id}")["breaker"], "closed")
        r = leader.request("PUT", "/v1/kv/while-down", body=b"written", headers=AUTH)
        self.assertEqual(r.status, 200, r.body)

        self.restart(gone)
        started = time.monotonic()
        self.eventually(lambda: self.task(leader, name)["breaker"] == "closed", timeout=10,
                        what=f"{name}'s breaker closed")
        self.wait_value(gone, "while-down", b"written")
        self.assertLess(time.monotonic() - started, 10)
        self.assertEqual(self.breaker_open(leader, name), 0)
        task = self.task(leader, name)
        self.assertEqual((task["state"], task["failures_in_window"]), ("running", 0), task)


if __name__ == "__main__":
    unittest.main()
