"""The engine's snapshots stay off the loop (issue 5: "the state machine's
snapshot hook stays cheap: it runs on the loop thread").

A store of several MiB is written through a few engine snapshots (a low
cluster.snapshot_threshold) while a client probes GET /health on one
keep-alive connection. Before the change, every snapshot serialised the
whole store and checksummed it on the loop, and each stalled every request
for as long; then raft_uv closed the open log segment for the snapshot and
called io_destroy() on the loop (25-40 ms: an RCU grace period). Now the
loop only pins the state, the serialiser and the CRC run on the thread pool,
and the adapter hands io_destroy to a thread (core/cluster/raft_adapter.c).
Release builds, 6 snapshots of ~7 MiB: 3rd slowest probe 31-32 ms before,
42 ms with the payload alone moved, 1.2-2.1 ms with both (docs/benchmarks.md).

The measure is robust to a busy machine: the slowest probe can be any
scheduler hiccup, so the test takes the k-th slowest, k being half the
snapshots taken, which every snapshot's stall would push up. It prints the
figures (RAMPART_BUILD=<old build> shows the old ones).

Data directories live under /var/tmp (a real disk), never tmpfs.
"""
import glob
import os
import re
import threading
import time
import unittest

from harness import scaled
from snapshot_node import Client, SnapshotNodeCase

TOKEN = "snapshot-latency-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
THRESHOLD = 128
FILL_KEYS = 2400
FILL_VALUE = 3000  # bytes: ~7 MiB of state with the keys
SNAPSHOTS = 6  # taken while probing
STALL_LIMIT_MS = 25.0


def snapshot_indexes(data_dir):
    found = []
    for path in glob.glob(os.path.join(data_dir, "raft", "snapshot-*-*-*")):
        m = re.match(r"snapshot-\d+-(\d+)-\d+$", os.path.basename(path))
        if m:
            found.append(int(m.group(1)))
    return found


class SnapshotsOffTheLoop(SnapshotNodeCase):
    TOKEN = TOKEN
    THRESHOLD = THRESHOLD
    PREFIX = "rampart-snaplat-"

    def fill(self):
        super().fill("fill", FILL_KEYS, FILL_VALUE)

    def probe_while_writing(self, writes):
        """GET /health latencies (ms) while `writes` PUTs go through."""
        stop = threading.Event()
        latencies = []

        def prober():
            c = Client(self.d)
            while not stop.is_set():
                t0 = time.perf_counter()
                r = c.call("GET", "/health")
                latencies.append((time.perf_counter() - t0) * 1000)
                assert r.status == 200, r
                time.sleep(0.001)
            c.close()

        t = threading.Thread(target=prober)
        t.start()
        c = Client(self.d)
        for i in range(writes):
            r = c.call("PUT", f"/v1/kv/churn/{i % 50}", b"x" * 100, AUTH)
            self.assertEqual(r.status, 200, r)
        c.close()
        time.sleep(0.3)  # the last snapshot's write ends
        stop.set()
        t.join()
        return latencies

    def test_health_is_not_stalled_by_snapshots(self):
        self.fill()
        data = os.path.join(self.dir, "data")
        before = max(snapshot_indexes(data), default=0)
        latencies = self.probe_while_writing(SNAPSHOTS * THRESHOLD)
        after = max(snapshot_indexes(data), default=0)
        taken = (after - before) // THRESHOLD
        ranked = sorted(latencies, reverse=True)
        k = max(1, taken // 2)
        kth = ranked[k - 1]
        median = ranked[len(ranked) // 2]
        print(f"\n# {len(latencies)} /health probes during {taken} snapshots of "
              f"~{FILL_KEYS * FILL_VALUE / 2**20:.1f} MiB: median {median:.2f} ms, "
              f"max {ranked[0]:.2f} ms, {k}th slowest {kth:.2f} ms; load {open('/proc/loadavg').read().split()[0]}")
        self.assertGreaterEqual(taken, SNAPSHOTS - 1, "the engine did not take the snapshots")
        # The adapter's check that its io_destroy interposer is in effect (a
        # link that hides rampartd's syscall() put 30 ms stalls back).
        self.assertNotIn("io_destroy runs on the loop", self.d.log_text())
        self.assertLess(kth, scaled(STALL_LIMIT_MS),
                        f"GET /health stalled during snapshots: slowest {ranked[:taken]}")


if __name__ == "__main__":
    unittest.main()
