"""PUT /v1/snapshot spools the upload (a restore on a router with little RAM):
the body goes to an unlinked file in the data directory as it arrives, is
fsync'ed, read back once as the log record and checked, so the daemon's peak
is about the upload once plus the state it builds, not three or four copies.

With a ~24 MiB snapshot: the peak RSS rise while restoring, the state after
it byte for byte, and every refused upload (truncated, corrupt, over the
size limit, client gone mid-way, a second one at once, a full data disk)
answered clearly with the old state intact and no spool file left behind.
"""
import hashlib
import json
import os
import select
import shutil
import socket
import tempfile
import time
import unittest

from cluster_util import AUTH as CLUSTER_AUTH
from cluster_util import ClusterCase
from harness import SANITIZED, Daemon, build_request, parse_response, scaled, wait_until_ready
from test_disk_faults import LoopFs, can_mount
from test_snapshot_stream import proc_status, reset_peak

TOKEN = "snapshot-upload-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VALUE_BYTES = 512 * 1024
BIG_KEYS = 48  # 24 MiB of values
MIB = 1024 * 1024


# glibc keeps freed heap and raises its mmap threshold after each large free,
# so the RSS a request leaves behind depends on the requests before it. With
# both thresholds fixed, freed blocks go back at once and the peak is the
# copies alive together (musl, usual on routers, is close to that).
FIXED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def start_node(extra=None):
    workdir = tempfile.mkdtemp(prefix="rampart-snapupload-", dir="/var/tmp")
    config = {"auth": {"enabled": True, "bootstrap_token": TOKEN}}
    config.update(extra or {})
    return wait_until_ready(Daemon(config=config, workdir=workdir, env=FIXED_MALLOC).start()), workdir


def spool_files(d, data=None):
    """Files the daemon holds open in its data directory (`data`, default
    <workdir>/data) that are not the engine's own: the spool (unlinked, so
    '(deleted)') while an upload runs."""
    data = data or os.path.join(d.dir, "data")
    out = []
    for fd in os.listdir(f"/proc/{d.proc.pid}/fd"):
        try:
            target = os.readlink(f"/proc/{d.proc.pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(data) and (target.endswith("(deleted)") or ".snapshot-upload" in target):
            out.append(target)
    return out


def upload_leftovers(d, data=None):
    return [f for f in os.listdir(data or os.path.join(d.dir, "data")) if f.startswith(".snapshot-upload")]


class SnapshotUpload(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d, cls.dir = start_node()
        cls.values = {f"big/{i:02d}": os.urandom(VALUE_BYTES) for i in range(BIG_KEYS)}
        cls.values.update({f"small/{i:04d}": f"value {i}".encode() for i in range(100)})
        for key, value in cls.values.items():
            r = cls.d.request("PUT", f"/v1/kv/{key}", value, headers=AUTH, timeout=30)
            assert r.status == 200, (key, r.status, r.body)
        r = cls.d.request("GET", "/v1/snapshot", headers=AUTH, timeout=60)
        assert r.status == 200, (r.status, r.body[:200])
        cls.snap = r.body
        cls.make_small()

    @classmethod
    def make_small(cls):
        """A small state to restore over (so the figures are the restore's)."""
        assert cls.d.request("DELETE", "/v1/kv/?recurse", headers=AUTH, timeout=30).status == 200
        assert cls.d.request("PUT", "/v1/kv/marker", b"old state", headers=AUTH).status == 200

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def put(self, body, timeout=60):
        return self.d.request("PUT", "/v1/snapshot", body, headers=AUTH, timeout=timeout)

    def state(self):
        r = self.d.request("GET", "/v1/kv/?recurse", headers=AUTH, timeout=30)
        self.assertEqual(r.status, 200)
        return r.body

    def assertNoSpool(self, d=None):
        d = d or self.d
        deadline = time.monotonic() + scaled(5)
        while spool_files(d) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(spool_files(d), [])
        self.assertEqual(upload_leftovers(d), [])

    def assertRefused(self, body, status, code, message):
        before = self.state()
        r = self.put(body)
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.json()["code"], code)
        self.assertIn(message, r.json()["error"])
        self.assertEqual(self.state(), before, "a refused upload changed the state")
        self.assertNoSpool()

    def test_restore_peak_rss_and_exact_state(self):
        pid = self.d.proc.pid
        time.sleep(0.5)
        reset_peak(pid)
        before = proc_status(pid, "VmRSS")
        r = self.put(self.snap, timeout=120)
        self.assertEqual(r.status, 200, r.body)
        rise = proc_status(pid, "VmHWM") - before
        size = len(self.snap)
        print(f"\nsnapshot {size / MIB:.1f} MiB: daemon peak RSS rise while restoring it {rise / MIB:.1f} MiB "
              f"({rise / size:.2f}x the upload)", flush=True)
        self.assertEqual(r.json()["keys"], len(self.values))
        got = self.d.request("GET", "/v1/kv/?keys", headers=AUTH)
        self.assertEqual(sorted(got.json()), sorted(self.values))
        for key, value in self.values.items():
            v = self.d.request("GET", f"/v1/kv/{key}?raw", headers=AUTH, timeout=30)
            self.assertEqual(hashlib.sha256(v.body).digest(), hashlib.sha256(value).digest(), key)
        self.assertNoSpool()
        # The record read back from the spool plus the Raft engine's frame
        # and segment buffer while it is appended: three times the file.
        # Buffering the body cost five (its copy as the record, the checked
        # state beside them). ASan: RSS is no figure.
        if not SANITIZED:
            self.assertLess(rise, 3.5 * size, f"restoring {size} bytes raised the peak RSS by {rise}")
        self.make_small()

    def test_truncated_upload(self):
        self.assertRefused(self.snap[:-4096], 400, "bad_snapshot", "truncated")

    def test_corrupt_upload(self):
        body = bytearray(self.snap)
        body[len(body) // 2] ^= 0x40
        self.assertRefused(bytes(body), 400, "bad_snapshot", "checksum mismatch")

    def test_not_a_snapshot(self):
        self.assertRefused(b"hello", 400, "bad_snapshot", "")

    def test_client_gone_mid_upload(self):
        before = self.state()
        with self.d.connect(timeout=30) as s:
            head = build_request("PUT", "/v1/snapshot", b"", headers=AUTH).split(b"\r\n\r\n")[0]
            head = head.replace(b"Content-Length: 0", f"Content-Length: {len(self.snap)}".encode())
            s.sendall(head + b"\r\n\r\n" + self.snap[:len(self.snap) // 2])
            # Mid-way the upload is on disk in the data directory, not in memory.
            deadline = time.monotonic() + scaled(5)
            while not spool_files(self.d):
                self.assertLess(time.monotonic(), deadline, "no spool file while uploading")
                time.sleep(0.02)
        self.assertNoSpool()
        self.assertEqual(self.d.request("GET", "/health").status, 200)
        self.assertEqual(self.state(), before)

    def test_unauthenticated_upload_never_reaches_the_disk(self):
        # Authentication is decided on the head: without an admin token the
        # body is counted and dropped, and the answer is the usual 401/403.
        before = self.state()
        read_token = self.d.request("PUT", "/v1/acl/token", json.dumps({"Description": "r", "Role": "read"}),
                                    headers=AUTH)
        self.assertEqual(read_token.status, 200, read_token.body)
        for headers, status in (({}, 401), ({"Authorization": "Bearer " + read_token.json()["SecretID"]}, 403)):
            with self.d.connect(timeout=30) as s:
                head = build_request("PUT", "/v1/snapshot", b"", headers=headers, close=True).split(b"\r\n\r\n")[0]
                head = head.replace(b"Content-Length: 0", f"Content-Length: {len(self.snap)}".encode())
                s.sendall(head + b"\r\n\r\n" + self.snap[:len(self.snap) // 2])
                time.sleep(scaled(0.3))
                self.assertEqual(spool_files(self.d), [], "an unauthenticated upload was spooled")
                s.sendall(self.snap[len(self.snap) // 2:])
                self.assertEqual(parse_response(read_answer(s)).status, status)
        self.assertEqual(upload_leftovers(self.d), [])
        self.assertEqual(self.state(), before)

    def test_one_upload_at_a_time(self):
        # Two admins' uploads together could fill the disk the Raft log is
        # on: a second one is refused while one is on disk.
        with self.d.connect(timeout=30) as s:
            head = build_request("PUT", "/v1/snapshot", b"", headers=AUTH).split(b"\r\n\r\n")[0]
            head = head.replace(b"Content-Length: 0", f"Content-Length: {len(self.snap)}".encode())
            s.sendall(head + b"\r\n\r\n" + self.snap[:MIB])
            deadline = time.monotonic() + scaled(5)
            while not spool_files(self.d):
                self.assertLess(time.monotonic(), deadline, "no spool file while uploading")
                time.sleep(0.02)
            r = self.d.request("PUT", "/v1/snapshot", self.snap[:MIB], headers=AUTH)
            self.assertEqual(r.status, 409, r.body)
            self.assertEqual(r.json()["code"], "upload_in_progress")
            self.assertEqual(len(spool_files(self.d)), 1)
        self.assertNoSpool()
        # The first one gone, the next one is taken (and checked).
        self.assertRefused(b"hello", 400, "bad_snapshot", "")


class SnapshotUploadLimit(unittest.TestCase):
    """The route's body limit (snapshot_size_limit of cluster.max_store_bytes:
    twice it plus 32 MiB) holds for a streamed upload too."""

    def setUp(self):
        self.d, self.dir = start_node({"cluster": {"max_store_bytes": 1 * MIB}})
        self.limit = 2 * MIB + 32 * MIB + 64
        self.assertEqual(self.d.request("PUT", "/v1/kv/marker", b"old state", headers=AUTH).status, 200)

    def tearDown(self):
        self.d.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def assertUntouched(self):
        r = self.d.request("GET", "/v1/kv/marker?raw", headers=AUTH)
        self.assertEqual((r.status, r.body), (200, b"old state"))
        deadline = time.monotonic() + scaled(5)
        while spool_files(self.d) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(spool_files(self.d), [])
        self.assertEqual(upload_leftovers(self.d), [])

    def test_declared_length_over_the_limit(self):
        with self.d.connect(timeout=30) as s:
            head = build_request("PUT", "/v1/snapshot", b"", headers=AUTH).split(b"\r\n\r\n")[0]
            head = head.replace(b"Content-Length: 0", f"Content-Length: {self.limit + 1}".encode())
            s.sendall(head + b"\r\n\r\n")
            r = parse_response(read_answer(s))
        self.assertEqual(r.status, 413, r.body)
        self.assertIn(b"body_too_large", r.body)
        self.assertUntouched()

    def test_chunked_upload_over_the_limit(self):
        # No length up front: the bytes are counted as they are spooled.
        chunk = b"\0" * MIB
        with self.d.connect(timeout=30) as s:
            head = build_request("PUT", "/v1/snapshot", b"", headers=AUTH).split(b"\r\n\r\n")[0]
            head = head.replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")
            s.sendall(head + b"\r\n\r\n")
            answer = b""
            for _ in range(self.limit // len(chunk) + 2):
                if select.select([s], [], [], 0)[0]:
                    break
                try:
                    s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                except OSError:
                    break
            answer = read_answer(s)
        r = parse_response(answer)
        self.assertEqual(r.status, 413, r.body)
        self.assertIn(b"body_too_large", r.body)
        self.assertUntouched()


@unittest.skipUnless(can_mount(), "needs root and a loop device (mount -o loop)")
class SnapshotUploadDiskFull(unittest.TestCase):
    """The spool on a full data directory (a small ext4 on a loop device, as
    in test_disk_faults): 507, the old state kept, nothing left; with space
    again the same upload restores."""

    def test_spool_on_a_full_disk(self):
        src, src_dir = start_node()
        try:
            for i in range(16):  # 8 MiB
                self.assertEqual(src.request("PUT", f"/v1/kv/v/{i}", os.urandom(VALUE_BYTES), headers=AUTH,
                                             timeout=30).status, 200)
            snap = src.request("GET", "/v1/snapshot", headers=AUTH, timeout=60).body
        finally:
            src.stop()
            shutil.rmtree(src_dir, ignore_errors=True)
        fs = LoopFs("64M")
        self.addCleanup(fs.cleanup)
        workdir = os.path.join(fs.base, "node")
        os.makedirs(workdir)
        data = os.path.join(fs.mnt, "data")
        d = wait_until_ready(Daemon(config={"auth": {"enabled": True, "bootstrap_token": TOKEN},
                                            "node": {"data_dir": data, "min_free_bytes": 0}},
                                    workdir=workdir).start())
        self.addCleanup(d.stop)
        self.assertEqual(d.request("PUT", "/v1/kv/marker", b"old state", headers=AUTH).status, 200)
        ballast = fs.fill(leave=2 * MIB)
        r = d.request("PUT", "/v1/snapshot", snap, headers=AUTH, timeout=60)
        self.assertEqual(r.status, 507, r.body)
        self.assertEqual(r.json()["code"], "storage_full")
        self.assertIsNone(d.proc.poll())
        self.assertEqual(d.request("GET", "/v1/kv/marker?raw", headers=AUTH).body, b"old state")
        deadline = time.monotonic() + scaled(5)
        while spool_files(d, data) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(spool_files(d, data), [])
        self.assertEqual(upload_leftovers(d, data), [])
        os.remove(ballast)
        r = d.request("PUT", "/v1/snapshot", snap, headers=AUTH, timeout=60)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["keys"], 16)


class ClusterRestore(ClusterCase):
    """On a 3-node cluster the spooled upload becomes the same log record as
    before: every node applies it. A follower refuses (503, it cannot
    propose) and keeps no spool."""

    def test_restore_reaches_every_node(self):
        nodes = self.start_cluster(3)
        self.wait_ready(nodes)
        leader = self.put_on_leader(nodes, "k/a", b"snap-a")
        value = os.urandom(VALUE_BYTES)
        self.assertEqual(leader.request("PUT", "/v1/kv/k/big", value, headers=CLUSTER_AUTH, timeout=30).status, 200)
        snap = leader.request("GET", "/v1/snapshot", headers=CLUSTER_AUTH, timeout=60).body
        self.assertEqual(leader.request("PUT", "/v1/kv/k/a", b"changed", headers=CLUSTER_AUTH).status, 200)
        follower = next(d for d in nodes if d is not leader)
        r = follower.request("PUT", "/v1/snapshot", snap, headers=CLUSTER_AUTH, timeout=60)
        self.assertEqual(r.status, 503, r.body)
        r = leader.request("PUT", "/v1/snapshot", snap, headers=CLUSTER_AUTH, timeout=60)
        self.assertEqual(r.status, 200, r.body)
        for d in nodes:
            self.wait_value(d, "k/a", b"snap-a")
            self.wait_value(d, "k/big", value)
            self.assertEqual(spool_files(d), [])


def read_answer(s):
    data = b""
    s.settimeout(scaled(30))
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    return data


if __name__ == "__main__":
    unittest.main()
