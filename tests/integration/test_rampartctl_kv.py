"""rampartctl kv get|put|delete|list and rampartctl txn against a real node
with auth on (docs/store.md, "rampartctl kv and txn"): values from an
argument, a file and stdin (binary-safe), CAS and flags, listings, keys that
need percent-encoding, transactions that apply and that roll back, the
exit codes (0 done, 1 failure, 2 usage) and the messages for bad input, and
every example in the doc.
"""
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import Daemon, RAMPARTCTL, doc_console_steps, scaled

TOKEN = "ctl-kv-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONFIG = {"auth": {"enabled": True, "bootstrap_token": TOKEN}}


def start_node():
    """A fresh node in its own /var/tmp directory, ready for writes."""
    workdir = tempfile.mkdtemp(prefix="rampart-ctlkv-", dir="/var/tmp")
    d = Daemon(config=CONFIG, workdir=workdir)
    d.start()
    deadline = time.monotonic() + scaled(10)
    while d.request("GET", "/ready").status != 200:
        if time.monotonic() > deadline:
            raise AssertionError("node never became ready")
        time.sleep(0.02)
    return d, workdir


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    env.update(extra)
    return env


class KvCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d, cls.workdir = start_node()
        cls.files = tempfile.mkdtemp(prefix="rampart-ctlkv-files-", dir="/var/tmp")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        shutil.rmtree(cls.workdir, ignore_errors=True)
        shutil.rmtree(cls.files, ignore_errors=True)

    def ctl(self, *args, token=TOKEN, stdin=None, text=True):
        env = clean_env(RAMPART_HTTP_ADDR=self.d.address, RAMPART_HTTP_TOKEN=token)
        if stdin is None:
            stdin = "" if text else b""
        return subprocess.run([RAMPARTCTL, *args], env=env, input=stdin, capture_output=True, text=text,
                              timeout=scaled(20))

    def ok(self, *args, **kw):
        out = self.ctl(*args, **kw)
        self.assertEqual(out.returncode, 0, (args, out.stderr))
        return out

    def failed(self, code, *args, **kw):
        out = self.ctl(*args, **kw)
        self.assertEqual(out.returncode, code, (args, out.stdout, out.stderr))
        return out

    def node_value(self, key):
        r = self.d.request("GET", f"/v1/kv/{key}?raw", headers=AUTH)
        return r.body if r.status == 200 else None

    def file(self, name, data):
        path = os.path.join(self.files, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_put_get_from_argument_file_and_stdin(self):
        out = self.ok("kv", "put", "t1/arg", "hello world")
        self.assertRegex(out.stdout, r"^wrote t1/arg \(11 bytes\) at index \d+\n$")
        self.assertEqual(self.ok("kv", "get", "t1/arg").stdout, "hello world\n")
        self.assertEqual(self.ok("kv", "get", "--raw", "t1/arg").stdout, "hello world")
        for level in ("--stale", "--consistent"):
            self.assertEqual(self.ok("kv", "get", level, "t1/arg").stdout, "hello world\n")
        entry = json.loads(self.ok("--json", "kv", "get", "t1/arg").stdout)[0]
        self.assertEqual((entry["Key"], base64.b64decode(entry["Value"])), ("t1/arg", b"hello world"))
        # --json also after the subcommand.
        self.assertEqual(json.loads(self.ok("kv", "get", "t1/arg", "--json").stdout)[0]["Key"], "t1/arg")

        # Binary bytes (NUL, newlines, 0xff) survive a file and stdin, byte for byte.
        blob = bytes(range(256)) * 40 + b"\n\x00end"
        self.ok("kv", "put", "t1/file", "--file", self.file("blob", blob))
        self.assertEqual(self.node_value("t1/file"), blob)
        self.assertEqual(self.ok("kv", "get", "--raw", "t1/file", text=False).stdout, blob)
        self.ok("kv", "put", "t1/stdin", "-", stdin=blob[::-1], text=False)
        self.assertEqual(self.node_value("t1/stdin"), blob[::-1])
        # No value and a pipe on stdin: stdin is the value.
        self.ok("kv", "put", "t1/piped", stdin="from a pipe")
        self.assertEqual(self.node_value("t1/piped"), b"from a pipe")
        # An empty value is a value.
        self.ok("kv", "put", "t1/empty", "")
        self.assertEqual(self.ok("kv", "get", "--raw", "t1/empty").stdout, "")
        # A value at exactly the limit goes through.
        self.ok("kv", "put", "t1/max", "--file", self.file("max", b"m" * 524288))
        self.assertEqual(len(self.node_value("t1/max")), 524288)

    def test_cas_and_flags(self):
        out = self.ok("--json", "kv", "put", "--cas", "0", "--flags", "42", "t2/k", "v1")
        first = json.loads(out.stdout)
        self.assertEqual((first["key"], first["written"]), ("t2/k", True))
        out = self.failed(1, "kv", "put", "--cas", "0", "t2/k", "v2")
        self.assertEqual(out.stderr, "rampartctl: not written: t2/k already exists (--cas 0 only creates)\n")
        out = self.failed(1, "kv", "put", "--cas=1", "t2/k", "v2")
        self.assertEqual(out.stderr, "rampartctl: not written: t2/k's ModifyIndex is not 1\n")
        out = self.failed(1, "--json", "kv", "put", "--cas", "1", "t2/k", "v2")
        self.assertFalse(json.loads(out.stdout)["written"])
        self.assertEqual(self.node_value("t2/k"), b"v1")
        self.ok("kv", "put", "--cas", str(first["index"]), "t2/k", "v2")
        entry = json.loads(self.ok("--json", "kv", "get", "t2/k").stdout)[0]
        # A PUT without --flags sets 0, as in Consul.
        self.assertEqual((base64.b64decode(entry["Value"]), entry["Flags"]), (b"v2", 0))

        self.failed(1, "kv", "delete", "--cas", "1", "t2/k")
        self.assertEqual(self.node_value("t2/k"), b"v2")
        out = self.ok("--json", "kv", "delete", "--cas", str(entry["ModifyIndex"]), "t2/k")
        self.assertTrue(json.loads(out.stdout)["deleted"])
        self.assertIsNone(self.node_value("t2/k"))

    def test_list_and_delete_recurse(self):
        self.ok("kv", "put", "--flags", "7", "t3/a/x", "1")
        self.ok("kv", "put", "t3/a/y", "22")
        self.ok("kv", "put", "t3/b", "333")
        lines = self.ok("kv", "list", "t3/").stdout.splitlines()
        self.assertEqual(lines[0].split(), ["KEY", "FLAGS", "CREATE_INDEX", "MODIFY_INDEX", "BYTES"])
        rows = [l.split() for l in lines[1:]]
        self.assertEqual([(r[0], r[1], r[4]) for r in rows], [("t3/a/x", "7", "1"), ("t3/a/y", "0", "2"),
                                                             ("t3/b", "0", "3")])
        self.assertEqual(lines[0].index("FLAGS"), lines[1].index("7"))  # columns line up
        self.assertEqual(self.ok("kv", "list", "--keys", "t3/").stdout, "t3/a/x\nt3/a/y\nt3/b\n")
        self.assertEqual(self.ok("kv", "list", "--keys", "--separator", "/", "t3/").stdout, "t3/a/\nt3/b\n")
        self.assertEqual(json.loads(self.ok("--json", "kv", "list", "--keys", "t3/a").stdout), ["t3/a/x", "t3/a/y"])
        self.assertEqual([e["Key"] for e in json.loads(self.ok("--json", "kv", "list", "--stale", "t3/").stdout)],
                         ["t3/a/x", "t3/a/y", "t3/b"])
        # Nothing under a prefix is an empty listing, not a failure.
        self.assertEqual(self.ok("kv", "list", "t3/none/").stdout, "")
        self.assertEqual(json.loads(self.ok("--json", "kv", "list", "t3/none/").stdout), [])

        out = self.ok("kv", "delete", "--recurse", "t3/a/")
        self.assertRegex(out.stdout, r"^deleted every key under t3/a/ at index \d+\n$")
        self.assertEqual(self.ok("kv", "list", "--keys", "t3/").stdout, "t3/b\n")
        self.assertRegex(self.ok("kv", "delete", "t3/b").stdout, r"^deleted t3/b at index \d+\n$")
        self.assertEqual(self.ok("kv", "list", "t3/").stdout, "")

    def test_keys_that_need_encoding(self):
        for key in ("t4/a b", "t4/q?x=1&y", "t4/hash#frag", "t4/100%", "t4/plus+sign", "t4/é/ü", "-t4-dash"):
            self.ok("kv", "put", "--", key, key.upper())
            self.assertEqual(self.ok("kv", "get", "--raw", "--", key).stdout, key.upper(), key)
        keys = self.ok("kv", "list", "--keys", "t4/").stdout.splitlines()
        self.assertEqual(sorted(keys), sorted(["t4/a b", "t4/q?x=1&y", "t4/hash#frag", "t4/100%", "t4/plus+sign",
                                               "t4/é/ü"]))
        self.ok("kv", "delete", "--", "-t4-dash")
        self.ok("kv", "delete", "--recurse", "t4/")
        self.assertEqual(self.ok("kv", "list", "t4/").stdout, "")

    def test_txn(self):
        self.ok("kv", "put", "t5/held", "old")
        index = json.loads(self.ok("--json", "kv", "get", "t5/held").stdout)[0]["ModifyIndex"]
        body = [{"KV": {"Verb": "set", "Key": "t5/a", "Value": base64.b64encode(b"1").decode(), "Flags": 3}},
                {"KV": {"Verb": "cas", "Key": "t5/held", "Value": base64.b64encode(b"new").decode(),
                        "Index": index}},
                {"KV": {"Verb": "get", "Key": "t5/a"}}]
        out = self.ok("txn", self.file("txn.json", json.dumps(body).encode()))
        lines = out.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["KEY", "FLAGS", "CREATE_INDEX", "MODIFY_INDEX", "VALUE"])
        self.assertEqual([l.split()[0] for l in lines[1:4]], ["t5/a", "t5/held", "t5/a"])
        self.assertEqual(lines[1].split()[1], "3")
        self.assertEqual((lines[2].split()[4], lines[3].split()[4]), ("-", "1"))
        self.assertRegex(lines[4], r"^transaction done at index \d+: 3 results$")
        self.assertEqual(self.node_value("t5/held"), b"new")

        # Rolled back: exit 1, every failed operation named, nothing changed.
        bad = [{"KV": {"Verb": "delete", "Key": "t5/a"}},
               {"KV": {"Verb": "check-index", "Key": "t5/held", "Index": index}},
               {"KV": {"Verb": "check-not-exists", "Key": "t5/held"}}]
        out = self.failed(1, "txn", "-", stdin=json.dumps(bad))
        self.assertEqual(out.stdout, "")
        err = out.stderr.splitlines()
        self.assertEqual(err[0], "rampartctl: transaction rolled back, nothing changed:")
        self.assertRegex(err[1], rf"^  operation 1 \(check-index t5/held\): current modify index \d+ != {index}$")
        self.assertRegex(err[2], r"^  operation 2 \(check-not-exists t5/held\): ")
        self.assertEqual(self.node_value("t5/a"), b"1")
        out = self.failed(1, "--json", "txn", "-", stdin=json.dumps(bad))
        self.assertEqual([e["OpIndex"] for e in json.loads(out.stdout)["Errors"]], [1, 2])

        # Reads only, from stdin, with --json: the node's answer as it is.
        out = self.ok("--json", "txn", "--stale", stdin=json.dumps([{"KV": {"Verb": "get-tree", "Key": "t5/"}}]))
        self.assertEqual([r["KV"]["Key"] for r in json.loads(out.stdout)["Results"]], ["t5/a", "t5/held"])
        # Long or binary values show as their size.
        self.ok("kv", "put", "--file", self.file("bin", b"\x00\x01" * 50), "t5/bin")
        out = self.ok("txn", stdin='[{"KV":{"Verb":"get","Key":"t5/bin"}}]')
        self.assertEqual(out.stdout.splitlines()[1].split()[4:], ["<100", "bytes>"])

        # Refusals: not JSON, not an array, the node's 400 and 413.
        out = self.failed(1, "txn", self.file("bad.json", b"{not json"))
        self.assertIn("is not a JSON array of operations", out.stderr)
        self.failed(1, "txn", "-", stdin='{"KV":{}}')
        out = self.failed(1, "txn", "-", stdin='[{"KV":{"Verb":"lock","Key":"t5/a"}}]')
        self.assertRegex(out.stderr, r"^rampartctl: HTTP 400: .*lock")
        many = [{"KV": {"Verb": "get", "Key": f"t5/{i}"}} for i in range(65)]
        out = self.failed(1, "txn", "-", stdin=json.dumps(many))
        self.assertIn("HTTP 413: Transaction contains too many operations (65 > 64)", out.stderr)
        out = self.failed(1, "txn", os.path.join(self.files, "missing.json"))
        self.assertIn("missing.json: No such file or directory", out.stderr)

    def test_usage_errors_exit_2(self):
        cases = [
            (["kv"], "usage:"),
            (["kv", "fetch", "a"], "unknown kv command 'fetch'"),
            (["kv", "get"], "get needs a KEY"),
            (["kv", "get", "a", "b"], "get takes one KEY"),
            (["kv", "get", "t6/../etc"], "bad key 't6/../etc': key contains a \"..\" segment"),
            (["kv", "get", "x" * 513], "bad key"),
            (["kv", "put", ""], "bad key '': "),
            (["kv", "get", "--stale", "--consistent", "a"], "--stale and --consistent exclude each other"),
            (["kv", "get", "--raw", "--json", "a"], "--raw and --json exclude each other"),
            (["kv", "get", "--bogus", "a"], "unknown option --bogus"),
            (["kv", "put", "a", "--cas", "x1", "v"], "--cas must be a whole number, not 'x1'"),
            (["kv", "put", "a", "--flags", "-1", "v"], "--flags must be a whole number"),
            (["kv", "put", "a", "--cas"], "--cas needs a value"),
            (["kv", "put", "a", "--cas", "1", "--cas", "2", "v"], "--cas given twice"),
            (["kv", "put", "a", "v", "--file", "f"], "give the value or --file, not both"),
            (["kv", "put", "a", "v", "w"], "put takes one value"),
            (["kv", "delete", "--recurse", "--cas", "3", "a/"], "--cas applies to one key"),
            (["kv", "list", "a", "b"], "list takes one PREFIX"),
            (["kv", "list", "--separator", "/"], "--separator goes with --keys"),
            (["txn", "a.json", "b.json"], "txn takes one FILE"),
            (["txn", "--stale", "--consistent", "-"], "exclude each other"),
        ]
        for args, message in cases:
            out = self.failed(2, *args)
            self.assertIn(message, out.stderr, args)
            self.assertEqual(out.stdout, "", args)
        self.assertIsNone(self.node_value("a"))

    def test_failures_exit_1(self):
        out = self.failed(1, "kv", "get", "t7/missing")
        self.assertEqual(out.stderr, "rampartctl: no such key: t7/missing\n")
        # Over the node's value limit: refused before anything is sent.
        out = self.failed(1, "kv", "put", "t7/big", "--file", self.file("big", b"b" * 524289))
        self.assertIn("over the node's limit of 524288 bytes; nothing was written", out.stderr)
        out = self.failed(1, "kv", "put", "t7/big", "-", stdin="b" * 600000)
        self.assertIn("nothing was written", out.stderr)
        self.assertIsNone(self.node_value("t7/big"))
        out = self.failed(1, "kv", "put", "t7/x", "--file", os.path.join(self.files, "nope"))
        self.assertIn("nope: No such file or directory", out.stderr)
        # The node refuses: no token, a bad token, a read token writing.
        out = self.failed(1, "kv", "get", "t7/x", token="")
        self.assertIn("HTTP 401: this route needs a token", out.stderr)
        self.failed(1, "kv", "put", "t7/x", "v", token="wrong-token-0123456789")
        r = self.d.request("PUT", "/v1/acl/token", json.dumps({"Role": "read"}).encode(), headers=AUTH)
        reader = r.json()["SecretID"]
        self.ok("kv", "list", "t7/", token=reader)
        out = self.failed(1, "kv", "put", "t7/x", "v", token=reader)
        self.assertRegex(out.stderr, r"^rampartctl: HTTP 403: ")
        self.failed(1, "kv", "delete", "t7/x", token=reader)
        self.failed(1, "txn", "-", stdin='[{"KV":{"Verb":"set","Key":"t7/x","Value":""}}]', token=reader)
        self.assertIsNone(self.node_value("t7/x"))
        # No node there.
        env = clean_env()
        out = subprocess.run([RAMPARTCTL, "--addr", "127.0.0.1:1", "--token", TOKEN, "kv", "get", "a"], env=env,
                             capture_output=True, text=True, timeout=scaled(20))
        self.assertEqual(out.returncode, 1)
        self.assertIn("127.0.0.1:1: connect", out.stderr)


class KvCliDocExamples(unittest.TestCase):
    """Every "$" line between docs/store.md's rampartctl-kv-examples markers,
    run in order against a fresh node; each prints what the doc says."""

    def test_doc_examples(self):
        steps = doc_console_steps("store.md", "rampartctl-kv-examples")
        self.assertGreaterEqual(len(steps), 10)
        d, workdir = start_node()
        try:
            env = clean_env(RAMPART_HTTP_ADDR=d.address, RAMPART_HTTP_TOKEN=TOKEN)
            env["PATH"] = os.path.dirname(RAMPARTCTL) + ":" + env["PATH"]
            for command, expected in steps:
                out = subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, cwd=workdir,
                                     capture_output=True, text=True, timeout=scaled(20))
                self.assertEqual(out.stdout.rstrip("\n"), "\n".join(expected),
                                 f"docs/store.md step: {command}\nstderr: {out.stderr}")
        finally:
            d.stop()
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
