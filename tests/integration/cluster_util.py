"""The shared fixture of the multi-node tests: N rampartd processes forming
a Raft cluster over the mutual-TLS peer port, and the polling helpers every
cluster test needs (ready, leader, replicated value, status, metrics,
rampartctl). Every wait polls with a scaled() deadline: the tests run on
two busy cores."""
import json
import os
import subprocess
import time

from harness import BUILD, scaled
from test_tls import TlsCase, free_port

TOKEN = "cluster-test-token-0123456789ab"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RAMPARTCTL = os.path.join(BUILD, "rampartctl")


def metric_values(text, name):
    """{labels-as-string: value} of one metric's samples."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        key, _, value = line.rpartition(" ")
        series, brace, labels = key.partition("{")
        if series == name:
            out[labels.rstrip("}") if brace else ""] = float(value)
    return out


class ClusterCase(TlsCase):
    """A TlsCase with certificates for `node_count` nodes and cluster helpers."""

    node_count = 3

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.node_count > 3:
            cls.certs.cleanup()
            from tls_util import CertDir
            cls.certs = CertDir(nodes=cls.node_count)

    def daemon(self, *args, load=("transport_tls", "metrics"), **kwargs):
        return super().daemon(*args, load=load, **kwargs)

    def start_cluster(self, n=3, extra=None, start=True):
        """n nodes named node_1..node_n, each listing the others in peers.yml."""
        ports = [free_port() for _ in range(n)]
        nodes = []
        for i in range(1, n + 1):
            peers = [(f"node_{j}", f"127.0.0.1:{ports[j - 1]}") for j in range(1, n + 1) if j != i]
            settings = {"peer": {"listen": f"127.0.0.1:{ports[i - 1]}"},
                        "auth": {"enabled": True, "bootstrap_token": TOKEN}}
            for section, values in (extra or {}).items():
                settings.setdefault(section, {}).update(values)
            d = self.daemon(peers=self.peers_yaml(i, peers=peers), node_id=f"node_{i}", extra=settings)
            d.node_id = f"node_{i}"
            nodes.append(d)
        if start:
            for d in nodes:
                d.start()
        return nodes

    def eventually(self, check, timeout=10, what="condition"):
        """Poll check() until it returns a true value; return it."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            got = check()
            if got:
                return got
            self.assertLess(time.monotonic(), deadline, f"{what} never held")
            time.sleep(0.1)

    def wait_ready(self, nodes, timeout=15):
        deadline = time.monotonic() + scaled(timeout)
        for d in nodes:
            while d.request("GET", "/ready").status != 200:
                self.assertLess(time.monotonic(), deadline, f"{d.dir} never ready:\n{d.log_text()[-3000:]}")
                time.sleep(0.05)

    def put_on_leader(self, nodes, key, value, timeout=15):
        """Write through whichever node accepts it; return that node."""
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            for d in nodes:
                r = d.request("PUT", f"/v1/kv/{key}", body=value, headers=AUTH)
                if r.status == 200:
                    return d
            time.sleep(0.1)
        self.fail("no node accepted the write")

    def wait_value(self, d, key, value, timeout=10):
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            r = d.request("GET", f"/v1/kv/{key}?raw&stale", headers=AUTH)
            if r.status == 200 and r.body == value:
                return
            time.sleep(0.05)
        self.fail(f"{key} never reached {d.dir}:\n{d.log_text()[-2000:]}")

    def get_json(self, d, path, headers=None, status=200):
        r = d.request("GET", path, headers=headers)
        self.assertEqual(r.status, status, r.body)
        return json.loads(r.body)

    def status(self, d):
        return self.get_json(d, "/v1/cluster/status", headers=AUTH)

    def leader_of(self, nodes, timeout=15):
        """The one node of `nodes` that calls itself leader (polled)."""

        def one_leader():
            leaders = [d for d in nodes if d.proc.poll() is None and self.status(d)["state"] == "leader"]
            return leaders[0] if len(leaders) == 1 else None

        return self.eventually(one_leader, timeout=timeout, what="exactly one node calling itself leader")

    def metrics(self, d):
        r = d.request("GET", "/metrics")
        self.assertEqual(r.status, 200)
        return r.body.decode()

    # -- membership (test_membership) ----------------------------------------
    def start_joiner(self, i, seeds, token=None, extra=None, node_id=None, start=True):
        """node_`i`'s certificate, no peers to bootstrap from: it joins
        through `seeds` (nodes of this fixture) with `token` (or waits for
        rampartctl cluster join without one)."""
        node_id = node_id or f"node_{i}"
        cluster = {"seeds": [f"{s.node_id}@{s.peer_listen}" for s in seeds]}
        settings = {"peer": {"listen": f"127.0.0.1:{free_port()}"},
                    "auth": {"enabled": True, "bootstrap_token": TOKEN}, "cluster": cluster}
        for section, values in (extra or {}).items():
            settings.setdefault(section, {}).update(values)
        d = self.daemon(peers=self.peers_yaml(i), node_id=node_id, extra=settings)
        d.node_id = node_id
        if token:
            d.env["RAMPART_CLUSTER_JOIN_TOKEN"] = token
        if start:
            d.start()
        return d

    def join_token(self, d, *args):
        """A join token made through rampartctl on `d`: the --json answer."""
        out = self.ctl(d, "--json", "cluster", "join-token", *args)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def roles(self, leader):
        """{node_id: role} of the Raft configuration, as `leader` sees it."""
        return {m["node_id"]: m["role"] for m in self.status(leader)["members"]}

    def audit_events(self, d, event):
        path = os.path.join(d.dir, "data", "audit.jsonl")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [e for e in (json.loads(line) for line in f if line.strip()) if e["event"] == event]

    def ctl(self, d, *args, token=TOKEN):
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
        env["RAMPART_HTTP_ADDR"] = d.address
        if token:
            env["RAMPART_HTTP_TOKEN"] = token
        return subprocess.run([RAMPARTCTL, *args], capture_output=True, text=True, env=env, timeout=scaled(10))
