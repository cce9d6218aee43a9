"""A one-node daemon that takes engine snapshots often (a low
cluster.snapshot_threshold), with its data under /var/tmp (a real disk,
never tmpfs), and keep-alive clients that fill it from a few connections:
the set-up of test_snapshot_latency and test_memory."""
import shutil
import tempfile
import threading
import time
import unittest

from harness import Daemon, build_request, parse_response, recv_response, scaled


class Client:
    """One keep-alive connection."""

    def __init__(self, d):
        self.sock = d.connect(timeout=scaled(10))

    def call(self, method, path, body=b"", headers=None):
        self.sock.sendall(build_request(method, path, body, headers))
        return parse_response(recv_response(self.sock))

    def close(self):
        self.sock.close()


class SnapshotNodeCase(unittest.TestCase):
    TOKEN = ""
    THRESHOLD = 64
    PREFIX = "rampart-snapnode-"

    @property
    def auth(self):
        return {"Authorization": f"Bearer {self.TOKEN}"}

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix=self.PREFIX, dir="/var/tmp")
        self.d = Daemon(config={"auth": {"enabled": True, "bootstrap_token": self.TOKEN},
                                "cluster": {"snapshot_threshold": self.THRESHOLD, "snapshot_trailing": 16}},
                        workdir=self.dir)
        self.d.start()
        deadline = time.monotonic() + scaled(10)
        while self.d.request("GET", "/ready").status != 200:
            self.assertLess(time.monotonic(), deadline, "node never became ready")
            time.sleep(0.02)

    def tearDown(self):
        self.d.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def fill(self, prefix, keys, value_bytes, connections=4):
        """`keys` values of `value_bytes` from a few connections (an fsync
        per batch, not per key): key k holds bytes([65 + k % 26]) * value_bytes."""
        def writer(part):
            c = Client(self.d)
            for k in range(part, keys, connections):
                r = c.call("PUT", f"/v1/kv/{prefix}/{k:05d}", bytes([65 + k % 26]) * value_bytes, self.auth)
                self.assertEqual(r.status, 200, r)
            c.close()
        threads = [threading.Thread(target=writer, args=(p,)) for p in range(connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
