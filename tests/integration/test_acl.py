"""API tokens in the replicated state (issue 5; docs/operations.md, "Tokens
in the store"): /v1/acl/token… and rampartctl acl. A token made by the admin
works at once with its role and prefix limits, is listed without its secret,
stops working the moment it is revoked, survives restarts (log replay and
snapshots), and its secret reaches neither a log nor a file under the data
directory. The configured bootstrap token works throughout beside them.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import BUILD, Daemon, RAMPARTCTL, doc_console_steps, scaled

ADMIN = "acl-test-bootstrap-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


class Node:
    """A daemon with auth on, in its own /var/tmp directory (a real disk),
    that can be restarted; every start gets a fresh log file."""

    def __init__(self, config=None):
        self.dir = tempfile.mkdtemp(prefix="rampart-acl-", dir="/var/tmp")
        self.config = {"auth": {"enabled": True, "bootstrap_token": ADMIN}, "log": {"level": "debug"}}
        for section, values in (config or {}).items():
            self.config.setdefault(section, {}).update(values)
        self.starts = 0
        self.d = None
        self.logs = []

    def start(self):
        if self.d is not None:
            self.d.stop()
        self.starts += 1
        self.d = Daemon(config=self.config, workdir=self.dir)
        self.d.log_path = os.path.join(self.dir, f"rampartd.{self.starts}.log")
        self.logs.append(self.d.log_path)
        self.d.start()
        deadline = time.monotonic() + scaled(10)
        while self.d.request("GET", "/ready").status != 200:
            if time.monotonic() > deadline:
                raise AssertionError("node never became ready")
            time.sleep(0.02)
        return self.d

    def all_logs(self):
        text = ""
        for path in self.logs:
            with open(path, "rb") as f:
                text += f.read().decode("utf-8", "replace")
        return text

    def data_files(self):
        """Every byte under the data directory, file by file."""
        out = {}
        for root, _, files in os.walk(os.path.join(self.dir, "data")):
            for name in files:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    out[path] = f.read()
        return out

    def cleanup(self):
        if self.d is not None:
            self.d.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def create(d, body, headers=AUTH):
    return d.request("PUT", "/v1/acl/token", body=json.dumps(body) if not isinstance(body, (str, bytes)) else body,
                     headers=headers)


def kv_put(d, key, value, headers):
    return d.request("PUT", f"/v1/kv/{key}", body=value, headers=headers)


def kv_get(d, key, headers, query=""):
    return d.request("GET", f"/v1/kv/{key}{query}", headers=headers)


def txn(d, ops, headers):
    return d.request("PUT", "/v1/txn", body=json.dumps(ops), headers=headers)


def op(verb, key, value=None):
    o = {"Verb": verb, "Key": key}
    if value is not None:
        o["Value"] = "MQ=="
    return {"KV": o}


class AclApi(unittest.TestCase):
    """One node for the API tests; each test makes its own tokens."""

    @classmethod
    def setUpClass(cls):
        cls.node = Node()
        cls.d = cls.node.start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def make(self, role, prefix=None, description="t"):
        body = {"Description": description, "Role": role}
        if prefix is not None:
            body["Prefix"] = prefix
        r = create(self.d, body)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_create_answer(self):
        r = create(self.d, {"Description": "deploy bot", "Role": "write", "Prefix": "app/"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["cache-control"], "no-store")
        t = r.json()
        self.assertEqual(list(t), ["AccessorID", "SecretID", "Description", "Role", "Prefix", "CreateIndex",
                                   "CreateTime"])
        self.assertRegex(t["AccessorID"], UUID)
        self.assertRegex(t["SecretID"], r"^[0-9a-f]{64}$")  # 256 bits
        self.assertEqual((t["Description"], t["Role"], t["Prefix"]), ("deploy bot", "write", "app/"))
        self.assertRegex(t["CreateTime"], TIME)
        self.assertEqual(int(r.headers["x-rampart-index"]), t["CreateIndex"])
        # Field names match case-insensitively, as Consul's do.
        t2 = create(self.d, {"role": "read", "description": "lower"}).json()
        self.assertEqual(t2["Role"], "read")
        self.assertNotEqual(t2["SecretID"], t["SecretID"])
        self.assertNotEqual(t2["AccessorID"], t["AccessorID"])

    def test_write_token_with_prefix(self):
        t = self.make("write", "wp/")
        h = bearer(t["SecretID"])
        self.assertEqual(kv_put(self.d, "wp/a", b"1", h).body, b"true\n")
        self.assertEqual(kv_get(self.d, "wp/a", h, "?raw").body, b"1")
        self.assertEqual(kv_get(self.d, "wp/", h, "?recurse").status, 200)
        self.assertEqual(kv_get(self.d, "wp/", h, "?keys").json(), ["wp/a"])
        self.assertEqual(self.d.request("DELETE", "/v1/kv/wp/a", headers=h).status, 200)
        # Outside the prefix: 403, and nothing changed.
        kv_put(self.d, "wpx", b"admin's", AUTH)
        for r in (kv_put(self.d, "other", b"1", h), kv_get(self.d, "wpx", h), kv_get(self.d, "wp", h, "?recurse"),
                  kv_get(self.d, "", h, "?keys"), self.d.request("DELETE", "/v1/kv/?recurse", headers=h),
                  kv_put(self.d, "w%70x", b"2", h)):
            self.assertEqual(r.status, 403, r)
            self.assertEqual(r.json()["code"], "forbidden")
        self.assertEqual(kv_get(self.d, "wpx", AUTH, "?raw").body, b"admin's")
        # Transactions: every operation inside the prefix, or 403.
        self.assertEqual(txn(self.d, [op("set", "wp/t", 1), op("get", "wp/t")], h).status, 200)
        r = txn(self.d, [op("set", "wp/t2", 1), op("get", "wpx")], h)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(kv_get(self.d, "wp/t2", AUTH).status, 404)
        self.assertEqual(txn(self.d, [op("get-tree", "")], h).status, 403)
        # Other routes per its role: write is not admin.
        self.assertEqual(self.d.request("GET", "/v1/acl/tokens", headers=h).status, 403)
        self.assertEqual(self.d.request("POST", "/v1/admin/reload", headers=h).status, 403)

    def test_read_token(self):
        kv_put(self.d, "rd/a", b"x", AUTH)
        t = self.make("read")
        h = bearer(t["SecretID"])
        self.assertEqual(kv_get(self.d, "rd/a", h, "?raw").body, b"x")
        # Any /v1/txn needs write, even one of reads only (docs/store.md).
        self.assertEqual(txn(self.d, [op("get", "rd/a")], h).status, 403)
        self.assertEqual(kv_put(self.d, "rd/a", b"y", h).status, 403)
        self.assertEqual(txn(self.d, [op("set", "rd/a", 1)], h).status, 403)
        self.assertEqual(self.d.request("DELETE", "/v1/kv/rd/a", headers=h).status, 403)
        self.assertEqual(kv_get(self.d, "rd/a", AUTH, "?raw").body, b"x")

    def test_admin_tokens(self):
        t = self.make("admin")
        h = bearer(t["SecretID"])
        # A replicated admin token manages tokens like the bootstrap one.
        made = create(self.d, {"Role": "read"}, headers=h)
        self.assertEqual(made.status, 200, made)
        self.assertEqual(self.d.request("DELETE", f"/v1/acl/token/{made.json()['AccessorID']}", headers=h).status,
                         200)
        # A scoped admin may not mint tokens or take the whole state.
        scoped = self.make("admin", "sa/")
        hs = bearer(scoped["SecretID"])
        self.assertEqual(create(self.d, {"Role": "admin"}, headers=hs).status, 403)
        self.assertEqual(self.d.request("GET", "/v1/acl/tokens", headers=hs).status, 403)
        self.assertEqual(kv_put(self.d, "sa/x", b"1", hs).status, 200)
        self.assertEqual(kv_put(self.d, "sb/x", b"1", hs).status, 403)

    def test_list_and_read_never_show_secrets(self):
        t = self.make("write", "ls/", "listed")
        r = self.d.request("GET", "/v1/acl/tokens", headers=AUTH)
        self.assertEqual(r.status, 200, r)
        self.assertIn("x-rampart-index", r.headers)
        tokens = r.json()
        mine = [x for x in tokens if x["AccessorID"] == t["AccessorID"]]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0], {k: v for k, v in t.items() if k != "SecretID"})
        self.assertEqual([x["CreateIndex"] for x in tokens], sorted(x["CreateIndex"] for x in tokens))
        self.assertNotIn(b"SecretID", r.body)
        self.assertNotIn(t["SecretID"].encode(), r.body)
        self.assertNotIn(sha256(t["SecretID"]).encode(), r.body)
        one = self.d.request("GET", f"/v1/acl/token/{t['AccessorID']}?stale", headers=AUTH)
        self.assertEqual(one.status, 200, one)
        self.assertEqual(one.json(), mine[0])
        self.assertEqual(self.d.request("GET", "/v1/acl/token/no-such-token", headers=AUTH).status, 404)
        self.assertEqual(self.d.request("GET", "/v1/acl/token/a%20b", headers=AUTH).status, 400)
        self.assertEqual(self.d.request("GET", "/v1/acl/tokens?consistency=bogus", headers=AUTH).status, 400)

    def test_revoke_takes_effect_at_once(self):
        t = self.make("write")
        h = bearer(t["SecretID"])
        self.assertEqual(kv_put(self.d, "rv/a", b"1", h).status, 200)
        r = self.d.request("DELETE", f"/v1/acl/token/{t['AccessorID']}", headers=AUTH)
        self.assertEqual((r.status, r.body), (200, b"true\n"))
        r = kv_put(self.d, "rv/a", b"2", h)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json()["code"], "invalid_token")
        self.assertEqual(r.headers["www-authenticate"], "Bearer")
        self.assertEqual(self.d.request("DELETE", f"/v1/acl/token/{t['AccessorID']}", headers=AUTH).status, 404)
        self.assertEqual(self.d.request("GET", f"/v1/acl/token/{t['AccessorID']}", headers=AUTH).status, 404)
        listed = self.d.request("GET", "/v1/acl/tokens", headers=AUTH).json()
        self.assertNotIn(t["AccessorID"], [x["AccessorID"] for x in listed])

    def test_expiration_ttl(self):
        r = create(self.d, {"Role": "read", "ExpirationTTL": "1s"})
        self.assertEqual(r.status, 200, r)
        t = r.json()
        self.assertRegex(t["ExpirationTime"], TIME)
        h = bearer(t["SecretID"])
        self.assertEqual(kv_get(self.d, "exp", h).status, 404)  # allowed: no such key
        time.sleep(2.1)
        self.assertEqual(kv_get(self.d, "exp", h).status, 401)

    def test_non_admin_and_no_token(self):
        w = bearer(self.make("write")["SecretID"])
        for method, path in (("PUT", "/v1/acl/token"), ("GET", "/v1/acl/tokens"), ("GET", "/v1/acl/token/x"),
                             ("DELETE", "/v1/acl/token/x")):
            body = json.dumps({"Role": "admin"}) if method == "PUT" else b""
            r = self.d.request(method, path, body=body, headers=w)
            self.assertEqual(r.status, 403, (method, path, r))
            self.assertEqual(self.d.request(method, path, body=body).status, 401)
            self.assertEqual(self.d.request(method, path, body=body, headers=bearer("x" * 64)).status, 401)
        self.assertEqual(self.d.request("POST", "/v1/acl/token", headers=AUTH).status, 405)

    def test_bad_bodies_are_400(self):
        before = len(self.d.request("GET", "/v1/acl/tokens", headers=AUTH).json())
        for body in (b"", b"not json", b"[]", b'"read"', json.dumps({"Description": "no role"}),
                     json.dumps({"Role": "root"}), json.dumps({"Role": "read", "Prefx": "app/"}),
                     json.dumps({"Role": 3}), json.dumps({"Role": "read", "Description": 5}),
                     json.dumps({"Role": "read", "Prefix": "a/../b"}),
                     json.dumps({"Role": "read", "Description": "d" * 257}),
                     json.dumps({"Role": "read", "ExpirationTTL": "soon"}),
                     json.dumps({"Role": "read", "ExpirationTTL": "0s"}),
                     '{"Role": "read", "role": "admin"}'):
            r = create(self.d, body)
            self.assertEqual(r.status, 400, (body, r))
            self.assertEqual(r.json()["code"], "bad_request")
        self.assertEqual(len(self.d.request("GET", "/v1/acl/tokens", headers=AUTH).json()), before)

    def test_failures_are_auth_failures_in_the_log(self):
        t = self.make("read", "ff/")
        self.d.request("PUT", "/v1/kv/ff/x", headers=bearer(t["SecretID"]))
        self.d.wait_log(lambda e: e.get("path") == "/v1/kv/ff/x" and e.get("status_code") == 403)


def sha256(text):
    import hashlib
    return hashlib.sha256(text.encode()).hexdigest()


class AclRateLimit(unittest.TestCase):
    def test_refusals_reach_the_rate_limiter(self):
        plugins = {"dir": os.path.join(os.path.abspath(BUILD), "plugins"), "load": ["ratelimit", "metrics"]}
        node = Node({"plugins": plugins, "ratelimit": {"requests_per_min": 1000}})
        try:
            d = node.start()
            t = create(d, {"Role": "write", "Prefix": "rl/"}).json()
            h = bearer(t["SecretID"])
            # Out of scope: refused as forbidden (counted by reason; the
            # limiter does not hold a valid token against its address).
            for _ in range(3):
                self.assertEqual(kv_put(d, "other", b"1", h).status, 403)
            time.sleep(1.2)  # the plugin hands its counters over once a second
            text = d.request("GET", "/metrics").body.decode()
            self.assertRegex(text, r'(?m)^rampart_auth_failures_total\{reason="forbidden"\} 3$')
            d.request("DELETE", f"/v1/acl/token/{t['AccessorID']}", headers=AUTH)
            # Revoked: invalid_token, and after ten of them from one address
            # the next failure is 429 with Retry-After.
            for _ in range(10):
                self.assertEqual(kv_put(d, "rl/x", b"1", h).status, 401)
            r = kv_put(d, "rl/x", b"1", h)
            self.assertEqual(r.status, 429, r)
            self.assertIn("auth_failures", r.json()["error"])
            self.assertEqual(r.headers["retry-after"], "60")
        finally:
            node.cleanup()


class AclPersistence(unittest.TestCase):
    def test_restart_keeps_tokens_and_secrets_stay_out_of_files_and_logs(self):
        # Snapshots every 16 entries: restarts restore a snapshot holding
        # tokens and replay the log after it.
        node = Node({"cluster": {"snapshot_threshold": 16, "snapshot_trailing": 4}})
        try:
            d = node.start()
            early = create(d, {"Role": "write", "Prefix": "p/", "Description": "early"}).json()
            revoked = create(d, {"Role": "admin", "Description": "revoked"}).json()
            for i in range(40):  # past the snapshot threshold
                self.assertEqual(kv_put(d, f"p/{i}", b"v", bearer(early["SecretID"])).status, 200)
            self.assertEqual(d.request("DELETE", f"/v1/acl/token/{revoked['AccessorID']}", headers=AUTH).status, 200)
            late = create(d, {"Role": "read", "Description": "late"}).json()  # in the log after the snapshot
            listed = d.request("GET", "/v1/acl/tokens", headers=AUTH).json()

            for _ in range(2):
                d = node.start()
                self.assertEqual(d.request("GET", "/v1/acl/tokens", headers=AUTH).json(), listed)
                self.assertEqual(kv_put(d, "p/after", b"v", bearer(early["SecretID"])).status, 200)
                self.assertEqual(kv_put(d, "q/after", b"v", bearer(early["SecretID"])).status, 403)
                self.assertEqual(kv_get(d, "p/0", bearer(late["SecretID"]), "?raw").body, b"v")
                self.assertEqual(kv_put(d, "p/0", b"v", bearer(late["SecretID"])).status, 403)
                self.assertEqual(d.request("GET", "/v1/acl/tokens", headers=bearer(revoked["SecretID"])).status, 401)
                # The bootstrap token from the configuration still works.
                self.assertEqual(d.request("GET", "/v1/acl/tokens", headers=AUTH).status, 200)
            d.stop()

            files = node.data_files()
            raft = {p: b for p, b in files.items() if "/raft/" in p}
            self.assertTrue(any("snapshot" in os.path.basename(p) for p in raft), list(raft))
            # The entries are there (accessors and hashes), the secrets are not.
            self.assertTrue(any(early["AccessorID"].encode() in b for b in raft.values()))
            self.assertTrue(any(sha256(late["SecretID"]).encode() in b for b in raft.values()))
            logs = node.all_logs()
            self.assertIn("rampartd started", logs)
            for t in (early, revoked, late):
                secret = t["SecretID"].encode()
                for path, blob in files.items():
                    self.assertNotIn(secret, blob, path)
                    self.assertNotIn(secret[:32], blob, path)
                self.assertNotIn(t["SecretID"], logs)
                self.assertNotIn(t["SecretID"][:32], logs)
            self.assertNotIn(ADMIN, logs)
        finally:
            node.cleanup()


def rampartctl(d, *args, token=ADMIN):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    env.update({"RAMPART_HTTP_ADDR": d.address, "RAMPART_HTTP_TOKEN": token})
    return subprocess.run([RAMPARTCTL, *args], env=env, capture_output=True, text=True, timeout=scaled(20))


class AclCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Node()
        cls.d = cls.node.start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def test_create_list_read_delete(self):
        out = rampartctl(self.d, "acl", "token", "create", "--role", "write", "--prefix", "cli/",
                         "--description", "from the cli")
        self.assertEqual(out.returncode, 0, out.stderr)
        fields = dict(re.match(r"^(\w+):\s*(.*)$", l).groups() for l in out.stdout.splitlines())
        self.assertEqual(list(fields), ["AccessorID", "SecretID", "Role", "Prefix", "Description", "CreateTime"])
        self.assertEqual((fields["Role"], fields["Prefix"], fields["Description"]), ("write", "cli/", "from the cli"))
        self.assertIn("SecretID", out.stderr)  # the "keep it now" note
        self.assertEqual(kv_put(self.d, "cli/x", b"1", bearer(fields["SecretID"])).status, 200)

        out = rampartctl(self.d, "acl", "token", "list")
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["ACCESSOR", "ROLE", "PREFIX", "CREATED", "DESCRIPTION"])
        row = next(l for l in lines if l.startswith(fields["AccessorID"]))
        self.assertEqual(row.split(None, 4), [fields["AccessorID"], "write", "cli/", fields["CreateTime"],
                                              "from the cli"])
        # Columns line up.
        self.assertEqual(lines[0].index("ROLE"), row.index("write"))
        self.assertNotIn(fields["SecretID"], out.stdout)

        out = rampartctl(self.d, "--json", "acl", "token", "list")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(fields["AccessorID"], [t["AccessorID"] for t in json.loads(out.stdout)])

        out = rampartctl(self.d, "--json", "acl", "token", "read", fields["AccessorID"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["Prefix"], "cli/")
        out = rampartctl(self.d, "acl", "token", "read", fields["AccessorID"])
        self.assertIn(f"AccessorID:     {fields['AccessorID']}", out.stdout)

        out = rampartctl(self.d, "acl", "token", "delete", fields["AccessorID"])
        self.assertEqual((out.returncode, out.stdout), (0, f"revoked {fields['AccessorID']}\n"), out.stderr)
        self.assertEqual(kv_put(self.d, "cli/x", b"2", bearer(fields["SecretID"])).status, 401)

        out = rampartctl(self.d, "acl", "token", "delete", fields["AccessorID"])
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 404: no such token", out.stderr)

    def test_json_create(self):
        out = rampartctl(self.d, "--json", "acl", "token", "create", "--role", "read", "--ttl", "1h")
        self.assertEqual(out.returncode, 0, out.stderr)
        t = json.loads(out.stdout)
        self.assertRegex(t["SecretID"], r"^[0-9a-f]{64}$")
        self.assertIn("ExpirationTime", t)

    def test_exit_codes(self):
        for args in (["acl"], ["acl", "token"], ["acl", "token", "create"], ["acl", "token", "create", "--role"],
                     ["acl", "token", "create", "--role", "read", "--bogus", "x"], ["acl", "token", "list", "x"],
                     ["acl", "token", "read"], ["acl", "token", "read", "a/b"], ["acl", "policy", "list"]):
            out = rampartctl(self.d, *args)
            self.assertEqual(out.returncode, 2, (args, out.stderr))
        # Failures: the node refuses (bad role, non-admin, unknown), or is gone.
        out = rampartctl(self.d, "acl", "token", "create", "--role", "root")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 400: Role must be read, write or admin", out.stderr)
        w = create(self.d, {"Role": "write"}).json()
        self.assertEqual(rampartctl(self.d, "acl", "token", "list", token=w["SecretID"]).returncode, 1)
        self.assertEqual(rampartctl(self.d, "acl", "token", "read", "nope").returncode, 1)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
        out = subprocess.run([RAMPARTCTL, "--addr", "127.0.0.1:1", "--token", ADMIN, "acl", "token", "list"], env=env,
                             capture_output=True, text=True, timeout=scaled(20))
        self.assertEqual(out.returncode, 1)


def expected_pattern(lines):
    """`<…>` stands for one value; a run of spaces for any run of spaces
    (table columns widen with their content)."""
    out = []
    for line in lines:
        parts = re.split(r"(<[a-z]+>| {2,})", line)
        rx = ""
        for p in parts:
            if re.fullmatch(r"<[a-z]+>", p):
                rx += r"[^\s\"]+"
            elif re.fullmatch(r" {2,}", p):
                rx += r" +"
            else:
                rx += re.escape(p)
        out.append(rx)
    return re.compile("^" + "\n".join(out) + "$")


class AclDocExamples(unittest.TestCase):
    """Every `$` line of docs/operations.md's token examples, run in bash
    in one scratch directory (the steps share deploy.json)."""

    def test_doc_examples(self):
        steps = doc_console_steps("operations.md", "acl-examples")
        self.assertGreaterEqual(len(steps), 10)
        node = Node()
        work = tempfile.mkdtemp(prefix="rampart-acl-doc-")
        try:
            d = node.start()
            env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
            env.update({"AUTH": f"Authorization: Bearer {ADMIN}", "RAMPART_HTTP_ADDR": d.address,
                        "RAMPART_HTTP_TOKEN": ADMIN, "PATH": os.path.abspath(BUILD) + ":" + env["PATH"]})
            for command, expected in steps:
                command = command.replace("localhost:7700", d.address)
                out = subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, cwd=work,
                                     capture_output=True, text=True, timeout=scaled(20))
                got = out.stdout.rstrip("\n")
                self.assertRegex(got, expected_pattern(expected),
                                 f"docs/operations.md step: {command}\nstderr: {out.stderr}")
        finally:
            node.cleanup()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
