"""Group commit (docs/store.md, "Group commit") on real daemons: the writes
that reach the leader in one loop turn go into one Raft entry.

- 64 concurrent writers against one node: every acknowledged write is there
  with its value, and its CreateIndex/ModifyIndex equal the X-Rampart-Index
  it was answered with; writes shared indexes (several keys per entry), and
  rampart_store_batch_size in /metrics counts fewer entries than writes;
  each writer's own writes got increasing indexes; a blocking read woken by
  a batch sees every key of it.
- 64 concurrent create-only (cas=0) PUTs of one key, mixed with plain PUTs:
  exactly one CAS wins, the others fail alone (false) in the same entry as
  writes that succeeded.
- Mixed versions: with a voter that plays a build from before batch records
  (RAMPART_TEST_COMMAND_TYPE_MAX=8), the leader proposes one entry per
  write, and that voter keeps applying; once it runs the full build, writes
  share entries again.

Data directories live under /var/tmp (a real disk): fsync is part of it."""
import base64
import json
import os
import shutil
import signal
import tempfile
import time
import unittest

from cluster_util import AUTH, ClusterCase, metric_values
from harness import BUILD, Daemon, build_request, parse_response, recv_all, scaled

PLUGINS = {"plugins": {"dir": os.path.join(BUILD, "plugins"), "load": ["metrics"]}}
WRITERS = 64
OLD_BUILD = {"RAMPART_TEST_COMMAND_TYPE_MAX": "8"}  # a build from before batch records


def burst(d, requests, headers=None):
    """Send every (method, path, body) on its own connection at once, then
    read the answers. The connections are accepted first; the requests are
    sent while the daemon is stopped (SIGSTOP), so that after SIGCONT they
    are all readable in the same loop turn, however slowly this client
    writes them."""
    socks = []
    try:
        for _ in requests:
            socks.append(d.connect(timeout=scaled(20)))
        time.sleep(0.05)  # let it accept them all
        d.signal(signal.SIGSTOP)
        try:
            for s, (method, path, body) in zip(socks, requests):
                s.sendall(build_request(method, path, body, headers, close=True))
        finally:
            d.signal(signal.SIGCONT)
        return [parse_response(recv_all(s)) for s in socks]
    finally:
        for s in socks:
            s.close()


def puts(prefix, n=WRITERS):
    return [("PUT", f"/v1/kv/{prefix}/w{i:02d}", f"value-{prefix}-{i}".encode()) for i in range(n)]


def index_of(r):
    return int(r.headers["x-rampart-index"])


def kv_tree(d, prefix, headers=None):
    r = d.request("GET", f"/v1/kv/{prefix}?recurse", headers=headers)
    assert r.status == 200, r
    return {e["Key"]: e for e in r.json()}


def value_of(e):
    return base64.b64decode(e["Value"]).decode()


class OneNode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="rampart-gc-", dir="/var/tmp")
        cls.d = Daemon(config=PLUGINS, workdir=cls.dir).start()
        for _ in range(int(scaled(500))):
            if cls.d.request("GET", "/ready").status == 200:
                break

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def batch_metric(self):
        text = self.d.request("GET", "/metrics").body.decode()
        return (metric_values(text, "rampart_store_batch_size_count").get("", 0),
                metric_values(text, "rampart_store_batch_size_sum").get("", 0))

    def test_concurrent_writers_every_ack_there_with_shared_indexes(self):
        entries_before, writes_before = self.batch_metric()
        acked = {}  # key -> (value, index)
        by_writer = {i: [] for i in range(WRITERS)}
        for rnd in range(8):
            reqs = puts(f"gc/r{rnd}")
            for i, ((_, path, body), r) in enumerate(zip(reqs, burst(self.d, reqs))):
                self.assertEqual((r.status, r.body), (200, b"true\n"), r)
                acked[path[len("/v1/kv/"):]] = (body.decode(), index_of(r))
                by_writer[i].append(index_of(r))
        tree = kv_tree(self.d, "gc/")
        for key, (value, index) in acked.items():
            e = tree[key]
            self.assertEqual((value_of(e), e["CreateIndex"], e["ModifyIndex"]), (value, index, index), key)
        # A writer's later write never gets an earlier index.
        for i, indexes in by_writer.items():
            self.assertEqual(indexes, sorted(indexes), f"writer {i}")
            self.assertEqual(len(set(indexes)), len(indexes), f"writer {i}")
        indexes = [i for _, i in acked.values()]
        self.assertLess(len(set(indexes)), len(indexes) // 2, "writes did not share entries")
        entries, writes = self.batch_metric()
        self.assertEqual(writes - writes_before, len(acked))
        self.assertLess(entries - entries_before, (writes - writes_before) / 2)

    def test_cas_conflict_fails_only_its_sub_command(self):
        for rnd in range(5):
            key = f"gc/cas{rnd}"
            reqs = []
            for i in range(WRITERS):
                if i % 2:
                    reqs.append(("PUT", f"/v1/kv/{key}?cas=0", f"cas-{i}".encode()))
                else:
                    reqs.append(("PUT", f"/v1/kv/gc/plain{rnd}/w{i}", f"plain-{i}".encode()))
            answers = burst(self.d, reqs)
            cas = [(i, r) for i, r in enumerate(answers) if i % 2]
            plain = [(i, r) for i, r in enumerate(answers) if i % 2 == 0]
            winners = [(i, r) for i, r in cas if r.body == b"true\n"]
            self.assertEqual(len(winners), 1, [r.body for _, r in cas])
            self.assertTrue(all(r.status == 200 and r.body in (b"true\n", b"false\n") for _, r in cas))
            self.assertTrue(all((r.status, r.body) == (200, b"true\n") for _, r in plain))
            [(wi, wr)] = winners
            e = kv_tree(self.d, key)[key]
            self.assertEqual((value_of(e), e["ModifyIndex"]), (f"cas-{wi}", index_of(wr)))
            plain_tree = kv_tree(self.d, f"gc/plain{rnd}/")
            for i, r in plain:
                self.assertEqual(plain_tree[f"gc/plain{rnd}/w{i}"]["ModifyIndex"], index_of(r))
            # A failed CAS in the same entry as writes that applied.
            losers = {index_of(r) for _, r in cas if r.body == b"false\n"}
            if losers & {index_of(r) for _, r in plain}:
                return
        self.fail("no failed CAS ever shared an entry with a write that applied")

    def test_blocking_read_woken_by_a_batch_sees_all_of_it(self):
        start = index_of(self.d.request("PUT", "/v1/kv/gc/block/seed", body=b"s"))
        import threading
        got = {}

        def watch():
            got["r"] = self.d.request("GET", f"/v1/kv/gc/block/?recurse&index={start}&wait=20s", timeout=30)

        t = threading.Thread(target=watch)
        t.start()
        answers = burst(self.d, puts("gc/block"))
        t.join(scaled(30))
        r = got["r"]
        self.assertEqual(r.status, 200)
        woke_at = int(r.headers["x-consul-index"])
        self.assertGreater(woke_at, start)
        seen = {e["Key"]: e["ModifyIndex"] for e in r.json()}
        # Every write of the entries up to the index the read reports is in it.
        for (_, path, _), a in zip(puts("gc/block"), answers):
            if index_of(a) <= woke_at:
                self.assertEqual(seen.get(path[len("/v1/kv/"):]), index_of(a), path)


class MixedVersions(ClusterCase):
    def burst_indexes(self, leader, prefix):
        answers = burst(leader, puts(prefix), headers=AUTH)
        for r in answers:
            self.assertEqual((r.status, r.body), (200, b"true\n"), r)
        return [index_of(r) for r in answers]

    def declared_batch(self, d, node_id):
        for m in self.status(d)["members"]:
            if m["node_id"] == node_id and m["versions"] is not None:
                return m["versions"].get("batch", 0)
        return None

    def test_old_voter_gets_one_entry_per_write_until_upgraded(self):
        nodes, old, leader = self.start_with_an_old_voter(OLD_BUILD)
        self.eventually(lambda: self.declared_batch(leader, "node_3") == 0, what="node_3 declaring no batches")
        indexes = self.burst_indexes(leader, "mv/old")
        self.assertEqual(len(set(indexes)), len(indexes), "a batch was proposed to a voter that cannot read it")
        self.wait_value(old, "mv/old/w63", b"value-mv/old-63")
        self.assertIsNone(old.proc.poll())

        old.stop()
        for k in OLD_BUILD:
            del old.env[k]
        self.restart(old)
        self.eventually(lambda: all(self.declared_batch(d, "node_3") == 1 for d in nodes), timeout=15,
                        what="node_3 declaring batches")
        leader = self.leader_of(nodes)
        shared = False
        for rnd in range(5):
            indexes = self.burst_indexes(leader, f"mv/new{rnd}")
            if len(set(indexes)) < len(indexes):
                shared = True
                break
        self.assertTrue(shared, "writes never shared an entry once every voter reads batches")
        for d in nodes:
            self.wait_value(d, f"mv/new{rnd}/w63", f"value-mv/new{rnd}-63".encode())
        self.assertIsNone(old.proc.poll())
        text = self.metrics(leader)
        self.assertGreater(metric_values(text, "rampart_store_batch_size_sum").get("", 0),
                           metric_values(text, "rampart_store_batch_size_count").get("", 0))


if __name__ == "__main__":
    unittest.main()
