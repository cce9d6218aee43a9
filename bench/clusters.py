"""The two 3-member clusters of bench/cluster_vs_etcd.py (Python standard library only).

Cluster: members that count as one server for benchlib.run_measured (CPU and run-queue wait
summed over them, `port` = the member the load goes to), with leader discovery, a settle step
(every member names one leader and has applied a fresh write) and restarts.
RampartCluster: node_1..node_3 with Raft over mutual TLS on the peer port (scripts/gen-certs.sh
certificates, spki-sha256 pins as scripts/testnet.sh writes them), plain HTTP on the API.
EtcdCluster: three etcd members (kvlib.EtcdMember), plain HTTP client and peer URLs.
"""
import os
import signal
import subprocess
import time

from benchlib import BenchError, Rampart, Server, free_port
from kvlib import EtcdMember, rampart_request

NODES = 3
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Cluster(Server):
    """Members that count as one server for benchlib.run_measured: CPU is summed over
    them all, and `port` is the API port of the member the load goes to (the leader)."""

    def __init__(self, tmpdir, pidfile, name):
        super().__init__(tmpdir, pidfile)
        self.name = name
        self.members = []
        self.target = None  # the member the load goes to

    @property
    def port(self):
        return None if self.target is None else self.target.port

    @port.setter
    def port(self, _):
        pass  # Server.__init__ sets it; the target decides

    def pids(self):
        return [m.proc.pid for m in self.members if m.proc is not None]

    def check_alive(self):
        for m in self.members:
            m.check_alive()

    def runqueue_wait_ns(self):
        """Time the members' threads spent runnable but waiting for a CPU (the second field of
        /proc/PID/task/TID/schedstat), summed: what a busy machine adds to each hop."""
        total = 0
        for pid in self.pids():
            task_dir = f"/proc/{pid}/task"
            for tid in os.listdir(task_dir):
                try:
                    with open(f"{task_dir}/{tid}/schedstat") as f:
                        total += int(f.read().split()[1])
                except (OSError, IndexError, ValueError):
                    pass  # a thread that just ended
        return total

    def stop(self):
        for m in self.members:
            if m.proc is not None and m.proc.poll() is None:
                m.proc.send_signal(signal.SIGTERM)
        for m in self.members:
            m.stop()  # waits (etcd members take a few seconds handing over)

    def leader_index(self, seen_by):
        """The index of the member that member `seen_by` reports as leader; None if none
        (or unreachable)."""
        raise NotImplementedError

    def agreed_leader(self, timeout=60.0):
        """Wait until every member names the same leader; its index."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            self.check_alive()
            seen = [self.leader_index(m) for m in self.members]
            if seen[0] is not None and all(s == seen[0] for s in seen):
                return seen[0]
            last = seen
            time.sleep(0.05)
        raise BenchError(f"{self.name}: the members never agreed on a leader (last seen: {last})")

    def aim_at_leader(self):
        self.target = self.members[self.agreed_leader()]
        return self.target

    def put(self, member, key, value, timeout=5):
        raise NotImplementedError

    def get_stale(self, member, key):
        raise NotImplementedError

    def settle(self, key, timeout=60.0):
        """A healthy cluster: a leader every member names, a write of `key` through it,
        and that write applied on every member. Returns the leader's index."""
        deadline = time.monotonic() + timeout
        li = self.agreed_leader(timeout)
        value = f"{time.monotonic_ns()}".encode()
        while True:
            try:
                if self.put(self.members[li], key, value) == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: the leader does not take writes")
            time.sleep(0.1)
            li = self.agreed_leader(timeout)
        for m in self.members:
            while True:
                try:
                    if self.get_stale(m, key) == value:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise BenchError(f"{self.name}: {m.name} never applied {key}")
                time.sleep(0.05)
        return li

    def restart(self, member):
        raise NotImplementedError


class RampartCluster(Cluster):
    def __init__(self, tmpdir, pidfile, build, datadir, subdir="rampart-cluster", extra_yaml=""):
        super().__init__(tmpdir, pidfile, "rampart")
        self.build = os.path.abspath(build)
        self.home = os.path.join(tmpdir, subdir)
        self.certs = os.path.join(self.home, "certs")
        os.makedirs(self.home, exist_ok=True)
        peer_ports = [free_port() for _ in range(NODES)]
        for i in range(1, NODES + 1):
            d = os.path.join(self.home, f"node_{i}")
            extra = f"  peers_file: {d}/peers.yml\n  pins_file: {d}/pinned_certs.json\n"
            node = Rampart(tmpdir, pidfile, build, name=f"node_{i}", subdir=os.path.join(subdir, f"node_{i}"),
                           plugins_load=["transport_tls"], data_dir=os.path.join(datadir, subdir, f"node_{i}"),
                           node_id=f"node_{i}", api_port=free_port(), peer_port=peer_ports[i - 1],
                           peer_extra=extra, extra_yaml=extra_yaml)
            self.members.append(node)

    def write_peer_files(self):
        """Certificates, and each node's peers.yml and pinned_certs.json (the other two
        nodes' spki-sha256 pins), as scripts/testnet.sh writes them."""
        p = subprocess.run(["sh", os.path.join(ROOT, "scripts", "gen-certs.sh"), self.certs, str(NODES)],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise BenchError(f"scripts/gen-certs.sh failed: {p.stderr.strip()}")
        ctl = os.path.join(self.build, "rampartctl")
        pins = {}
        for i in range(1, NODES + 1):
            p = subprocess.run([ctl, "pins", "compute", os.path.join(self.certs, f"node_{i}.pem")],
                               capture_output=True, text=True, timeout=30)
            pin = [x for x in p.stdout.split() if x.startswith("spki-sha256:")]
            if p.returncode != 0 or not pin:
                raise BenchError(f"rampartctl pins compute failed: {p.stderr.strip()}")
            pins[i] = pin[0]
        for i, node in enumerate(self.members, 1):
            d = os.path.join(self.home, f"node_{i}")
            os.makedirs(d, exist_ok=True)
            lines = ["allow_insecure_peers: false", "tls:",
                     f"  ca_cert: {self.certs}/ca.pem",
                     f"  server_cert: {self.certs}/node_{i}.pem",
                     f"  server_key: {self.certs}/node_{i}.key", "peers:"]
            for j, other in enumerate(self.members, 1):
                if j != i:
                    lines.append(f"  - {{node_id: node_{j}, address: 127.0.0.1, port: {other.peer_port}}}")
            with open(os.path.join(d, "peers.yml"), "w") as f:
                f.write("\n".join(lines) + "\n")
            pins_path = os.path.join(d, "pinned_certs.json")
            with open(pins_path, "w") as f:
                f.write('{"peers": {}, "report_only": false}\n')
            for j in range(1, NODES + 1):
                if j != i:
                    p = subprocess.run([ctl, "pins", "add", pins_path, f"node_{j}", pins[j]],
                                       capture_output=True, text=True, timeout=30)
                    if p.returncode != 0:
                        raise BenchError(f"rampartctl pins add failed: {p.stderr.strip()}")

    def start(self):
        self.write_peer_files()
        for m in self.members:
            m.start()  # returns once GET /health answers; the election follows

    def leader_index(self, seen_by, timeout=2):
        try:
            status, body = rampart_request(seen_by.port, "GET", "/v1/status/leader", timeout=timeout)
        except OSError:
            return None
        if status != 200:
            return None
        addr = body.decode().strip().strip('"')
        for i, m in enumerate(self.members):
            if addr == f"127.0.0.1:{m.peer_port}":
                return i
        return None

    def put(self, member, key, value, timeout=5):
        return rampart_request(member.port, "PUT", f"/v1/kv/{key}", value, timeout)[0]

    def get_stale(self, member, key):
        status, body = rampart_request(member.port, "GET", f"/v1/kv/{key}?raw&stale", timeout=2)
        return body if status == 200 else None

    def restart(self, member):
        member.start(append_log=True)


class EtcdCluster(Cluster):
    def __init__(self, tmpdir, pidfile, datadir, subdir="etcd-cluster"):
        super().__init__(tmpdir, pidfile, "etcd")
        self.members = [EtcdMember(tmpdir, pidfile, datadir, subdir=f"{subdir}-{i}", name=f"etcd_{i}")
                        for i in range(1, NODES + 1)]
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for m in self.members:
            m.initial_cluster = initial
        self.ids = {}  # member id (string) -> index

    def start(self):
        for m in self.members:
            m.launch()
        for m in self.members:
            m.wait_ready(timeout=60)
        for i, m in enumerate(self.members):
            self.ids[m.status()[0]] = i

    def leader_index(self, seen_by, timeout=2):
        try:
            return self.ids.get(seen_by.status(timeout)[1])
        except (OSError, ValueError, KeyError):
            return None

    def put(self, member, key, value, timeout=5):
        return member.put(key, value, timeout)

    def get_stale(self, member, key):
        return member.get_stale(key)

    def restart(self, member):
        member.launch(fresh=False)
        member.wait_ready(timeout=60)

    def stop(self):
        super().stop()
        for m in self.members:
            m.remove_data()


# ---------------------------------------------------------------- phases
