"""Clients that drive a cluster during a fault and record what they saw:
every operation with its invoke and complete times and outcome (the
linearizability checker's history), and every acknowledged write (so a
test can look for each one on every node afterwards).

Outcomes are classified by what the answer proves (docs/cluster.md):
- refused before anything was sent (connection refused: the node is down),
  or 503 `no_leader` / `not_leader` / `forward_queue_full` (the write never
  reached a leader that took it): the write had no effect.
- a timeout, a cut connection after the request was sent, or any other 503
  (`leader_unreachable`, `outcome_unknown`, `shutting_down`, `io_error`):
  the effect is unknown, and the checker lets it land at any later moment
  or never.
"""
import base64
import json
import random
import socket
import threading
import time

from cluster_util import AUTH
from harness import build_request, parse_response, recv_all, scaled
from linearizability import FAIL, OK, UNKNOWN, Op

DEFINITE_REFUSALS = {"no_leader", "not_leader", "forward_queue_full"}


def send(d, method, path, body=b"", timeout=5, headers=None):
    """One request to daemon d: (Response or None, sent). `sent` is False
    when the connection was refused, so nothing can have happened."""
    try:
        s = socket.create_connection((d.host, d.port), timeout=timeout)
    except OSError:
        return None, False
    try:
        with s:
            s.sendall(build_request(method, path, body, {**AUTH, **(headers or {})}, close=True))
            data = recv_all(s)
        return (parse_response(data) if data else None), True
    except (OSError, ValueError):
        return None, True


def error_code(r):
    try:
        return json.loads(r.body).get("code", "")
    except ValueError:
        return ""


class Recorder:
    """`clients` threads, client c talking to nodes()[c % len] (nodes() is
    read at each operation, so a test can swap a restarted node in), on
    `keys` keys: puts of unique values, default reads and CAS against the
    last value the client read. Every operation lands in `history`."""

    def __init__(self, nodes, clients=6, keys=("reg/a", "reg/b"), timeout=5, mix=(0.5, 0.35, 0.15), pause=0.01,
                 seed=1):
        self.nodes = nodes if callable(nodes) else (lambda: nodes)
        self.clients, self.keys, self.timeout, self.mix, self.pause = clients, keys, timeout, mix, pause
        self.history = []
        self.acked = {}  # key -> values whose put was acknowledged
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads = []
        self.rnd = random.Random(seed)
        self.t0 = time.monotonic()

    def now(self):
        return time.monotonic() - self.t0

    def start(self):
        for c in range(self.clients):
            t = threading.Thread(target=self.run, args=(c, random.Random(self.rnd.random())), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=scaled(self.timeout * 3))
        return self.history

    def record(self, op):
        with self.lock:
            self.history.append(op)
            if op.kind == "put" and op.status == OK:
                self.acked.setdefault(op.key, []).append(op.value)

    def ops_since(self, t, kind=None, node=None, status=None):
        with self.lock:
            return [op for op in self.history if op.invoke >= t and (kind is None or op.kind == kind)
                    and (node is None or op.node is node) and (status is None or op.status == status)]

    def run(self, client, rnd):
        known = {}  # key -> (value, modify index) this client last read
        n = 0
        while not self.stop_event.is_set():
            nodes = self.nodes()
            d = nodes[client % len(nodes)]
            key = rnd.choice(self.keys)
            pick = rnd.random()
            n += 1
            if pick < self.mix[0]:
                op = self.put(d, client, key, f"c{client}-{n}")
            elif pick < self.mix[0] + self.mix[1] or key not in known:
                op = self.get(d, client, key, known)
            else:
                op = self.cas(d, client, key, f"c{client}-{n}", known[key])
            op.node = d
            self.record(op)
            if op.status != OK:
                time.sleep(0.1)  # what a client does on 503 Retry-After, shortened
            elif self.pause:
                time.sleep(self.pause)

    def write_outcome(self, op, r, sent):
        op.complete = self.now()
        if r is None:
            op.status = UNKNOWN if sent else FAIL
        elif r.status == 200:
            op.status = OK
            op.output = r.body.strip() == b"true"
        elif r.status == 503 and error_code(r) in DEFINITE_REFUSALS:
            op.status = FAIL
        elif r.status == 503:
            op.status = UNKNOWN
        else:
            raise AssertionError(f"unexpected answer to {op.kind}: {r}")
        op.response = r
        return op

    def put(self, d, client, key, value):
        op = Op(client, "put", key, self.now(), value=value)
        r, sent = send(d, "PUT", f"/v1/kv/{key}", value, self.timeout)
        return self.write_outcome(op, r, sent)

    def cas(self, d, client, key, value, last):
        expected, index = last
        op = Op(client, "cas", key, self.now(), value=value, expected=expected)
        r, sent = send(d, "PUT", f"/v1/kv/{key}?cas={index}", value, self.timeout)
        return self.write_outcome(op, r, sent)

    def get(self, d, client, key, known, consistency=""):
        op = Op(client, "get", key, self.now())
        r, _ = send(d, "GET", f"/v1/kv/{key}{consistency}", b"", self.timeout)
        op.complete = self.now()
        op.response = r
        if r is not None and r.status == 200:
            entry = json.loads(r.body)[0]
            op.output = base64.b64decode(entry["Value"]).decode() if entry["Value"] else ""
            op.status = OK
            known[key] = (op.output, entry["ModifyIndex"])
        elif r is not None and r.status == 404:
            op.output, op.status = None, OK
            known[key] = (None, 0)  # cas=0: create only
        elif r is None or r.status == 503:
            op.status = UNKNOWN  # a read that failed says nothing
        else:
            raise AssertionError(f"unexpected answer to get: {r}")
        return op


class AckWriter:
    """`clients` threads writing unique keys `prefix`c-n = "c-n" as fast as
    they are answered, on nodes()[c % len]; `acked` holds every key whose
    write was acknowledged (200), `unknown` those whose outcome is open."""

    def __init__(self, nodes, prefix="acks/", clients=4, timeout=5):
        self.nodes = nodes if callable(nodes) else (lambda: nodes)
        self.prefix, self.clients, self.timeout = prefix, clients, timeout
        self.acked, self.unknown, self.refused = {}, set(), 0
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads = []

    def start(self):
        for c in range(self.clients):
            t = threading.Thread(target=self.run, args=(c,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=scaled(self.timeout * 3))

    def count(self):
        with self.lock:
            return len(self.acked)

    def run(self, client):
        n = 0
        while not self.stop_event.is_set():
            nodes = self.nodes()
            d = nodes[client % len(nodes)]
            n += 1
            key = f"{self.prefix}{client}-{n}"
            r, sent = send(d, "PUT", f"/v1/kv/{key}", f"{client}-{n}", self.timeout)
            with self.lock:
                if r is not None and r.status == 200:
                    self.acked[key] = f"{client}-{n}"
                elif r is None and not sent or r is not None and error_code(r) in DEFINITE_REFUSALS:
                    self.refused += 1
                else:
                    self.unknown.add(key)
            if r is None or r.status != 200:
                time.sleep(0.1)

    def missing_on(self, d):
        """Acknowledged keys d does not hold (with the right value), or None
        if d cannot answer."""
        got = all_values(d, self.prefix)
        if got is None:
            return None
        with self.lock:
            return sorted(k for k, v in self.acked.items() if got.get(k) != v)


def all_values(d, prefix, timeout=5):
    """{key: value} under prefix, from d's own state (?stale)."""
    try:
        s = socket.create_connection((d.host, d.port), timeout=timeout)
    except OSError:
        return None
    try:
        with s:
            s.sendall(build_request("GET", f"/v1/kv/{prefix}?recurse&stale", b"", AUTH, close=True))
            r = parse_response(recv_all(s))
    except (OSError, ValueError):
        return None
    if r.status == 404:
        return {}
    if r.status != 200:
        return None
    return {e["Key"]: base64.b64decode(e["Value"]).decode() if e["Value"] else "" for e in json.loads(r.body)}

