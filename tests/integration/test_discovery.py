"""Seed discovery and the join loop (docs/cluster.md, "Discovery") against
Debian's dnsmasq on a loopback port, started from the docs' own command
line, and real rampartd processes over mutual TLS.

A node started with a join token before its DNS server and its seeds keeps
serving /health, says "joining" on /ready, retries with backoff and one log
line per round, reads the SRV records in priority order once dnsmasq is up,
and joins (the real token join, POST /v1/cluster/join) as soon as a seed
comes up. A bad domain, a name without SRV records and a server that is down
each give a clear reason, more rounds, and no crash. JoinBackoff measures
the gaps between rounds against backoff.lua, and a SIGHUP edit of it."""
import json
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
from datetime import datetime, timezone

from cluster_util import AUTH, TOKEN, ClusterCase, metric_values
from harness import BUILD, ROOT, scaled
from test_tls import metric
from test_tls import free_port

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
DOCS = os.path.join(ROOT, "docs", "cluster.md")


def doc_block(marker):
    """The first fenced block after <!-- discovery:marker --> in docs/cluster.md."""
    with open(DOCS) as f:
        text = f.read()
    after = text.split(f"<!-- discovery:{marker} -->", 1)[1]
    return after.split("```", 2)[1].split("\n", 1)[1]


def log_time(entry):
    """A log line's "ts" (RFC 3339, ms) in seconds."""
    return datetime.strptime(entry["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def backoff_bounds(attempt, base=100, factor=2, jitter=0.2, cap=5000):
    """backoff.lua's delay_ms(attempt, rand01) at rand01 = 0 and 1."""
    delay = min(base * factor ** (attempt - 1), cap)
    return int(delay * (1 - jitter) + 0.5), int(delay * (1 + jitter) + 0.5)


class JoinCase(ClusterCase):
    """Seeds that are one-member clusters of their own, join tokens made on
    them, and the join loop's log lines."""
    node_count = 4

    def seed(self, i, insecure=False):
        """node_i as a one-member cluster of its own (admin token: TOKEN)."""
        d = self.daemon(peers=self.peers_yaml(i, insecure=insecure, peers=[]), node_id=f"node_{i}",
                        extra={"auth": {"enabled": True, "bootstrap_token": TOKEN}})
        d.node_id = f"node_{i}"
        return d

    def start_again(self, d):
        """Start a stopped node: its API port is new (the log keeps the old
        "rampartd started" line too, so read the last one)."""
        def started():
            return [e for e in d.log_entries() if e.get("msg") == "rampartd started"]

        before = len(started())
        d.start(wait=False)
        entry = self.eventually(lambda: len(started()) > before and started()[-1], what=f"{d.node_id} restarted")
        d.address = entry["listen"]
        host, port = d.address.rsplit(":", 1)
        d.host, d.port = host.strip("[]"), int(port)
        return d

    def token_from(self, seed, stop=True):
        """A single-use join token made on `seed` (started for it, stopped after
        unless stop=False: the token stays in its replicated state)."""
        if seed.proc is None or seed.proc.poll() is not None:
            seed.start()
        self.wait_ready([seed])
        r = seed.request("POST", "/v1/cluster/join-token", body=b"{}", headers=AUTH)
        self.assertEqual(r.status, 200, r.body)
        if stop:
            self.assertEqual(seed.stop(), 0)
        return r.json()["token"]

    def rounds_failed(self, d, contains=""):
        return [e for e in d.log_entries()
                if e.get("msg") == "join: round failed; retrying" and contains in e.get("reason", "")]

    def assert_joining(self, d):
        self.assertEqual(d.request("GET", "/health").status, 200)
        r = d.request("GET", "/ready")
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["code"], "joining")

    def assert_member_of(self, joiner, seed):
        """The joiner follows the seed, and the seed counts it in its configuration."""
        self.wait_ready([joiner], timeout=20)
        self.eventually(lambda: (self.status(joiner)["leader"] or {}).get("node_id") == seed.node_id,
                        what=f"{joiner.node_id} following {seed.node_id}")
        try:
            self.eventually(lambda: joiner.node_id in [m["node_id"] for m in self.status(seed)["members"]],
                            what=f"{joiner.node_id} in {seed.node_id}'s configuration")
        except (AssertionError, OSError) as e:
            raise AssertionError(f"{e}\n{seed.node_id}'s log:\n{seed.log_text()[-3000:]}") from None


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
class Discovery(JoinCase):
    def joiner(self, dns_port, token, domain=None):
        """node_1 configured with the docs' cluster block (ports ours) and `token`."""
        block = doc_block("config").replace("127.0.0.1:5353", f"127.0.0.1:{dns_port}")
        cluster = dict(re.findall(r"^\s+(\w+):\s*(\S+)\s*$", block, re.M))
        if domain:
            cluster["discovery_srv"] = domain
        d = self.daemon(peers=self.peers_yaml(1, peers=[]), node_id="node_1", extra={"cluster": cluster})
        d.node_id = "node_1"
        d.env["RAMPART_CLUSTER_JOIN_TOKEN"] = token
        return d

    def dnsmasq(self, peer2, peer3, extra=()):
        dns = Dnsmasq(peer2, peer3, extra)
        self.addCleanup(dns.cleanup)
        return dns

    def test_node_started_before_dns_and_seeds_finds_them(self):
        node2, node3 = self.seed(2), self.seed(3)
        token = self.token_from(node3)  # node_3's cluster issued it; node_3 is down again
        dns = self.dnsmasq(node2.peer_listen, node3.peer_listen)
        joiner = self.joiner(dns.port, token)
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
        self.start_again(node3)
        try:
            done = joiner.wait_log(lambda e: e.get("msg") == "join: done", timeout=30)
        except AssertionError as e:  # the seed's side of the story too
            raise AssertionError(f"{e}\nnode_3's log:\n{node3.log_text()[-4000:]}") from None
        self.assertEqual(done["seed"], node3.peer_listen)
        self.assert_member_of(joiner, node3)
        self.assert_log_like_the_docs(joiner, {"127.0.0.1:7711": node2.peer_listen,
                                               "127.0.0.1:7721": node3.peer_listen})

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

    def assert_log_like_the_docs(self, d, ports):
        """docs/cluster.md's example log: each line's message is in d's log, with the same fields,
        and the same values where they do not depend on timing (ports mapped to ours)."""
        for line in doc_block("log").strip().splitlines():
            for theirs, ours in ports.items():
                line = line.replace(theirs, ours)
            want = json.loads(line)
            fixed = {k: v for k, v in want.items() if k not in ("round", "retry_in_ms", "seeds")
                     or (k == "seeds" and isinstance(v, str))}
            matches = [e for e in d.log_entries()
                       if set(want) <= set(e) and all(e[k] == v for k, v in fixed.items())]
            self.assertTrue(matches, f"no line like {line} in the log:\n" +
                            "\n".join(json.dumps(e) for e in d.log_entries() if e.get("msg") == want["msg"]))

    def test_bad_domain_and_no_records_retry_with_a_clear_reason(self):
        # A name that exists without SRV records: a TXT record at the SRV owner name.
        dns = self.dnsmasq("127.0.0.1:1", "127.0.0.1:2",
                           extra=["--txt-record=_rampart._tcp.empty.rampart.test,nothing"]).start()
        cases = {"nowhere.rampart.test": "no such domain: _rampart._tcp.nowhere.rampart.test",
                 "empty.rampart.test": "no SRV records for _rampart._tcp.empty.rampart.test"}
        nodes = {domain: self.joiner(dns.port, "f" * 64, domain=domain) for domain in cases}
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
        unnamed = self.daemon(peers=self.peers_yaml(1, peers=[]), extra={"cluster": {"seeds": ["127.0.0.1:1"]}})
        unnamed.env["RAMPART_CLUSTER_JOIN_TOKEN"] = "f" * 64
        unnamed.start()
        # Insecure peers need no name: a seed is found by its address alone. cluster.seeds
        # changes on SIGHUP; the next round uses the new list.
        seed = self.seed(2, insecure=True)
        token = self.token_from(seed, stop=False)
        joiner = self.daemon(peers=self.peers_yaml(3, insecure=True, peers=[]), node_id="node_3",
                             extra={"cluster": {"seeds": ["127.0.0.1:1"]}})
        joiner.node_id = "node_3"
        joiner.env["RAMPART_CLUSTER_JOIN_TOKEN"] = token
        joiner.start()
        self.eventually(lambda: self.rounds_failed(joiner, "127.0.0.1:1: no peer connection"),
                        timeout=20, what="a round failing on a seed that is not there")
        with open(joiner.config_path) as f:
            text = f.read()
        joiner.write_config(text.replace('"127.0.0.1:1"', f'"{seed.peer_listen}"'))
        joiner.signal(signal.SIGHUP)
        done = joiner.wait_log(lambda e: e.get("msg") == "join: done", timeout=30)
        self.assertEqual(done["seed"], seed.peer_listen)
        self.assert_member_of(joiner, seed)
        # Without a join token a node with seeds waits to be given one
        # (docs/cluster.md, "Joining"), serving /health meanwhile.
        waiting = self.daemon(peers=self.peers_yaml(4, insecure=True, peers=[]), node_id="node_4",
                              extra={"cluster": {"seeds": [seed.peer_listen]}}).start()
        waiting.wait_log(lambda e: "waiting to join a cluster" in e.get("msg", ""), timeout=10)
        self.assert_joining(waiting)
        self.assertEqual(self.rounds_failed(waiting), [])
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


class JoinBackoff(JoinCase):
    def test_joins_once_its_seed_comes_up_gaps_per_backoff_and_sighup(self):
        seed = self.seed(2)
        token = self.token_from(seed)  # then the seed is down
        policies = self.edited_policies()
        joiner = self.daemon(peers=self.peers_yaml(1, peers=[]), node_id="node_1",
                             extra={"cluster": {"seeds": [f"node_2@{seed.peer_listen}"]},
                                    "policies": {"dir": policies}})
        joiner.node_id = "node_1"
        joiner.env["RAMPART_CLUSTER_JOIN_TOKEN"] = token
        joiner.start()
        self.assert_joining(joiner)  # start-up was not held up

        # Rounds 1-5 fail on the missing seed. Each waits backoff.delay_ms(round) (100 ms x 2^(round-1)
        # ±20 %); the gap between two rounds' lines is that wait plus one failed dial (less up to
        # 10 ms: the loop's timers count from its cached clock, the log from the wall clock).
        rounds = self.eventually(lambda: (r := self.rounds_failed(joiner)) and len(r) >= 5 and r, timeout=20,
                                 what="five failed rounds")[:5]
        slack = scaled(0.25)
        gaps = []
        for k, e in enumerate(rounds, start=1):
            self.assertEqual(e["round"], k)
            self.assertIn(f"{seed.peer_listen}: no peer connection", e["reason"])
            lo, hi = backoff_bounds(k)
            self.assertTrue(lo <= e["retry_in_ms"] <= hi, (k, e["retry_in_ms"], lo, hi))
            if k < 5:
                gap = log_time(rounds[k]) - log_time(e)
                self.assertTrue(e["retry_in_ms"] / 1000 - 0.01 <= gap <= e["retry_in_ms"] / 1000 + slack,
                                (k, gap, e["retry_in_ms"]))
                gaps.append(gap)
        self.assertEqual(gaps, sorted(gaps), gaps)  # the jitter ranges do not overlap: strictly growing

        # backoff.lua edited (a flat 300 ms ±20 %) + SIGHUP: the rounds after the reload wait that,
        # where the shipped policy would wait 3.2 s, then 5 s.
        self.edit_policy(policies, "backoff.lua", "local BASE_MS = 100", "local BASE_MS = 300")
        self.edit_policy(policies, "backoff.lua", "local FACTOR = 2", "local FACTOR = 1")
        self.reload(joiner)
        reloaded = joiner.wait_log(lambda e: e.get("msg") == "configuration reloaded", timeout=10)
        after = self.eventually(
            lambda: (r := [e for e in self.rounds_failed(joiner) if log_time(e) > log_time(reloaded)])
            and len(r) >= 3 and r, timeout=20, what="three rounds after the reload")[:3]
        lo, hi = backoff_bounds(1, base=300, factor=1)
        for e in after:
            self.assertGreater(e["round"], 5)
            self.assertTrue(lo <= e["retry_in_ms"] <= hi, (e["round"], e["retry_in_ms"]))
        for a, b in zip(after, after[1:]):
            gap = log_time(b) - log_time(a)
            self.assertTrue(a["retry_in_ms"] / 1000 - 0.01 <= gap <= a["retry_in_ms"] / 1000 + slack, gap)

        # The seed comes up: the next round's join request is admitted.
        self.start_again(seed)
        done = joiner.wait_log(lambda e: e.get("msg") == "join: done", timeout=30)
        self.assertEqual(done["seed"], seed.peer_listen)
        self.assert_member_of(joiner, seed)
        failed = len(self.rounds_failed(joiner))
        text = self.metrics(joiner)
        counts = metric_values(text, "rampart_join_attempts_total")
        self.assertEqual(counts.get('result="joined"'), 1)
        self.assertEqual(counts.get('result="retryable"'), failed)
        # Every attempt went through the peer client's classification (one attempt each: the
        # join loop paces the retries, so no backoff of the peer retrier's own).
        self.assertEqual(metric(text, "rampart_peer_request_total", peer="node_2", status="network_error"), failed)
        # (Its member advertisement to node_2 follows the join through the same client.)
        self.assertGreaterEqual(metric(text, "rampart_peer_request_total", peer="node_2", status="success"), 1)
        self.assertEqual(metric_values(text, "rampart_peer_backoff_seconds_count").get("", 0), 0)


if __name__ == "__main__":
    unittest.main()
