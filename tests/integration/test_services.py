"""The services catalog with TTL checks through HTTP (issue 5), in Consul's
shapes: /v1/agent/service/register|deregister, /v1/agent/check/pass|warn|
fail|update, /v1/agent/services|checks, /v1/catalog/services|service,
/v1/health/service|checks|state; TTL lapse -> critical by the leader's
clock, blocking health queries woken by a check change, restart persistence
(with snapshots), refusals (400/401/404/413), and the docs/store.md examples.
"""
import json
import os
import threading
import time
import unittest

from harness import run_doc_examples, scaled
from test_kv import Node

TOKEN = "svc-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AUTH_CONFIG = {"auth": {"enabled": True, "bootstrap_token": TOKEN}}


def put(d, path, body=b"", headers=None):
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    return d.request("PUT", path, body=body, headers={**AUTH, **(headers or {})})


def get(d, path, timeout=5):
    return d.request("GET", path, headers=AUTH, timeout=timeout)


def register(d, definition, headers=None):
    return put(d, "/v1/agent/service/register", definition, headers)


def index_of(r):
    return int(r.headers["x-consul-index"])


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def check_status(d, check_id):
    return {c["CheckID"]: c["Status"] for c in get(d, "/v1/health/state/any").json()}.get(check_id)


class ServicesApi(unittest.TestCase):
    """One node with auth on; each test uses its own service names."""

    @classmethod
    def setUpClass(cls):
        cls.node = Node(AUTH_CONFIG)
        cls.d = cls.node.start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def test_register_and_read_every_shape(self):
        d = self.d
        r = register(d, {"ID": "shop-1", "Name": "shop", "Address": "10.0.0.5", "Port": 8080,
                         "Tags": ["v2", "blue"], "Meta": {"env": "prod"}, "Check": {"TTL": "30s"}})
        self.assertEqual((r.status, r.body), (200, b""), r.body)
        write_index = int(r.headers["x-rampart-index"])
        register(d, {"ID": "shop-2", "Name": "shop", "Port": 8081, "Tags": ["v2"]})

        r = get(d, "/v1/agent/services")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["shop-1"], {
            "ID": "shop-1", "Service": "shop", "Tags": ["v2", "blue"], "Meta": {"env": "prod"}, "Port": 8080,
            "Address": "10.0.0.5", "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": False,
            "Datacenter": "dc1"})
        self.assertEqual(r.headers["x-consul-index"], r.headers["x-rampart-index"])
        self.assertGreaterEqual(index_of(r), write_index)

        self.assertEqual(get(d, "/v1/catalog/services").json()["shop"], ["blue", "v2"])

        [one, two] = get(d, "/v1/catalog/service/shop").json()
        self.assertEqual((one["ServiceID"], one["ServiceAddress"], one["ServicePort"]), ("shop-1", "10.0.0.5", 8080))
        self.assertEqual(one["ServiceMeta"], {"env": "prod"})
        self.assertEqual(one["CreateIndex"], write_index)
        self.assertEqual(one["Address"], "127.0.0.1")  # the node's, for clients that fall back to it
        self.assertEqual(two["ServiceTags"], ["v2"])
        self.assertEqual([s["ServiceID"] for s in get(d, "/v1/catalog/service/shop?tag=blue").json()], ["shop-1"])
        self.assertEqual(get(d, "/v1/catalog/service/nothing-here").json(), [])

        # TTL checks start critical, as in Consul.
        entries = get(d, "/v1/health/service/shop").json()
        self.assertEqual([e["Service"]["ID"] for e in entries], ["shop-1", "shop-2"])
        [chk] = entries[0]["Checks"]
        self.assertEqual((chk["CheckID"], chk["Name"], chk["Status"], chk["Type"], chk["ServiceName"]),
                         ("service:shop-1", "Service 'shop' check", "critical", "ttl", "shop"))
        self.assertEqual(entries[1]["Checks"], [])
        # ?passing: a service whose checks all pass (none counts).
        self.assertEqual([e["Service"]["ID"] for e in get(d, "/v1/health/service/shop?passing").json()], ["shop-2"])
        r = put(d, "/v1/agent/check/pass/service:shop-1?note=all%20good")
        self.assertEqual((r.status, r.body), (200, b""))
        passing = get(d, "/v1/health/service/shop?passing=true").json()
        self.assertEqual([e["Service"]["ID"] for e in passing], ["shop-1", "shop-2"])
        self.assertEqual(passing[0]["Checks"][0]["Output"], "all good")

        [c] = get(d, "/v1/health/checks/shop").json()
        self.assertEqual((c["CheckID"], c["Status"], c["ServiceID"]), ("service:shop-1", "passing", "shop-1"))
        self.assertIn("service:shop-1", get(d, "/v1/agent/checks").json())
        self.assertIn("service:shop-1", [c["CheckID"] for c in get(d, "/v1/health/state/passing").json()])
        self.assertNotIn("service:shop-1", [c["CheckID"] for c in get(d, "/v1/health/state/critical").json()])
        r = get(d, "/v1/health/state/sideways")
        self.assertEqual(r.status, 400)
        self.assertIn("any, passing, warning or critical", r.json()["error"])
        # Stale and strong reads answer the same.
        self.assertEqual(get(d, "/v1/health/checks/shop?stale").json(), get(d, "/v1/health/checks/shop?consistent").json())

    def test_warn_fail_update_and_unknown_ids(self):
        d = self.d
        register(d, {"Name": "cache", "Checks": [{"CheckID": "cache-mem", "TTL": "1m"}, {"TTL": "1m"}]})
        self.assertEqual(check_status(d, "service:cache:2"), "critical")
        put(d, "/v1/agent/check/warn/cache-mem?note=swapping")
        self.assertEqual(check_status(d, "cache-mem"), "warning")
        put(d, "/v1/agent/check/fail/cache-mem")
        self.assertEqual(check_status(d, "cache-mem"), "critical")
        r = put(d, "/v1/agent/check/update/cache-mem", {"Status": "passing", "Output": "recovered"})
        self.assertEqual(r.status, 200, r.body)
        [c] = [c for c in get(d, "/v1/health/checks/cache").json() if c["CheckID"] == "cache-mem"]
        self.assertEqual((c["Status"], c["Output"]), ("passing", "recovered"))
        # Consul cuts long output at 4 KiB.
        put(d, "/v1/agent/check/update/cache-mem", {"Status": "passing", "Output": "x" * 10000})
        [c] = [c for c in get(d, "/v1/health/checks/cache").json() if c["CheckID"] == "cache-mem"]
        self.assertEqual(len(c["Output"]), 4096)
        for path in ("/v1/agent/check/pass/no-such-check", "/v1/agent/service/deregister/no-such-service"):
            r = put(d, path)
            self.assertEqual(r.status, 404, path)
            self.assertEqual(r.json()["code"], "not_found")
        r = put(d, "/v1/agent/check/update/cache-mem", {"Status": "fine"})
        self.assertEqual(r.status, 400)
        self.assertIn("Status must be passing, warning or critical", r.json()["error"])

    def test_deregister_removes_service_and_checks(self):
        d = self.d
        register(d, {"ID": "tmp-1", "Name": "tmp", "Check": {"TTL": "10s"}})
        r = put(d, "/v1/agent/service/deregister/tmp-1")
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertEqual(get(d, "/v1/catalog/service/tmp").json(), [])
        self.assertNotIn("tmp", get(d, "/v1/catalog/services").json())
        self.assertIsNone(check_status(d, "service:tmp-1"))

    def test_ttl_lapse_turns_critical(self):
        d = self.d
        register(d, {"ID": "beat-1", "Name": "beat", "Check": {"TTL": "1s", "Status": "passing"}})
        put(d, "/v1/agent/check/pass/service:beat-1?note=alive")
        before = get(d, "/v1/health/checks/beat")
        self.assertEqual(before.json()[0]["Status"], "passing")
        t0 = time.monotonic()
        wait_for(lambda: check_status(d, "service:beat-1") == "critical", 5, "the TTL to lapse")
        self.assertGreater(time.monotonic() - t0, 0.5)  # not before the TTL
        after = get(d, "/v1/health/checks/beat")
        self.assertEqual(after.json()[0]["Output"], "TTL expired (last output before timeout follows): alive")
        self.assertGreater(index_of(after), index_of(before))
        # Heartbeats within the TTL keep it passing.
        put(d, "/v1/agent/check/pass/service:beat-1")
        for _ in range(6):
            time.sleep(0.3)
            put(d, "/v1/agent/check/pass/service:beat-1")
            self.assertEqual(check_status(d, "service:beat-1"), "passing")

    def test_blocking_health_query(self):
        d = self.d
        register(d, {"ID": "blk-1", "Name": "blk", "Check": {"TTL": "30s"}})
        index = index_of(get(d, "/v1/health/service/blk"))
        got = {}

        def watch():
            t = time.monotonic()
            got["r"] = get(d, f"/v1/health/service/blk?index={index}&wait=20s", timeout=30)
            got["took"] = time.monotonic() - t

        t = threading.Thread(target=watch)
        t.start()
        time.sleep(0.5)
        self.assertNotIn("r", got)  # still parked
        put(d, "/v1/agent/check/pass/service:blk-1")
        t.join(scaled(5))
        self.assertIn("r", got, "the blocking query was not woken")
        self.assertLess(got["took"], scaled(5))
        self.assertGreater(index_of(got["r"]), index)
        self.assertEqual(got["r"].json()[0]["Checks"][0]["Status"], "passing")
        # A heartbeat that changes nothing visible does not wake watchers:
        # the read runs out its wait and answers with the same index.
        index = index_of(got["r"])
        threading.Timer(0.2, lambda: put(d, "/v1/agent/check/pass/service:blk-1")).start()
        t0 = time.monotonic()
        r = get(d, f"/v1/health/service/blk?index={index}&wait=1s")
        self.assertGreater(time.monotonic() - t0, 0.8)
        self.assertEqual(index_of(r), index)
        # The TTL lapsing wakes a blocking query too.
        register(d, {"ID": "blk-2", "Name": "blk2", "Check": {"TTL": "1s", "Status": "passing"}})
        index = index_of(get(d, "/v1/health/service/blk2"))
        r = get(d, f"/v1/health/service/blk2?index={index}&wait=10s", timeout=15)
        self.assertEqual(r.json()[0]["Checks"][0]["Status"], "critical")

    def test_refusals(self):
        d = self.d
        cases = [
            (b"{not json", "not valid JSON"),
            (b'["a"]', "JSON object"),
            ({"ID": "x"}, "missing service Name"),
            ({"Name": 42}, "Name must be a string"),
            ({"Name": "w", "Port": "80"}, "Port must be an integer"),
            ({"Name": "w", "Port": -1}, "Port must be an integer"),
            ({"Name": "w", "Tags": "a,b"}, "Tags must be an array of strings"),
            ({"Name": "w", "Meta": {"k": 1}}, "Meta must be an object of strings"),
            ({"Name": "w", "Meta": {"bad key": "v"}}, "meta key"),
            ({"Name": "w", "Check": {"HTTP": "http://localhost/", "Interval": "10s"}}, "only TTL checks"),
            ({"Name": "w", "Check": {"TTL": "fortnight"}}, "TTL must be a duration"),
            ({"Name": "w", "Checks": [{"TTL": "1s", "CheckID": "a"}, {"TTL": "1s", "CheckID": "a"}]}, "twice"),
            ({"Name": "n" * 257}, "over the limit"),
            ({"Name": "w", "Tags": ["t"] * 65}, "more than 64 Tags"),
        ]
        for body, says in cases:
            r = register(d, body)
            self.assertEqual(r.status, 400, body)
            self.assertEqual(r.json()["code"], "bad_request")
            self.assertIn(says, r.json()["error"], body)
        r = register(d, {"Name": "big", "Meta": {"k": "v" * 70000}})
        self.assertEqual(r.status, 413)
        self.assertEqual(r.json()["code"], "body_too_large")
        r = put(d, "/v1/agent/check/pass/x?note=%ff")
        self.assertEqual(r.status, 400)
        self.assertIn("UTF-8", r.json()["error"])
        self.assertEqual(d.request("GET", "/v1/agent/service/register", headers=AUTH).status, 405)
        # Nothing was registered by any of them.
        self.assertFalse({"w", "big", "n" * 257} & set(get(d, "/v1/catalog/services").json()))

    def test_tokens_and_idempotent_writes(self):
        d = self.d
        self.assertEqual(d.request("PUT", "/v1/agent/service/register", body=b'{"Name":"a"}').status, 401)
        self.assertEqual(d.request("GET", "/v1/health/service/a").status, 401)
        key = {"Idempotency-Key": "reg-7"}
        r1 = register(d, {"Name": "idem"}, key)
        r2 = register(d, {"Name": "idem"}, key)
        self.assertEqual((r1.status, r2.status), (200, 200))
        self.assertEqual(r2.headers.get("idempotent-replayed"), "true")
        r3 = register(d, {"Name": "idem", "Port": 1}, key)
        self.assertEqual(r3.status, 422)


class ServicesDurability(unittest.TestCase):
    def test_restart_keeps_catalog_and_ttl_keeps_running(self):
        # A low snapshot threshold: the restart restores a snapshot (with
        # the catalog in it) and replays the log after it.
        node = Node({**AUTH_CONFIG, "cluster": {"snapshot_threshold": 16, "snapshot_trailing": 4}})
        try:
            d = node.start()
            register(d, {"ID": "db-1", "Name": "db", "Port": 5432, "Tags": ["primary"],
                         "Checks": [{"CheckID": "db-ping", "TTL": "2s"}, {"CheckID": "db-disk", "TTL": "1h"}]})
            put(d, "/v1/agent/check/warn/db-disk?note=80%25")
            for i in range(40):
                self.assertEqual(put(d, f"/v1/kv/fill/{i}", b"x").status, 200)
            put(d, "/v1/agent/check/pass/db-ping?note=ok")
            before = get(d, "/v1/health/service/db")
            raft = os.path.join(node.dir, "data", "raft")
            self.assertTrue(any(n.startswith("snapshot") for n in os.listdir(raft)))
            d = node.start()
            after = get(d, "/v1/health/service/db")
            self.assertGreaterEqual(index_of(after), index_of(before))
            self.assertEqual(after.json()[0]["Service"], before.json()[0]["Service"])
            statuses = {c["CheckID"]: (c["Status"], c["Output"]) for c in after.json()[0]["Checks"]}
            self.assertEqual(statuses["db-disk"], ("warning", "80%"))
            # The 2 s TTL still lapses after the restart, with no writes.
            wait_for(lambda: check_status(d, "db-ping") == "critical", 8, "the TTL to lapse after a restart")
            self.assertEqual(check_status(d, "db-disk"), "warning")
        finally:
            node.cleanup()


class ServicesDocExamples(unittest.TestCase):
    """Every "$ command" in the fenced blocks between docs/store.md's
    services-examples markers runs, in order, against a fresh node with auth
    on, and prints what the doc says."""

    def test_doc_examples(self):
        node = Node(AUTH_CONFIG)
        try:
            d = node.start()
            env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
            env["AUTH"] = f"Authorization: Bearer {TOKEN}"
            run_doc_examples(self, "store.md", "services-examples", env, min_steps=8, strip_cr=True,
                             command_subs={"localhost:7700": d.address})
        finally:
            node.cleanup()


if __name__ == "__main__":
    unittest.main()
