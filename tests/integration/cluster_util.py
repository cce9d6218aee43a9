"""The shared fixture of the multi-node tests: N rampartd processes forming
a Raft cluster over the mutual-TLS peer port, and the polling helpers every
cluster test needs (ready, leader, replicated value, status, metrics,
rampartctl). Every wait polls with a scaled() deadline: the tests run on
two busy cores."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from harness import BUILD, ROOT, run_doc_examples, scaled
from test_tls import TEST_PLUGINS, TlsCase, free_port

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
    # Plugins every node loads; test plugins among them (built under
    # tests/plugins) are linked into the plugin directory.
    load = ("transport_tls", "metrics")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.node_count > 3:
            cls.certs.cleanup()
            from tls_util import CertDir
            cls.certs = CertDir(nodes=cls.node_count)
        for name in cls.load:
            link = os.path.join(cls.plugins, name + ".so")
            if not os.path.exists(link):
                os.symlink(os.path.join(TEST_PLUGINS, name + ".so"), link)

    def daemon(self, *args, load=None, **kwargs):
        return super().daemon(*args, load=load or self.load, **kwargs)

    def edited_policies(self, edits=()):
        """A copy of the shipped policies with (file, old, new) edits applied; removed after the test."""
        d = tempfile.mkdtemp(prefix="rampart-policies-")
        self.addCleanup(shutil.rmtree, d, ignore_errors=True)
        for f in os.listdir(os.path.join(ROOT, "policies")):
            shutil.copy(os.path.join(ROOT, "policies", f), d)
        for edit in edits:
            self.edit_policy(d, *edit)
        return d

    def edit_policy(self, policy_dir, name, old, new):
        path = os.path.join(policy_dir, name)
        with open(path) as f:
            text = f.read()
        self.assertIn(old, text, f"{name} no longer says {old!r}")
        with open(path, "w") as f:
            f.write(text.replace(old, new, 1))

    def reload(self, d, timeout=10):
        """SIGHUP d and wait until it counts one more successful reload."""
        def reloads():
            return metric_values(self.metrics(d), "rampart_reload_total").get('result="success"', 0)

        before = reloads()
        d.signal(signal.SIGHUP)
        self.eventually(lambda: reloads() > before, timeout=timeout, what="a successful reload")

    def start_cluster(self, n=3, extra=None, start=True, pins=None, api_tls=False, env=None, net=None):
        """n nodes named node_1..node_n, each listing the others in peers.yml;
        with api_tls each serves HTTPS with its own certificate; env is added
        to every node's environment. With `net` (a faults.FaultNet), node i
        lists node j at the proxy that net puts between them, so faults can
        be injected per pair.

        The peer ports are picked free but bound only when each node starts;
        on a busy machine another process can take one meanwhile, so a start
        that fails on it is tried again with new ports."""
        for attempt in range(3):
            nodes = self.cluster_nodes(n, extra, pins, api_tls, env, net)
            if not start:
                return nodes
            try:
                for d in nodes:
                    d.start()
                return nodes
            except RuntimeError as e:
                if "address already in use" not in str(e) or attempt == 2:
                    raise
                for d in nodes:
                    d.stop()

    def cluster_nodes(self, n, extra, pins, api_tls, env, net):
        ports = [free_port() for _ in range(n)]

        def where(i, j):
            real = f"127.0.0.1:{ports[j - 1]}"
            return net.add(f"node_{i}", f"node_{j}", real) if net else real

        nodes = []
        for i in range(1, n + 1):
            peers = [(f"node_{j}", where(i, j)) for j in range(1, n + 1) if j != i]
            settings = {"peer": {"listen": f"127.0.0.1:{ports[i - 1]}"},
                        "auth": {"enabled": True, "bootstrap_token": TOKEN}}
            for section, values in (extra or {}).items():
                settings.setdefault(section, {}).update(values)
            d = self.daemon(peers=self.peers_yaml(i, peers=peers), node_id=f"node_{i}", extra=settings, pins=pins,
                            api_tls=self.api_tls(i) if api_tls else None)
            d.env.update(env or {})
            d.node_id = f"node_{i}"
            nodes.append(d)
        return nodes

    def start_with_an_old_voter(self, old_env):
        """Three nodes, node_3 run with `old_env` (a test switch that makes
        it play an older build); returns (nodes, the old node, the leader)."""
        nodes = self.start_cluster(start=False)
        old = nodes[2]
        old.env.update(old_env)
        for d in nodes:
            d.start()
        self.wait_ready(nodes)
        return nodes, old, self.leader_of(nodes)

    def restart(self, d, wait=True):
        """Start a stopped node again. Its API port is new (127.0.0.1:0), and
        the harness reads it from the log: the old log moves aside first."""
        n = 1
        while os.path.exists(f"{d.log_path}.{n}"):
            n += 1
        os.rename(d.log_path, f"{d.log_path}.{n}")
        return d.start(wait=wait)

    def run_doc_examples(self, doc, marker, env, substitute):
        """Run the `$ ` lines of the console blocks between <!-- marker:begin/end -->
        in docs/<doc> with bash and `env` (PATH holding the build), and compare
        each output with the lines under it after `substitute` (doc text ->
        real value, e.g. the doc's addresses -> the test's ports)."""
        env = dict(env, PATH=BUILD + os.pathsep + os.environ.get("PATH", ""))
        run_doc_examples(self, doc, marker, env, expected_subs=substitute, timeout=30)

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
            while self.ready_status(d) != 200:
                self.assertLess(time.monotonic(), deadline,
                                f"{d.dir} never ready (directory {'present' if os.path.isdir(d.dir) else 'gone'}, "
                                f"process {'running' if d.proc.poll() is None else d.proc.returncode}):\n"
                                f"{d.log_text()[-3000:]}")
                time.sleep(0.05)

    @staticmethod
    def ready_status(d):
        """GET /ready's status, or None while the node is not listening (a
        node that exited is reported by wait_ready with its log)."""
        try:
            return d.request("GET", "/ready").status
        except OSError:
            return None

    def put_on_leader(self, nodes, key, value, timeout=15):
        """Write through whichever node accepts it; return the node that leads.

        Followers forward writes, so the node that accepted it is not
        necessarily the leader: ask the nodes which one is."""
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            for d in nodes:
                r = d.request("PUT", f"/v1/kv/{key}", body=value, headers=AUTH)
                if r.status == 200:
                    return self.leader_of(nodes)
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

        def views():
            out = []
            for d in nodes:
                if d.proc.poll() is None:
                    s = self.status(d)
                    out.append(f"{d.node_id}: {s['state']} term {s['term']} leader "
                               f"{(s['leader'] or {}).get('node_id')} commit {s['commit_index']}")
            return "; ".join(out)

        try:
            return self.eventually(one_leader, timeout=timeout, what="exactly one node calling itself leader")
        except AssertionError as e:
            raise AssertionError(f"{e} ({views()})") from None

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
