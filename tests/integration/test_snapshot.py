"""Snapshots, recovery and state.json (issue 5, "Durability and recovery"):
GET/PUT /v1/snapshot and `rampartctl snapshot save|restore|inspect`, a
restore that wakes blocking reads with the new index, damaged snapshot files
refused with nothing changed, a corrupt newest engine snapshot set aside on
restart with the data intact, and the seed's state.json v1 -> v2 migration:
success, and failures that exit 78 with the v1 file restored.

Data directories live under /var/tmp (a real disk), never tmpfs.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import Daemon, RAMPARTCTL, doc_console_steps, scaled

TOKEN = "snapshot-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AUTH_CONFIG = {"auth": {"enabled": True, "bootstrap_token": TOKEN}}
V1 = '{"schema_version": 1, "node_id": "node_1", "raft_id": 1, "created_at": "2024-05-06T07:08:09Z"}\n'


class Node:
    """A daemon in its own /var/tmp directory that can be restarted."""

    def __init__(self, config=None):
        self.dir = tempfile.mkdtemp(prefix="rampart-snap-", dir="/var/tmp")
        self.data = os.path.join(self.dir, "data")
        self.config = config or {}
        self.starts = 0
        self.d = None

    def daemon(self):
        if self.d is not None:
            self.d.stop()
            os.rename(self.d.log_path, f"{self.d.log_path}.{self.starts}")
        self.starts += 1
        self.d = Daemon(config=self.config, workdir=self.dir)
        return self.d

    def start(self):
        d = self.daemon()
        d.start()
        wait_ready(d)
        return d

    def stop(self):
        if self.d is not None:
            self.d.stop()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def audit(self):
        with open(os.path.join(self.data, "audit.jsonl")) as f:
            return [json.loads(line) for line in f]


def wait_ready(d, timeout=10):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if d.request("GET", "/ready").status == 200:
            return
        time.sleep(0.02)
    raise AssertionError("node never became ready")


def put(d, key, value):
    r = d.request("PUT", f"/v1/kv/{key}", body=value, headers=AUTH)
    assert r.status == 200 and r.body.strip() == b"true", r
    return int(r.headers["x-rampart-index"])


def get_raw(d, key):
    r = d.request("GET", f"/v1/kv/{key}?raw", headers=AUTH)
    return r.body if r.status == 200 else None


def ctl(d, *args, check=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    env["RAMPART_HTTP_ADDR"] = d.address
    env["RAMPART_HTTP_TOKEN"] = TOKEN
    return subprocess.run([RAMPARTCTL, *args], env=env, capture_output=True, text=True, timeout=scaled(30))


def inspect(path):
    return subprocess.run([RAMPARTCTL, "snapshot", "inspect", path], capture_output=True, text=True,
                          timeout=scaled(10))


def assert_ids_increase(test, events):
    ids = [e["audit_id"] for e in events]
    test.assertEqual(ids, list(range(ids[0], ids[0] + len(ids))), ids)


class SnapshotApi(unittest.TestCase):
    def setUp(self):
        self.node = Node(AUTH_CONFIG)
        self.d = self.node.start()
        self.tmp = tempfile.mkdtemp(prefix="rampart-snapfiles-", dir="/var/tmp")

    def tearDown(self):
        self.node.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_save_inspect_restore(self):
        d = self.d
        put(d, "app/a", b"one")
        put(d, "app/b", b"two" * 100)
        # Through HTTP: a file of ours, admin only.
        r = d.request("GET", "/v1/snapshot", headers=AUTH)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body[:8], b"RMPSNAPF")
        self.assertEqual(r.headers["content-type"], "application/octet-stream")
        self.assertRegex(r.headers["x-rampart-snapshot-checksum"], r"^crc32c:[0-9a-f]{8}$")
        self.assertEqual(d.request("GET", "/v1/snapshot").status, 401)
        # Through rampartctl, and inspected offline.
        path = os.path.join(self.tmp, "before.snap")
        out = ctl(d, "snapshot", "save", path)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"^saved .*before\.snap: index \d+, 2 keys, \d+ bytes, crc32c:[0-9a-f]{8}\n$")
        self.assertEqual(oct(os.stat(path).st_mode & 0o777), "0o600")
        out = inspect(path)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"keys:      2\n")
        self.assertRegex(out.stdout, r"checksum:  crc32c:[0-9a-f]{8} OK\n")
        self.assertRegex(out.stdout, rf"size:      {os.path.getsize(path)} bytes\n")
        info = json.loads(subprocess.run([RAMPARTCTL, "--json", "snapshot", "inspect", path], capture_output=True,
                                         text=True).stdout)
        self.assertTrue(info["ok"])
        self.assertEqual(info["keys"], 2)
        # Change things, then restore with rampartctl: back as saved.
        put(d, "app/c", b"three")
        put(d, "app/a", b"changed")
        before = put(d, "app/d", b"four")
        out = ctl(d, "snapshot", "restore", path)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"^restored .*: 2 keys, now at index \d+\n$")
        self.assertEqual(get_raw(d, "app/a"), b"one")
        self.assertEqual(get_raw(d, "app/b"), b"two" * 100)
        self.assertIsNone(get_raw(d, "app/c"))
        # The index moved forward, never back.
        r = d.request("GET", "/v1/kv/app/a", headers=AUTH)
        self.assertGreater(int(r.headers["x-rampart-index"]), before)
        # And through HTTP.
        with open(path, "rb") as f:
            data = f.read()
        put(d, "app/e", b"five")
        r = d.request("PUT", "/v1/snapshot", body=data, headers=AUTH)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["keys"], 2)
        self.assertIsNone(get_raw(d, "app/e"))
        # Audited.
        events = [e for e in self.node.audit() if e["event"] == "snapshot_restore"]
        self.assertEqual(len(events), 2)
        self.assertEqual(events[1]["fields"]["keys"], 2)
        # A restart keeps the restored state.
        d = self.node.start()
        self.assertEqual(get_raw(d, "app/a"), b"one")
        self.assertIsNone(get_raw(d, "app/d"))

    def test_restore_wakes_blocking_read(self):
        d = self.d
        put(d, "w/x", b"1")
        path = os.path.join(self.tmp, "w.snap")
        self.assertEqual(ctl(d, "snapshot", "save", path).returncode, 0)
        index = put(d, "w/y", b"2")
        result = {}

        def watch():
            t0 = time.monotonic()
            r = d.request("GET", f"/v1/kv/w/x?index={index}&wait=30s", headers=AUTH, timeout=40)
            result["elapsed"] = time.monotonic() - t0
            result["r"] = r

        t = threading.Thread(target=watch)
        t.start()
        time.sleep(0.5)  # parked
        self.assertNotIn("r", result)
        out = ctl(d, "snapshot", "restore", path)
        self.assertEqual(out.returncode, 0, out.stderr)
        t.join(scaled(10))
        self.assertIn("r", result, "the blocking read did not return after the restore")
        self.assertLess(result["elapsed"], scaled(5))
        self.assertEqual(result["r"].status, 200)
        self.assertGreater(int(result["r"].headers["x-rampart-index"]), index)

    def test_damaged_files_are_refused_and_nothing_changes(self):
        d = self.d
        put(d, "k/a", b"1")
        path = os.path.join(self.tmp, "good.snap")
        self.assertEqual(ctl(d, "snapshot", "save", path).returncode, 0)
        with open(path, "rb") as f:
            good = f.read()
        put(d, "k/b", b"2")
        flipped = bytearray(good)
        flipped[-3] ^= 0x01
        header_flip = bytearray(good)
        header_flip[20] ^= 0x01
        cases = {
            "truncated": (good[:-10], "truncated"),
            "short": (good[:20], "shorter than the header"),
            "flipped": (bytes(flipped), "checksum mismatch"),
            "header": (bytes(header_flip), "header checksum mismatch"),
            "garbage": (os.urandom(4096), "bad magic"),
            "empty": (b"", "shorter than the header"),
            "extended": (good + b"\0", "unexpected bytes"),
        }
        for name, (data, why) in cases.items():
            with self.subTest(name):
                r = d.request("PUT", "/v1/snapshot", body=data, headers=AUTH)
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.json()["code"], "bad_snapshot")
                self.assertIn(why, r.json()["error"])
                bad = os.path.join(self.tmp, name + ".snap")
                with open(bad, "wb") as f:
                    f.write(data)
                out = inspect(bad)
                self.assertEqual(out.returncode, 1)
                self.assertIn("BAD", out.stdout)
                out = ctl(d, "snapshot", "restore", bad)
                self.assertEqual(out.returncode, 1)
                self.assertIn("nothing was restored", out.stderr)
                self.assertEqual(get_raw(d, "k/b"), b"2")
        self.assertEqual(ctl(d, "snapshot", "restore", "/nonexistent.snap").returncode, 1)
        self.assertEqual(ctl(d, "snapshot", "frobnicate", path).returncode, 2)


class EngineSnapshotRecovery(unittest.TestCase):
    def test_corrupt_newest_snapshot_is_skipped(self):
        # Snapshots every 16 entries; the log keeps 64 behind each, so it
        # reaches back past the previous snapshot.
        node = Node({**AUTH_CONFIG, "cluster": {"snapshot_threshold": 16, "snapshot_trailing": 64,
                                                "snapshot_retention": 2}})
        try:
            d = node.start()
            for i in range(100):
                put(d, f"r/{i:03d}", f"v{i}".encode())
            node.stop()
            raft = os.path.join(node.data, "raft")
            snaps = sorted((p for p in glob.glob(os.path.join(raft, "snapshot-*")) if not p.endswith(".meta")),
                           key=lambda p: int(os.path.basename(p).split("-")[2]))
            self.assertGreaterEqual(len(snaps), 2, os.listdir(raft))
            self.assertLessEqual(len(snaps), 2)  # retention
            newest = snaps[-1]
            with open(newest, "r+b") as f:
                f.seek(os.path.getsize(newest) - 5)
                b = f.read(1)
                f.seek(-1, 1)
                f.write(bytes([b[0] ^ 0xFF]))
            d = node.start()
            d.wait_log(lambda e: "corrupt snapshot set aside" in e.get("msg", ""))
            self.assertTrue(os.path.exists(newest + ".corrupt"))
            self.assertTrue(os.path.exists(newest + ".meta.corrupt"))
            for i in range(100):
                self.assertEqual(get_raw(d, f"r/{i:03d}"), f"v{i}".encode(), i)
            events = [e for e in node.audit() if e["event"] == "snapshot_corrupt"]
            self.assertEqual(len(events), 1)
            self.assertIn(os.path.basename(newest), events[0]["fields"]["snapshot"])
            # And it keeps working: writes, another restart.
            put(d, "r/after", b"yes")
            d = node.start()
            self.assertEqual(get_raw(d, "r/after"), b"yes")
            self.assertEqual(get_raw(d, "r/050"), b"v50")
        finally:
            node.cleanup()


class StateFile(unittest.TestCase):
    def test_new_node_writes_v2(self):
        node = Node()
        try:
            node.start()
            with open(os.path.join(node.data, "state.json")) as f:
                state = json.load(f)
            self.assertEqual(state["schema_version"], 2)
            self.assertEqual(state["node_id"], "node_1")
            self.assertEqual(state["raft_id"], 1)
            self.assertRegex(state["configuration_hash"], r"^sha256:[0-9a-f]{64}$")
            self.assertIn("rampart", state["versions"])
            self.assertEqual(node.audit()[0]["event"], "state_created")
        finally:
            node.cleanup()

    def test_v1_is_migrated_on_start(self):
        node = Node()
        try:
            os.makedirs(node.data)
            with open(os.path.join(node.data, "state.json"), "w") as f:
                f.write(V1)
            d = node.start()
            d.wait_log(lambda e: e.get("msg") == "State migration v1 -> v2 completed successfully")
            with open(os.path.join(node.data, "state.json")) as f:
                state = json.load(f)
            self.assertEqual(state["schema_version"], 2)
            self.assertEqual(state["created_at"], "2024-05-06T07:08:09Z")
            with open(os.path.join(node.data, "state.backup.v1")) as f:
                self.assertEqual(f.read(), V1)
            # The seed's manual check works as written.
            out = subprocess.run(["sha256sum", "-c", "state.backup.v1.sha256"], cwd=node.data,
                                 capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            steps = [e["fields"]["step"] for e in node.audit() if e["event"] == "state_migration"]
            self.assertEqual(steps, ["start", "backup", "checksum", "load", "convert", "save", "verify", "replace",
                                     "complete"])
            # audit_ids keep increasing across restarts.
            d = node.start()
            assert_ids_increase(self, node.audit())
            self.assertGreater(len(node.audit()), 9)
        finally:
            node.cleanup()

    def check_failed_migration(self, prepare, original, step):
        node = Node()
        try:
            os.makedirs(node.data)
            with open(os.path.join(node.data, "state.json"), "w") as f:
                f.write(original)
            prepare(node.data)
            d = node.daemon()
            d.start(wait=False)
            self.assertEqual(d.wait(), 78, d.log_text())
            with open(os.path.join(node.data, "state.json")) as f:
                self.assertEqual(f.read(), original)
            self.assertFalse(os.path.isfile(os.path.join(node.data, "state.v2.json")))
            crit = [e for e in d.log_entries() if e.get("msg", "").startswith("CRITICAL")]
            self.assertEqual(len(crit), 1, d.log_text())
            self.assertEqual(crit[0]["step"], step)
            events = [e for e in node.audit() if e["event"] == "state_migration"]
            self.assertEqual(events[-2]["fields"]["result"], "failed")
            self.assertEqual(events[-1]["fields"]["step"], "rollback")
            self.assertEqual(events[-1]["fields"]["result"], "ok")
            assert_ids_increase(self, node.audit())
            # The Raft engine was never started.
            self.assertFalse(os.path.exists(os.path.join(node.data, "raft")))
        finally:
            node.cleanup()

    def test_bad_v1_file_exits_78_and_is_kept(self):
        self.check_failed_migration(lambda data: None, '{"schema_version": 1, "raft_id": 1}\n', "load")

    def test_unwritable_target_exits_78_and_rolls_back(self):
        # state.v2.json cannot be written (a directory is in the way; tests
        # run as root, so permissions would not stop the write).
        self.check_failed_migration(lambda data: os.mkdir(os.path.join(data, "state.v2.json")), V1, "save")

    def test_migrate_state_by_hand(self):
        tmp = tempfile.mkdtemp(prefix="rampart-migrate-", dir="/var/tmp")
        try:
            with open(os.path.join(tmp, "state.json"), "w") as f:
                f.write(V1)
            out = subprocess.run([RAMPARTCTL, "migrate-state", tmp], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("migrated to schema_version 2", out.stdout)
            out = subprocess.run([RAMPARTCTL, "migrate-state", tmp], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0)
            self.assertIn("already schema_version 2", out.stdout)
            with open(os.path.join(tmp, "audit.jsonl")) as f:
                self.assertEqual(len(f.readlines()), 9)
            with open(os.path.join(tmp, "state.json"), "w") as f:
                f.write("{broken")
            out = subprocess.run([RAMPARTCTL, "migrate-state", tmp], capture_output=True, text=True)
            self.assertEqual(out.returncode, 1)
            self.assertIn("rolled back", out.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class OperationsDocExamples(unittest.TestCase):
    """The "$" lines of docs/operations.md's snapshot and migration blocks,
    run in order; each prints what the doc says."""

    def run_steps(self, steps, env, cwd, address=None):
        for command, expected in steps:
            if address:
                command = command.replace("localhost:7700", address)
            out = subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, cwd=cwd, capture_output=True,
                                 text=True, timeout=scaled(20))
            # `<…>` in the doc stands for one value that changes from run to run.
            pattern = "\n".join(re.escape(line).replace(re.escape("<…>"), r"\S+") for line in expected)
            self.assertRegex(out.stdout.rstrip("\n"), f"^{pattern}$",
                             f"docs/operations.md step: {command}\nstderr: {out.stderr}")

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
        env["PATH"] = os.path.dirname(RAMPARTCTL) + ":" + env["PATH"]
        return env

    def test_snapshot_examples(self):
        steps = doc_console_steps("operations.md", "snapshot-examples")
        self.assertGreaterEqual(len(steps), 10)
        node = Node(AUTH_CONFIG)
        cwd = tempfile.mkdtemp(prefix="rampart-snapdoc-", dir="/var/tmp")
        try:
            d = node.start()
            env = self.env()
            env.update({"AUTH": f"Authorization: Bearer {TOKEN}", "RAMPART_HTTP_ADDR": d.address,
                        "RAMPART_HTTP_TOKEN": TOKEN})
            self.run_steps(steps, env, cwd, d.address)
        finally:
            node.cleanup()
            shutil.rmtree(cwd, ignore_errors=True)

    def test_migrate_examples(self):
        steps = doc_console_steps("operations.md", "migrate-examples")
        self.assertGreaterEqual(len(steps), 6)
        cwd = tempfile.mkdtemp(prefix="rampart-migdoc-", dir="/var/tmp")
        try:
            self.run_steps(steps, self.env(), cwd)
        finally:
            shutil.rmtree(cwd, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
