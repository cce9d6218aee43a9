"""Seed discovery and the join loop (docs/cluster.md, "Discovery") against
Debian's dnsmasq on a loopback port, started from the docs' own command
line, and real rampartd processes over mutual TLS.

A node started before its DNS server and its seeds keeps serving /health,
says "joining" on /ready, retries with backoff and one log line per round,
reads the SRV records in priority order once dnsmasq is up, and finishes as
soon as a seed comes up. A bad domain, a name without SRV records and a
server that is down each give a clear reason, more rounds, and no crash."""
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from cluster_util import ClusterCase, metric_values
from harness import BUILD, ROOT, scaled
from test_tls import free_port

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
DOCS = os.path.join(ROOT, "docs", "cluster.md")


def doc_block(marker):
    """The first fenced block after <!-- discovery:marker --> in docs/cluster.md."""
    with open(DOCS) as f:
        text = f.read()
    after = text.split(f"<!-- discovery:{marker} -->", 1)[1]
    return after.split("```", 2)[1].split("\n", 1)[1]


def srv_query(port, name, timeout=0.5):
    """Ask 127.0.0.1:port for name's SRV records; the answer count, or None."""
    q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", 33, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(q, ("127.0.0.1", port))
            data = s.recv(4096)
        except OSError:
            return None
    return struct.unpack(">H", data[6:8])[0]


def free_dns_port():
    """A loopback port free for both TCP and UDP (dnsmasq listens on both)."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


class Dnsmasq:
    """dnsmasq as docs/cluster.md starts it, on our ports."""

    def __init__(self, peer2, peer3, extra=()):
        self.peer2, self.peer3, self.extra = peer2, peer3, list(extra)
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="rampart-dns-")
        self.port = free_dns_port()  # nodes are configured with it before dnsmasq starts

    def args(self):
        cmd = doc_block("dnsmasq").replace("\\\n", " ")
        cmd = cmd.replace("--port=5353", f"--port={self.port}")
        cmd = cmd.replace(",7711,", f",{self.peer2.rsplit(':', 1)[1]},")
        cmd = cmd.replace(",7721,", f",{self.peer3.rsplit(':', 1)[1]},")
        args = shlex.split(cmd)
        args[0] = DNSMASQ
        # Not the machine's /etc/dnsmasq.conf, no pid file, queries logged to stderr.
        return args + ["--conf-file=/dev/null", "--pid-file", "--log-queries", "--log-facility=-"] + self.extra

    def start(self):
        self.log = open(os.path.join(self.dir, "dnsmasq.log"), "ab")
        self.proc = subprocess.Popen(self.args(), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + scaled(10)
        while time.monotonic() < deadline and self.proc.poll() is None:
            if srv_query(self.port, "_rampart._tcp.rampart.test") is not None:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dnsmasq did not start on port {self.port}:\n{self.log_text()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=scaled(10))
        if self.proc:
            self.log.close()

    def log_text(self):
        with open(os.path.join(self.dir, "dnsmasq.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@unittest.skipUnless(os.path.exists(DNSMASQ), "dnsmasq is not installed (scripts/install-deps.sh)")
class Discovery(ClusterCase):
    def seed(self, i):
        """node_i as a one-member cluster of its own: a live member to find."""
        d = self.daemon(peers=self.peers_yaml(i, peers=[]), node_id=f"node_{i}")
        d.node_id = f"node_{i}"
        return d

    def joiner(self, dns_port, domain=None):
        """node_1 configured with the docs' cluster block (ports ours)."""
        block = doc_block("config").replace("127.0.0.1:5353", f"127.0.0.1:{dns_port}")
        cluster = dict(re.findall(r"^\s+(\w+):\s*(\S+)\s*$", block, re.M))
        if domain:
            cluster["discovery_srv"] = domain
        return self.daemon(peers=self.peers_yaml(1, peers=[]), extra={"cluster": cluster})

    def dnsmasq(self, peer2, peer3, extra=()):
        dns = Dnsmasq(peer2, peer3, extra)
        self.addCleanup(dns.cleanup)
        return dns

    def rounds_failed(self, d, contains=""):
        return [e for e in d.log_entries()
                if e.get("msg") == "join: round failed; retrying" and contains in e.get("reason", "")]

    def assert_joining(self, d):
        self.assertEqual(d.request("GET", "/health").status, 200)
        r = d.request("GET", "/ready")
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["code"], "joining")

    def test_node_started_before_dns_and_seeds_finds_them(self):
        node2, node3 = self.seed(2), self.seed(3)
        dns = self.dnsmasq(node2.peer_listen, node3.peer_listen)
        joiner = self.joiner(dns.port)
        joiner.start()

        # No DNS server yet: start-up is not held up, rounds fail and retry.
        self.eventually(lambda: len(self.rounds_failed(joiner, "SRV discovery:")) >= 2, timeout=20,
                        what="two rounds failing on the missing DNS server")
        self.assertIn(f"127.0.0.1:{dns.port}", self.rounds_failed(joiner, "SRV discovery:")[0]["reason"])
        self.assert_joining(joiner)

        # DNS up, seeds still down: the records in priority order, each seed's reason.
        dns.start()
        order = f"{node2.peer_listen} (node_2), {node3.peer_listen} (node_3)"
        joiner.wait_log(lambda e: e.get("msg") == "join: seeds discovered" and e.get("seeds") == order,
                        timeout=30)
        failed = joiner.wait_log(lambda e: e.get("msg") == "join: round failed; retrying"
                                 and f"{node3.peer_listen}: no peer connection" in e.get("reason", ""),
                                 timeout=30)
        self.assertLess(failed["reason"].index(node2.peer_listen), failed["reason"].index(node3.peer_listen))
        self.assert_joining(joiner)

        # The second seed comes up: the next round tries node_2 (down), then joins through node_3.
        node3.start()
        try:
            done = joiner.wait_log(lambda e: e.get("msg") == "join: done", timeout=30)
        except AssertionError as e:  # the seed's side of the story too
            raise AssertionError(f"{e}\nnode_3's log:\n{node3.log_text()[-4000:]}") from None
        self.assertEqual(done["seed"], node3.peer_listen)
        self.assertIn("live member", done["detail"])
        self.wait_ready([joiner], timeout=15)

        counts = metric_values(self.metrics(joiner), "rampart_join_attempts_total")
        self.assertEqual(counts.get('result="joined"'), 1)
        self.assertGreaterEqual(counts.get('result="retryable"', 0), 3)
        # One line per round, and the delays grow with the rounds (backoff.lua).
        rounds = [e["round"] for e in self.rounds_failed(joiner)]
        self.assertEqual(len(rounds), len(set(rounds)))
        delays = [e["retry_in_ms"] for e in self.rounds_failed(joiner)]
        self.assertTrue(80 <= delays[0] <= 120 and 160 <= delays[1] <= 240, delays)  # 100, 200 ms ±20 %
        self.assertLessEqual(max(delays), 6000)  # the 5 s cap ±20 %
        self.assertIn("_rampart._tcp.rampart.test", dns.log_text())
        self.assertIsNone(joiner.proc.poll())

    def test_bad_domain_and_no_records_retry_with_a_clear_reason(self):
        # A name that exists without SRV records: a TXT record at the SRV owner name.
        dns = self.dnsmasq("127.0.0.1:1", "127.0.0.1:2",
                           extra=["--txt-record=_rampart._tcp.empty.rampart.test,nothing"]).start()
        cases = {"nowhere.rampart.test": "no such domain: _rampart._tcp.nowhere.rampart.test",
                 "empty.rampart.test": "no SRV records for _rampart._tcp.empty.rampart.test"}
        nodes = {domain: self.joiner(dns.port, domain=domain) for domain in cases}
        for d in nodes.values():
            d.start()
        for domain, reason in cases.items():
            d = nodes[domain]
            self.eventually(lambda: len(self.rounds_failed(d, reason)) >= 2, timeout=20,
                            what=f"two rounds failing with '{reason}'")
            self.assert_joining(d)
            self.assertIsNone(d.proc.poll())
            counts = metric_values(self.metrics(d), "rampart_join_attempts_total")
            self.assertEqual(counts.get('result="joined"', 0), 0)  # no seed, no attempt
        # Shutdown stops the loop at once.
        for d in nodes.values():
            self.assertEqual(d.stop(), 0)

    def test_static_seeds(self):
        # Behind TLS, a static seed that etc/peers.yml does not name cannot be checked.
        unnamed = self.daemon(peers=self.peers_yaml(1, peers=[]),
                              extra={"cluster": {"seeds": ["127.0.0.1:1"]}}).start()
        # Insecure peers need no name: a seed is found by its address alone. cluster.seeds
        # changes on SIGHUP; the next round uses the new list.
        seed = self.daemon(peers=self.peers_yaml(2, insecure=True, peers=[]), node_id="node_2").start()
        joiner = self.daemon(peers=self.peers_yaml(3, insecure=True, peers=[]), node_id="node_3",
                             extra={"cluster": {"seeds": ["127.0.0.1:1"]}}).start()
        self.eventually(lambda: self.rounds_failed(joiner, "127.0.0.1:1: no peer connection"),
                        timeout=20, what="a round failing on a seed that is not there")
        with open(joiner.config_path) as f:
            text = f.read()
        joiner.write_config(text.replace('"127.0.0.1:1"', f'"{seed.peer_listen}"'))
        joiner.signal(signal.SIGHUP)
        done = joiner.wait_log(lambda e: e.get("msg") == "join: done", timeout=30)
        self.assertEqual(done["seed"], seed.peer_listen)
        # The seed is found; with no join token the node then waits to be
        # given one (docs/cluster.md, "Joining"), serving /health meanwhile.
        joiner.wait_log(lambda e: "waiting to join a cluster" in e.get("msg", ""), timeout=10)
        self.assertEqual(joiner.request("GET", "/health").status, 200)
        self.eventually(lambda: len(self.rounds_failed(unnamed, "127.0.0.1:1: no node id known")) >= 2,
                        timeout=20, what="rounds failing for the unnamed static seed")
        self.assert_joining(unnamed)

    def test_invalid_settings_are_refused_at_start(self):
        for key, value, why in (("discovery_srv", "bad..domain", "no empty labels"),
                                ("discovery_srv", "a b.test", "only A-Z a-z 0-9"),
                                ("dns_server", "[::1]:53", "IPv6 DNS server is not supported"),
                                ("dns_server", "dns.example:53", "not an IPv4 address literal")):
            env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
            env[f"RAMPART_CLUSTER_{key.upper()}"] = value
            out = subprocess.run([os.path.join(BUILD, "rampartd"), "--dev", "--check-config"], env=env,
                                 capture_output=True, text=True, timeout=scaled(10), cwd=ROOT)
            self.assertEqual(out.returncode, 78, out.stderr)
            self.assertIn(f"RAMPART_CLUSTER_{key.upper()}", out.stderr)
            self.assertIn(why, out.stderr)


if __name__ == "__main__":
    unittest.main()
