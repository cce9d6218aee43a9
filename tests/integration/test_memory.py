"""rampartd's memory settings hold in a real process (issue 5: a router has
little RAM; docs/store.md, "Memory").

A node takes engine snapshots (a low cluster.snapshot_threshold), which are
filled on the libuv thread pool, and serves a snapshot stream, with the
shipped policies loaded. glibc would give each pool thread that allocates a
malloc arena of its own (a 64 MiB reservation, its pages kept after free);
core/main.cpp limits malloc to one arena, so /proc/PID/smaps shows no arena
reservation. The state is checked against what was written, the snapshot
pins (persistent maps shared between versions) notwithstanding. Last, the
RSS breakdown tool (bench/rss_breakdown.py) runs against the build.

Data directories live under /var/tmp (a real disk), never tmpfs.
"""
import os
import re
import subprocess
import sys
import unittest

from harness import BUILD, scaled
from snapshot_node import Client, SnapshotNodeCase

TOKEN = "memory-test-token-0123456789abcdef0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEYS = 1200
VALUE = 700  # bytes
ARENA_RESERVE = 64 * 1024 * 1024  # glibc's HEAP_MAX_SIZE on 64-bit
BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench")
MAPPING = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\S+)\s*(.*)$")


def malloc_arenas(pid):
    """Start addresses of glibc's secondary malloc arenas: each reserves
    64 MiB, of which the part not yet used stays an anonymous PROT_NONE
    mapping of megabytes (thread stacks' guards are one page)."""
    found = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            m = MAPPING.match(line)
            if m and not m.group(5).strip() and m.group(3) == "---p":
                lo, hi = int(m.group(1), 16), int(m.group(2), 16)
                if hi - lo >= ARENA_RESERVE // 8:
                    found.append(hex(lo))
    return found


class MemorySettings(SnapshotNodeCase):
    TOKEN = TOKEN
    THRESHOLD = 64
    PREFIX = "rampart-mem-"

    def fill(self):
        super().fill("mem", KEYS, VALUE)

    def snapshots_taken(self):
        return [n for n in os.listdir(os.path.join(self.dir, "data", "raft")) if n.startswith("snapshot-")]

    def test_one_malloc_arena_through_snapshots(self):
        self.fill()
        self.assertTrue(self.snapshots_taken(), "no engine snapshot was taken")
        r = self.d.request("GET", "/v1/snapshot", headers=AUTH, timeout=scaled(30))
        self.assertEqual(r.status, 200, r)
        self.assertGreater(len(r.body), KEYS * VALUE)
        # Deletes and overwrites after the pins, then every key checked.
        c = Client(self.d)
        for k in range(0, KEYS, 3):
            self.assertEqual(c.call("DELETE", f"/v1/kv/mem/{k:05d}", headers=AUTH).status, 200)
        r = c.call("GET", "/v1/kv/mem/?keys", headers=AUTH)
        c.close()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), [f"mem/{k:05d}" for k in range(KEYS) if k % 3])
        self.assertEqual(malloc_arenas(self.d.proc.pid), [], "a pool thread got a malloc arena of its own")

    def test_rss_breakdown_runs(self):
        p = subprocess.run([sys.executable, os.path.join(BENCH, "rss_breakdown.py"), "--build", BUILD, "--keys", "300"],
                           capture_output=True, text=True, timeout=scaled(120))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"heap \(brk: main arena\)\s+\d+")
        self.assertRegex(p.stdout, r"total RSS\s+\d+\s+\|\s+\d+")


class NoIostreams(unittest.TestCase):
    """rampartd reads and writes files with core/util/file_io.h: one
    std::ifstream or std::ostringstream pulls every locale facet of the C++
    runtime it carries (static_cxx_runtime) into the binary, 0.3 MiB of
    resident code (docs/store.md, "Memory"). Checked on the symbols, which
    name these classes whether the runtime is linked in or shared."""

    STREAMS = re.compile(r"basic_(i|o|io)?fstream|basic_(i|o)?stringstream|basic_stringbuf|ios_base::Init|"
                         r"std::locale::classic")

    def test_rampartd_has_no_iostreams(self):
        out = subprocess.run(["nm", "-C", os.path.join(BUILD, "rampartd")], capture_output=True, text=True,
                             check=True).stdout
        found = sorted({line.split(" ", 2)[-1] for line in out.splitlines() if self.STREAMS.search(line)})
        self.assertEqual(found, [], "rampartd uses iostreams again: use util/file_io.h")


if __name__ == "__main__":
    unittest.main()
