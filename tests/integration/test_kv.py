"""The replicated KV store through HTTP (issue 5): Consul's /v1/kv and
/v1/txn, consistency levels, blocking reads, limits (400/413/507),
idempotent writes, restart persistence (with snapshots), and a crash loop:
kill -9 in the middle of a stream of acknowledged writes, restart, and every
acknowledged write is there, whole.

Data directories live under /var/tmp (a real disk), never tmpfs: the crash
test is about fsync.
"""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import unittest

from harness import Daemon, run_doc_examples, scaled

TOKEN = "kv-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def workdir():
    return tempfile.mkdtemp(prefix="rampart-kv-", dir="/var/tmp")


class Node:
    """A daemon in its own /var/tmp directory that can be restarted (each
    start gets a fresh log, so the harness finds the new address)."""

    def __init__(self, config=None):
        self.dir = workdir()
        self.config = config or {}
        self.starts = 0
        self.d = None

    def start(self):
        if self.d is not None:
            self.d.stop()
            os.rename(self.d.log_path, f"{self.d.log_path}.{self.starts}")
        self.starts += 1
        self.d = Daemon(config=self.config, workdir=self.dir)
        self.d.start()
        wait_ready(self.d)
        return self.d

    def kill9(self):
        self.d.proc.kill()
        self.d.proc.wait()
        self.d.log_file.close()

    def cleanup(self):
        if self.d is not None:
            self.d.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_ready(d, timeout=10):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if d.request("GET", "/ready").status == 200:
            return
        time.sleep(0.02)
    raise AssertionError("node never became ready")


def put(d, key, value=b"", query="", headers=None):
    return d.request("PUT", f"/v1/kv/{key}{query}", body=value, headers=headers)


def get(d, key, query="", headers=None, timeout=5):
    return d.request("GET", f"/v1/kv/{key}{query}", headers=headers, timeout=timeout)


def entries(r):
    return {e["Key"]: e for e in r.json()}


def value_of(entry):
    return base64.b64decode(entry["Value"]) if entry["Value"] is not None else b""


def txn(d, ops, query=""):
    return d.request("PUT", "/v1/txn" + query, body=json.dumps(ops))


def kv_op(verb, key, value=None, index=None, flags=None):
    op = {"Verb": verb, "Key": key}
    if value is not None:
        op["Value"] = base64.b64encode(value).decode()
    if index is not None:
        op["Index"] = index
    if flags is not None:
        op["Flags"] = flags
    return {"KV": op}


class KvApi(unittest.TestCase):
    """One node for the API tests: each test uses its own key prefix."""

    @classmethod
    def setUpClass(cls):
        cls.node = Node()
        cls.d = cls.node.start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def test_put_get_flags_raw_and_headers(self):
        d = self.d
        r = put(d, "api/greeting", b"hello", "?flags=42")
        self.assertEqual((r.status, r.body), (200, b"true\n"))
        write_index = int(r.headers["x-rampart-index"])
        r = get(d, "api/greeting")
        self.assertEqual(r.status, 200)
        [e] = r.json()
        self.assertEqual(set(e), {"LockIndex", "Key", "Flags", "Value", "CreateIndex", "ModifyIndex"})
        self.assertEqual((e["Key"], e["Flags"], value_of(e)), ("api/greeting", 42, b"hello"))
        self.assertEqual(e["CreateIndex"], write_index)
        self.assertEqual(e["ModifyIndex"], write_index)
        self.assertEqual(r.headers["x-rampart-index"], r.headers["x-consul-index"])
        self.assertGreaterEqual(int(r.headers["x-consul-index"]), write_index)
        self.assertEqual(r.headers["x-consul-lastcontact"], "0")
        raw = get(d, "api/greeting", "?raw")
        self.assertEqual((raw.status, raw.body), (200, b"hello"))
        self.assertIn("x-consul-index", raw.headers)
        # An update keeps CreateIndex, moves ModifyIndex; no ?flags= resets them.
        put(d, "api/greeting", b"again")
        [e2] = get(d, "api/greeting").json()
        self.assertEqual(e2["CreateIndex"], e["CreateIndex"])
        self.assertGreater(e2["ModifyIndex"], e["ModifyIndex"])
        self.assertEqual(e2["Flags"], 0)
        # Empty values are null, as in Consul; binary values round-trip.
        put(d, "api/empty", b"")
        self.assertIsNone(get(d, "api/empty").json()[0]["Value"])
        blob = bytes(range(256))
        put(d, "api/blob", blob)
        self.assertEqual(get(d, "api/blob", "?raw").body, blob)

    def test_missing_key_is_404_with_index(self):
        r = get(self.d, "api/nothing-here")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["code"], "not_found")
        self.assertIn("x-consul-index", r.headers)
        self.assertEqual(get(self.d, "api/nothing/", "?recurse").status, 404)
        self.assertEqual(get(self.d, "api/nothing/", "?keys").status, 404)

    def test_percent_encoded_and_utf8_keys(self):
        d = self.d
        self.assertEqual(put(d, "enc/caf%C3%A9%20x%2Fy", b"v").status, 200)
        r = get(d, "enc/", "?recurse")
        self.assertEqual([e["Key"] for e in r.json()], ["enc/café x/y"])

    def test_cas(self):
        d = self.d
        self.assertEqual(put(d, "cas/k", b"1", "?cas=0").body, b"true\n")
        self.assertEqual(put(d, "cas/k", b"2", "?cas=0").body, b"false\n")  # create-only
        [e] = get(d, "cas/k").json()
        self.assertEqual(put(d, "cas/k", b"3", f"?cas={e['ModifyIndex'] + 100}").body, b"false\n")
        self.assertEqual(put(d, "cas/k", b"4", f"?cas={e['ModifyIndex']}").body, b"true\n")
        self.assertEqual(get(d, "cas/k", "?raw").body, b"4")
        self.assertEqual(put(d, "cas/missing", b"x", "?cas=5").body, b"false\n")
        self.assertEqual(put(d, "cas/k", b"x", "?cas=abc").status, 400)

    def test_recurse_keys_separator_and_deletes(self):
        d = self.d
        for k in ["tree/a", "tree/b/c", "tree/b/d", "tree/e/f/g", "treetop"]:
            put(d, k, k.encode())
        r = get(d, "tree/", "?recurse")
        self.assertEqual(list(entries(r)), ["tree/a", "tree/b/c", "tree/b/d", "tree/e/f/g"])
        self.assertEqual(get(d, "tree/", "?keys").json(), ["tree/a", "tree/b/c", "tree/b/d", "tree/e/f/g"])
        self.assertEqual(get(d, "tree/", "?keys&separator=/").json(), ["tree/a", "tree/b/", "tree/e/"])
        # Plain delete, delete with CAS (0 never deletes an existing key).
        [a] = get(d, "tree/a").json()
        self.assertEqual(d.request("DELETE", "/v1/kv/tree/a?cas=0").body, b"false\n")
        self.assertEqual(d.request("DELETE", f"/v1/kv/tree/a?cas={a['ModifyIndex']}").body, b"true\n")
        self.assertEqual(get(d, "tree/a").status, 404)
        # Recursive delete with CAS: the newest ModifyIndex under the prefix.
        newest = max(e["ModifyIndex"] for e in get(d, "tree/b/", "?recurse").json())
        self.assertEqual(d.request("DELETE", f"/v1/kv/tree/b/?recurse&cas={newest - 1}").body, b"false\n")
        self.assertEqual(d.request("DELETE", f"/v1/kv/tree/b/?recurse&cas={newest}").body, b"true\n")
        self.assertEqual(d.request("DELETE", "/v1/kv/tree/?recurse").body, b"true\n")
        self.assertEqual(get(d, "tree/", "?recurse").status, 404)
        self.assertEqual(get(d, "treetop", "?raw").body, b"treetop")

    def test_consistency_levels(self):
        d = self.d
        put(d, "cons/k", b"v")
        for q in ["?stale", "?consistent", "?consistency=stale", "?consistency=default", "?consistency=strong", ""]:
            r = get(d, "cons/k", q)
            self.assertEqual(r.status, 200, q)
        self.assertEqual(get(d, "cons/k", "?stale&consistent").status, 400)
        self.assertEqual(get(d, "cons/k", "?consistency=eventual").status, 400)

    def test_concurrent_reads_share_barriers(self):
        # Many default/strong reads at once all answer correctly.
        d = self.d
        put(d, "shared/k", b"v")
        results = []

        def reader(i):
            q = "?consistent" if i % 2 else ""
            results.append(get(d, "shared/k", q + ("&raw" if q else "?raw")).body)

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [b"v"] * 40)

    def test_key_rules_are_400(self):
        d = self.d
        for key in ["a/../b", "..", "x/..", "bad%00nul", "bad%FFutf8", "k" * 513, ""]:
            r = put(d, key, b"v")
            self.assertEqual(r.status, 400, key)
            self.assertEqual(r.json()["code"], "bad_request")
        self.assertEqual(put(d, "k" * 512, b"v").status, 200)
        self.assertEqual(put(d, "a..b/c.", b"v").status, 200)
        self.assertEqual(get(d, "a/../b").status, 400)
        self.assertEqual(put(d, "bad%zz", b"v").status, 400)
        self.assertEqual(put(d, "lock/k", b"v", "?acquire=abc").status, 400)

    def test_value_limit_and_other_routes_keep_theirs(self):
        d = self.d
        big = b"x" * (512 * 1024)
        self.assertEqual(put(d, "big/max", big).status, 200)
        self.assertEqual(len(get(d, "big/max", "?raw").body), len(big))
        r = put(d, "big/over", big + b"x")
        self.assertEqual(r.status, 413)
        self.assertEqual(r.json()["code"], "body_too_large")
        # Everything outside /v1/kv/ and /v1/txn keeps api.max_body_bytes.
        r = d.request("POST", "/health", body=b"x" * 70000)
        self.assertEqual(r.status, 413)
        self.assertIn(b"65536", r.body)

    def test_txn(self):
        d = self.d
        put(d, "txn/x", b"old")
        [x] = get(d, "txn/x").json()
        r = txn(d, [kv_op("set", "txn/a", b"1", flags=7), kv_op("cas", "txn/x", b"new", index=x["ModifyIndex"]),
                    kv_op("get", "txn/a"), kv_op("check-not-exists", "txn/none"), kv_op("get-tree", "txn/")])
        self.assertEqual(r.status, 200, r.body)
        body = r.json()
        self.assertIsNone(body["Errors"])
        results = [res["KV"] for res in body["Results"]]
        self.assertEqual(len(results), 5)  # set, cas, get, get-tree x2
        self.assertIsNone(results[0]["Value"])  # only get carries values
        self.assertEqual(results[0]["Flags"], 7)
        self.assertEqual(base64.b64decode(results[2]["Value"]), b"1")
        self.assertEqual(get(d, "txn/x", "?raw").body, b"new")
        # A failing op rolls back everything, 409 with every error.
        r = txn(d, [kv_op("set", "txn/rolled", b"1"), kv_op("cas", "txn/x", b"y", index=1),
                    kv_op("check-index", "txn/a", index=1)])
        self.assertEqual(r.status, 409)
        body = r.json()
        self.assertIsNone(body["Results"])
        self.assertEqual([e["OpIndex"] for e in body["Errors"]], [1, 2])
        self.assertEqual(body["Errors"][0]["What"], 'failed to set key "txn/x", index is stale')
        self.assertEqual(get(d, "txn/rolled").status, 404)
        # Read-only txns are answered without the log (Consul does the same).
        r = txn(d, [kv_op("get", "txn/x"), kv_op("check-index", "txn/x", index=x["ModifyIndex"])])
        self.assertEqual(r.status, 409)
        self.assertIn("current modify index", r.json()["Errors"][0]["What"])
        r = txn(d, [kv_op("get", "txn/x")], "?stale")
        self.assertEqual(r.status, 200)
        self.assertIn("x-consul-index", r.headers)
        # Deletes.
        r = txn(d, [kv_op("delete-tree", "txn/"), kv_op("delete-cas", "txn/none", index=3)])
        self.assertEqual(r.status, 200)
        self.assertEqual(get(d, "txn/", "?recurse").status, 404)

    def test_txn_refusals(self):
        d = self.d
        r = txn(d, [kv_op("get", "k")] * 65)
        self.assertEqual(r.status, 413)
        self.assertIn("too many operations (65 > 64)", r.json()["error"])
        self.assertEqual(txn(d, [kv_op("get", "k")] * 64).status, 409)  # 64 is fine (key missing)
        self.assertEqual(d.request("PUT", "/v1/txn", body=b"not json").status, 400)
        self.assertEqual(txn(d, [{"KV": {"Verb": "lock", "Key": "k"}}]).status, 400)
        self.assertEqual(txn(d, [kv_op("set", "a/../b", b"v")]).status, 400)
        self.assertEqual(txn(d, [{"KV": {"Verb": "set", "Key": "k", "Value": "%%%"}}]).status, 400)

    def test_idempotent_writes(self):
        d = self.d
        h = {"Idempotency-Key": "op-1"}
        r1 = put(d, "idem/k", b"v1", headers=h)
        self.assertEqual(r1.status, 200)
        self.assertNotIn("idempotent-replayed", r1.headers)
        put(d, "idem/k", b"changed")
        r2 = put(d, "idem/k", b"v1", headers=h)
        self.assertEqual((r2.status, r2.body), (200, b"true\n"))
        self.assertEqual(r2.headers.get("idempotent-replayed"), "true")
        self.assertEqual(get(d, "idem/k", "?raw").body, b"changed")  # not applied twice
        r3 = put(d, "idem/k", b"other body", headers=h)
        self.assertEqual(r3.status, 422)
        self.assertEqual(r3.json()["code"], "idempotency_key_reused")
        # Txns too: the replay carries the first answer.
        ops = [kv_op("set", "idem/t", b"1"), kv_op("get", "idem/k")]
        t1 = d.request("PUT", "/v1/txn", body=json.dumps(ops), headers={"Idempotency-Key": "t-1"})
        put(d, "idem/k", b"changed again")
        t2 = d.request("PUT", "/v1/txn", body=json.dumps(ops), headers={"Idempotency-Key": "t-1"})
        self.assertEqual(t1.body, t2.body)
        self.assertEqual(t2.headers.get("idempotent-replayed"), "true")
        self.assertEqual(put(d, "idem/k", b"v", headers={"Idempotency-Key": "x" * 129}).status, 400)

    def test_blocking_read_wakes_on_change(self):
        d = self.d
        put(d, "watch/k", b"1")
        index = int(get(d, "watch/k").headers["x-consul-index"])
        got = {}

        def watcher():
            t0 = time.monotonic()
            got["r"] = get(d, "watch/k", f"?index={index}&wait=10s", timeout=15)
            got["elapsed"] = time.monotonic() - t0

        t = threading.Thread(target=watcher)
        t.start()
        time.sleep(0.5)
        self.assertTrue(t.is_alive(), "the blocking read returned before any change")
        put(d, "watch/k", b"2")
        t.join(scaled(5))
        r = got["r"]
        self.assertEqual(r.status, 200)
        self.assertEqual(value_of(r.json()[0]), b"2")
        self.assertGreater(int(r.headers["x-consul-index"]), index)
        self.assertLess(got["elapsed"], scaled(3))
        # index=0 and an index already passed answer at once.
        t0 = time.monotonic()
        get(d, "watch/k", "?index=0&wait=10s")
        get(d, "watch/k", f"?index={index}&wait=10s")
        self.assertLess(time.monotonic() - t0, scaled(1))

    def test_blocking_read_times_out_with_jitter(self):
        d = self.d
        put(d, "watch/t", b"1")
        index = int(get(d, "watch/t").headers["x-consul-index"])
        t0 = time.monotonic()
        r = get(d, "watch/t", f"?index={index}&wait=1s", timeout=10)
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 200)
        self.assertEqual(int(r.headers["x-consul-index"]), index)  # nothing changed
        self.assertGreater(elapsed, 0.9)  # 1 s - 1/16
        self.assertLess(elapsed, scaled(1.5))
        self.assertEqual(get(d, "watch/t", f"?index={index}&wait=soon").status, 400)

    def test_ready_and_writes_report_the_index(self):
        self.assertEqual(self.d.request("GET", "/ready").status, 200)
        r1 = put(self.d, "idx/a", b"1")
        r2 = put(self.d, "idx/a", b"2")
        self.assertGreater(int(r2.headers["x-rampart-index"]), int(r1.headers["x-rampart-index"]))


class KvAuth(unittest.TestCase):
    def test_tokens_are_required(self):
        node = Node({"auth": {"enabled": True, "bootstrap_token": TOKEN}})
        try:
            d = node.start()
            self.assertEqual(put(d, "k", b"v").status, 401)
            self.assertEqual(get(d, "k").status, 401)
            self.assertEqual(txn(d, []).status, 401)
            self.assertEqual(put(d, "k", b"v", headers=AUTH).status, 200)
            self.assertEqual(get(d, "k", "?raw", headers=AUTH).body, b"v")
        finally:
            node.cleanup()


class KvStoreFull(unittest.TestCase):
    def test_507_and_reads_keep_working(self):
        node = Node({"cluster": {"max_store_bytes": 4096}})
        try:
            d = node.start()
            self.assertEqual(put(d, "a", b"x" * 3000).status, 200)
            r = put(d, "b", b"x" * 2000)
            self.assertEqual(r.status, 507)
            self.assertEqual(r.json()["code"], "store_full")
            self.assertIn("cluster.max_store_bytes", r.json()["error"])
            r = txn(d, [kv_op("set", "c", b"x" * 2000)])
            self.assertEqual(r.status, 507)
            self.assertEqual(get(d, "a", "?raw").body, b"x" * 3000)  # reads still work
            self.assertEqual(get(d, "b").status, 404)
            self.assertEqual(d.request("DELETE", "/v1/kv/a").status, 200)  # deletes free space
            self.assertEqual(put(d, "b", b"x" * 2000).status, 200)
        finally:
            node.cleanup()


class KvDurability(unittest.TestCase):
    def test_restart_keeps_data_and_index_never_goes_back(self):
        # A low snapshot threshold: the restart restores a snapshot and
        # replays the log after it.
        node = Node({"cluster": {"snapshot_threshold": 16, "snapshot_trailing": 4}})
        try:
            d = node.start()
            for i in range(100):
                self.assertEqual(put(d, f"p/{i:03}", f"value-{i}".encode()).status, 200)
            put(d, "p/050", b"updated", "?flags=9")
            d.request("DELETE", "/v1/kv/p/099")
            before = get(d, "p/", "?recurse")
            index_before = int(before.headers["x-consul-index"])
            self.assertTrue(os.listdir(os.path.join(node.dir, "data", "raft")))
            self.assertTrue(any(n.startswith("snapshot") for n in os.listdir(os.path.join(node.dir, "data", "raft"))))
            d = node.start()
            self.assertTrue(any(e.get("msg") == "store recovered from disk" for e in d.log_entries()))
            after = get(d, "p/", "?recurse")
            self.assertEqual(after.json(), before.json())
            self.assertGreaterEqual(int(after.headers["x-consul-index"]), index_before)
            # A watcher from before the restart keeps its place.
            self.assertEqual(int(get(d, "p/000", f"?index={index_before}&wait=100ms").headers["x-consul-index"]),
                             index_before)
            self.assertEqual(put(d, "p/new", b"n").status, 200)
            self.assertGreater(int(get(d, "p/new").headers["x-consul-index"]), index_before)
        finally:
            node.cleanup()

    def test_sigterm_answers_blocking_reads(self):
        node = Node()
        try:
            d = node.start()
            put(d, "k", b"v")
            got = {}
            t = threading.Thread(target=lambda: got.update(r=get(d, "k", "?index=999999&wait=60s", timeout=30)))
            t.start()
            time.sleep(0.3)
            t0 = time.monotonic()
            d.signal(signal.SIGTERM)
            self.assertEqual(d.wait(), 0)
            t.join(scaled(5))
            self.assertLess(time.monotonic() - t0, scaled(5))
            self.assertEqual(got["r"].status, 200)
        finally:
            node.cleanup()

    def test_kill9_loses_no_acknowledged_write(self):
        node = Node({"cluster": {"snapshot_threshold": 64, "snapshot_trailing": 16}})
        acked = {}
        try:
            for rnd in range(5):
                d = node.start()
                state = {"stop": False}

                def writer():
                    conn = http.client.HTTPConnection(d.host, d.port, timeout=5)
                    i = 0
                    while not state["stop"]:
                        key, value = f"crash/{rnd}-{i:05}", f"{rnd}:{i}:" + "v" * (i % 300)
                        try:
                            conn.request("PUT", f"/v1/kv/{key}", body=value)
                            resp = conn.getresponse()
                            body = resp.read()
                        except (OSError, http.client.HTTPException):
                            return
                        if resp.status == 200 and body == b"true\n":
                            acked[key] = value.encode()
                        i += 1

                t = threading.Thread(target=writer)
                t.start()
                time.sleep(scaled(1.5))
                node.kill9()
                state["stop"] = True
                t.join(scaled(10))
                self.assertGreater(len(acked), rnd * 10)
            d = node.start()
            stored = {k: value_of(e) for k, e in entries(get(d, "crash/", "?recurse")).items()}
            missing = [k for k in acked if k not in stored]
            self.assertEqual(missing, [], f"{len(missing)} acknowledged writes lost")
            for k, v in acked.items():
                self.assertEqual(stored[k], v, k)
            # Writes never acknowledged (in flight at the kill) are whole or absent.
            for k, v in stored.items():
                if k not in acked:
                    rnd, i = k.split("/")[1].split("-")
                    self.assertEqual(v, f"{rnd}:{int(i)}:".encode() + b"v" * (int(i) % 300), k)
        finally:
            node.cleanup()


class StoreDocExamples(unittest.TestCase):
    """Every "$ command" in the fenced blocks between docs/store.md's
    kv-examples markers runs, in order, against a fresh node with auth on,
    and prints what the doc says."""

    def test_doc_examples(self):
        node = Node({"auth": {"enabled": True, "bootstrap_token": TOKEN}})
        try:
            d = node.start()
            env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
            env["AUTH"] = f"Authorization: Bearer {TOKEN}"
            run_doc_examples(self, "store.md", "kv-examples", env, min_steps=10, strip_cr=True,
                             command_subs={"localhost:7700": d.address})
        finally:
            node.cleanup()


if __name__ == "__main__":
    unittest.main()
