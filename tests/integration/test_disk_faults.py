"""Disk faults (issue 5): a full disk turns writes into 507 with Retry-After,
never a crash; reads keep working; writes resume when space returns, and no
acknowledged write is lost.

libraft writes with kernel AIO, which an LD_PRELOAD shim does not see, and
tmpfs takes another I/O path; so each test fills a real, small ext4 file
system on a loop device (needs root: skipped otherwise) used as
node.data_dir. Every mount is undone in a finally block.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import BUILD, Daemon, scaled

MiB = 1 << 20
PLUGINS = {"plugins": {"dir": os.path.join(BUILD, "plugins"), "load": ["metrics"]}}


class LoopFs:
    """A fresh ext4 file system of `size` on a loop device, mounted at a
    unique directory under /var/tmp (the image sits on the real disk)."""

    def __init__(self, size="64M"):
        self.base = tempfile.mkdtemp(prefix="rampart-diskfs-", dir="/var/tmp")
        self.image = os.path.join(self.base, "fs.img")
        self.mnt = os.path.join(self.base, "mnt")
        self.mounted = False
        os.mkdir(self.mnt)
        try:
            subprocess.run(["truncate", "-s", size, self.image], check=True)
            subprocess.run(["mkfs.ext4", "-q", "-F", self.image], check=True, capture_output=True)
            subprocess.run(["mount", "-o", "loop", self.image, self.mnt], check=True, capture_output=True)
            self.mounted = True
        except (OSError, subprocess.CalledProcessError):
            self.cleanup()
            raise

    def free(self):
        st = os.statvfs(self.mnt)
        return st.f_bavail * st.f_frsize

    def fill(self, leave, name="ballast"):
        """Write a ballast file until about `leave` bytes stay available
        (0: until ENOSPC). Real blocks (written, then fsynced), not a sparse file."""
        path = os.path.join(self.mnt, name)
        chunk = b"\xa5" * MiB
        with open(path, "ab") as f:
            try:
                while self.free() > leave:
                    f.write(chunk[: max(4096, min(MiB, self.free() - leave))])
                    f.flush()
                    os.fsync(f.fileno())
            except OSError:
                pass  # ENOSPC: full, as asked
        return path

    def cleanup(self):
        if self.mounted:
            for args in (["umount", self.mnt], ["umount", "-l", self.mnt]):
                if subprocess.run(args, capture_output=True).returncode == 0:
                    break
                time.sleep(0.5)
            self.mounted = False
        shutil.rmtree(self.base, ignore_errors=True)


def can_mount():
    if os.geteuid() != 0 or shutil.which("mkfs.ext4") is None:
        return False
    try:
        LoopFs("8M").cleanup()
        return True
    except (OSError, subprocess.CalledProcessError):
        return False


def metric(d, name):
    body = d.request("GET", "/metrics").body.decode()
    m = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", body, re.M)
    return float(m.group(1)) if m else None


def wait_for(pred, timeout=10, step=0.1):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return pred()


@unittest.skipUnless(can_mount(), "needs root and a loop device (mount -o loop)")
class DiskFaults(unittest.TestCase):
    def setUp(self):
        self.fs = LoopFs("64M")
        self.d = None

    def tearDown(self):
        try:
            if self.d is not None:
                self.d.stop()
        finally:
            self.fs.cleanup()

    def start(self, floor):
        # Daemon's own files (config, log) stay outside the small file system.
        workdir = os.path.join(self.fs.base, "node")
        os.makedirs(workdir, exist_ok=True)
        config = {"node": {"data_dir": os.path.join(self.fs.mnt, "data"), "min_free_bytes": floor},
                  "cluster": {"snapshot_threshold": 64, "snapshot_trailing": 16}}
        config.update(PLUGINS)
        if self.d is not None:
            self.d.stop()
            os.rename(self.d.log_path, self.d.log_path + f".{time.monotonic_ns()}")
        self.d = Daemon(config=config, workdir=workdir)
        self.d.start()
        self.assertTrue(wait_for(lambda: self.d.request("GET", "/ready").status == 200))
        return self.d

    def put(self, key, value, timeout=10):
        return self.d.request("PUT", f"/v1/kv/{key}", value, timeout=timeout)

    def check_all(self, acked):
        for key, value in acked.items():
            r = self.d.request("GET", f"/v1/kv/{key}?raw&stale")
            self.assertEqual((r.status, r.body), (200, value), key)

    def assert_refused(self, r):
        self.assertEqual(r.status, 507, r)
        self.assertEqual(r.json()["code"], "storage_full")
        self.assertIn("node.min_free_bytes", r.json()["error"])
        self.assertEqual(r.headers.get("retry-after"), "10")

    def test_floor_refuses_writes_reads_keep_working_and_recovers(self):
        floor = 8 * MiB
        d = self.start(floor)
        acked = {}
        for i in range(80):  # past a snapshot threshold
            value = f"v{i}".encode() * 50
            self.assertEqual(self.put(f"k{i}", value).status, 200)
            acked[f"k{i}"] = value

        self.fs.fill(leave=floor // 2)  # below the floor, not yet full
        self.assertTrue(wait_for(lambda: self.put("probe", b"x").status == 507))
        self.assert_refused(self.put("refused", b"x"))
        self.assert_refused(d.request("DELETE", "/v1/kv/k1"))
        self.assert_refused(d.request("PUT", "/v1/txn", b'[{"KV":{"Verb":"set","Key":"t","Value":"eA=="}}]'))
        r = d.request("GET", "/ready")
        self.assertEqual((r.status, r.json()["code"]), (503, "storage_full"))
        # Reads at every consistency level keep working.
        for q in ("?raw&stale", "?raw", "?raw&consistent"):
            r = d.request("GET", f"/v1/kv/k7{q}")
            self.assertEqual((r.status, r.body), (200, acked["k7"]), q)
        self.assertEqual(d.request("GET", "/v1/kv/refused").status, 404)
        self.assertEqual(metric(d, "rampart_disk_writes_refused"), 1)
        self.assertLess(metric(d, "rampart_disk_free_bytes"), floor)
        self.assertEqual(metric(d, "rampart_disk_min_free_bytes"), floor)
        d.wait_log(lambda e: e.get("msg", "").startswith("disk space below node.min_free_bytes")
                   and e.get("free_bytes", floor) < floor)
        d.wait_log(lambda e: "no other voter" in e.get("msg", ""))

        os.unlink(os.path.join(self.fs.mnt, "ballast"))
        self.assertTrue(wait_for(lambda: self.put("after", b"back").status == 200))
        acked["after"] = b"back"
        d.wait_log(lambda e: e.get("msg") == "disk space back above the floor: accepting writes again")
        self.assertEqual(metric(d, "rampart_disk_writes_refused"), 0)
        self.assertEqual(d.request("GET", "/ready").status, 200)
        self.assertIsNone(d.proc.poll())
        self.check_all(acked)
        self.start(floor)  # and from disk
        self.check_all(acked)

    def ttl_task(self):
        return self.task("ttl_checks")

    def check_status(self, check_id):
        r = self.d.request("GET", "/v1/health/state/any")
        return next((c["Status"] for c in json.loads(r.body) if c["CheckID"] == check_id), None)

    def test_ttl_check_ticker_runs_under_the_supervisor(self):
        """The leader's TTL ticker is the supervised task "ttl_checks": a tick
        that cannot be committed (writes refused below the floor) is a
        failure that recovery.lua handles, and the check turns critical once
        space is back."""
        floor = 8 * MiB
        d = self.start(floor)
        self.assertEqual(self.ttl_task()["state"], "running")
        r = d.request("PUT", "/v1/agent/service/register",
                      json.dumps({"ID": "beat-1", "Name": "beat", "Check": {"TTL": "1s", "Status": "passing"}}))
        self.assertEqual(r.status, 200, r.body)
        self.fs.fill(leave=floor // 2)
        self.assertTrue(wait_for(lambda: self.put("probe", b"x").status == 507))
        # The shipped recovery.lua: restart at once, then back off (100, 200,
        # 400 ms), and at the 5th failure within 60 s open the breaker.
        self.assertTrue(wait_for(lambda: self.ttl_task()["breaker"] == "open", timeout=15), self.ttl_task())
        task = self.ttl_task()
        self.assertIn("TTL check tick not committed: ", task["last_error"])
        self.assertEqual((task["state"], task["failures"], task["restarts"]), ("stopped", 5, 4), task)
        self.assertEqual(self.check_status("service:beat-1"), "passing")  # no tick committed

        # Space is back; an operator closes the breaker rather than wait
        # for the cool-down's trial (30 s), and the check lapses at once.
        os.unlink(os.path.join(self.fs.mnt, "ballast"))
        self.assertTrue(wait_for(lambda: self.put("after", b"back").status == 200))
        self.assertEqual(d.request("POST", "/v1/agent/breakers/ttl_checks/reset").status, 200)
        self.assertTrue(wait_for(lambda: self.check_status("service:beat-1") == "critical"), self.ttl_task())
        task = self.ttl_task()
        self.assertEqual((task["breaker"], task["state"]), ("closed", "running"), task)

    def task(self, name):
        r = self.d.request("GET", "/v1/agent/breakers")
        self.assertEqual(r.status, 200, r.body)
        rows = [t for t in json.loads(r.body) if t["task"] == name]
        self.assertEqual(len(rows), 1, r.body)
        return rows[0]

    def newest_snapshot_index(self):
        raft = os.path.join(self.fs.mnt, "data", "raft")
        metas = [n for n in os.listdir(raft) if n.startswith("snapshot-") and n.endswith(".meta")]
        return max((int(n.split("-")[2]) for n in metas), default=0)

    def test_snapshot_writes_run_under_the_supervisor(self):
        """The engine's snapshotter is the supervised task "snapshots". On a
        disk with room for the log but not for a snapshot, the engine retries
        the write on its own, silently; the adapter reports it stalled after
        cluster.snapshot_write_timeout_ms, recovery.lua backs off and opens
        the breaker, writes keep being acknowledged, and once space is back
        the stalled write ends, a reset resumes snapshots and nothing is lost."""
        floor = 1 * MiB
        workdir = os.path.join(self.fs.base, "node")
        os.makedirs(workdir, exist_ok=True)
        config = {"node": {"data_dir": os.path.join(self.fs.mnt, "data"), "min_free_bytes": floor},
                  "cluster": {"snapshot_threshold": 64, "snapshot_trailing": 16,
                              "snapshot_write_timeout_ms": 1000}}
        config.update(PLUGINS)
        self.d = d = Daemon(config=config, workdir=workdir)
        d.start()
        self.assertTrue(wait_for(lambda: d.request("GET", "/ready").status == 200))
        self.assertEqual(self.task("snapshots")["state"], "running")
        acked = {}
        for i in range(80):  # 8 MB of state: more than the free space left below plus root's reserve (5 %)
            acked[f"big{i}"] = bytes([65 + i % 26]) * (100 * 1024)
            self.assertEqual(self.put(f"big{i}", acked[f"big{i}"]).status, 200)
        self.assertTrue(wait_for(lambda: self.newest_snapshot_index() > 0))  # taken fine while there was room
        before = self.newest_snapshot_index()
        self.fs.fill(leave=floor + 3 * MiB // 2)
        for i in range(80):  # past the threshold: the engine starts a snapshot it cannot write
            acked[f"small{i}"] = str(i).encode()
            self.assertEqual(self.put(f"small{i}", acked[f"small{i}"]).status, 200)
        # Stalled after 1 s; restarts that find it still stalled fail
        # (immediate, then 100/200/400 ms), and the 5th failure opens the breaker.
        self.assertTrue(wait_for(lambda: self.task("snapshots")["breaker"] == "open", timeout=15),
                        self.task("snapshots"))
        task = self.task("snapshots")
        self.assertEqual((task["state"], task["failures"]), ("stopped", 5), task)
        self.assertTrue(any(m in task["last_error"] for m in ("snapshot write stalled", "snapshot write still stalled")),
                        task)
        self.assertEqual(metric(d, r'rampart_task_breaker_open\{task="snapshots"\}'), 1)
        self.assertEqual(self.newest_snapshot_index(), before)
        for i in range(10):  # the log still takes writes
            acked[f"during{i}"] = b"d" * 100
            self.assertEqual(self.put(f"during{i}", acked[f"during{i}"]).status, 200)

        # Space is back: the engine's own retry (every 5 s) ends the stalled
        # write; an operator's reset resumes snapshots before the trial.
        os.unlink(os.path.join(self.fs.mnt, "ballast"))
        self.assertTrue(wait_for(lambda: self.newest_snapshot_index() > before, timeout=20))
        resumed_at = self.newest_snapshot_index()
        self.assertEqual(d.request("POST", "/v1/agent/breakers/snapshots/reset").status, 200)
        task = self.task("snapshots")
        self.assertEqual((task["state"], task["breaker"]), ("running", "closed"), task)
        for i in range(80):
            acked[f"after{i}"] = str(i).encode()
            self.assertEqual(self.put(f"after{i}", acked[f"after{i}"]).status, 200)
        self.assertTrue(wait_for(lambda: self.newest_snapshot_index() > resumed_at, timeout=15))
        self.assertIsNone(d.proc.poll())
        self.check_all(acked)
        self.start(floor)  # a restart recovers the same data from the snapshots and the log
        self.check_all(acked)

    def test_full_disk_while_writing_never_crashes(self):
        """The file system fills to the last block while a writer streams
        acknowledged writes: the daemon stays up, writes turn 507 (the
        watchdog, or the engine's own NOSPACE where it is faster), reads
        work, and after cleanup every acknowledged write is there."""
        d = self.start(4 * MiB)
        acked, refused = {}, 0
        big = b"z" * 4000
        self.fs.fill(leave=12 * MiB)  # leave room for a few MiB of log
        for i in range(6000):
            r = self.put(f"w{i}", big + str(i).encode(), timeout=30)
            if r.status == 200:
                acked[f"w{i}"] = big + str(i).encode()
            else:
                self.assertEqual(r.status, 507, r)
                self.assertIsNotNone(r.headers.get("retry-after"))
                refused += 1
                if refused == 1:
                    self.fs.fill(leave=0, name="ballast2")  # now the last block too
                if refused >= 20:
                    break
        self.assertGreater(len(acked), 20)  # how many fit before the floor varies with the engine's segment allocation
        self.assertGreaterEqual(refused, 20)
        # The daemon may have dropped compacted log segments since the fill
        # (a snapshot frees them), so fill once more: the disk is full now,
        # whatever the daemon released before.
        self.fs.fill(leave=0, name="ballast3")
        self.assertLess(self.fs.free(), 4 * MiB)
        self.assertIsNone(d.proc.poll(), "rampartd died on a full disk")
        for q in ("?raw&stale", "?raw", "?raw&consistent"):
            r = d.request("GET", f"/v1/kv/w0{q}")
            self.assertEqual((r.status, r.body), (200, acked["w0"]), q)

        for name in ("ballast", "ballast2", "ballast3"):
            os.unlink(os.path.join(self.fs.mnt, name))
        self.assertTrue(wait_for(lambda: self.put("again", b"1").status == 200, timeout=15))
        acked["again"] = b"1"
        self.assertIsNone(d.proc.poll())
        self.check_all(acked)
        self.start(4 * MiB)  # a restart recovers the same data from the log and snapshots
        self.check_all(acked)


if __name__ == "__main__":
    unittest.main()
