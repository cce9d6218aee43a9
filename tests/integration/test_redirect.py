"""Redirect mode and member advertisement (docs/cluster.md, "Member
advertisement" and "Redirect mode"): every member's API address and command
versions reach every node's GET /v1/cluster/status; with
cluster.follower_writes: redirect a follower answers requests that need the
leader with 307 to the leader's API (curl -L and rampartctl follow it), and
503 with Retry-After without a leader (rampartctl retries a GET a bounded
number of times); rampartctl speaks HTTPS to nodes with their own
certificates and follows an https redirect, verifying the leader by the node
id in X-Rampart-Leader."""
import json
import os
import subprocess
import time
import unittest

from cluster_util import AUTH, RAMPARTCTL, TOKEN, ClusterCase
from harness import RAMPARTD, Daemon, scaled
from tls_util import client_context, https_get, tls_connect

REDIRECT = {"RAMPART_CLUSTER_FOLLOWER_WRITES": "redirect"}  # the environment override of the key


def member_info_record(node_id, api_address):
    """A member_info record (core/cluster/member_info.h) as a node would send it."""

    def text(value):
        data = value.encode()
        assert len(data) < 128  # one-byte varint length
        return bytes([len(data)]) + data

    return (bytes([65, 1]) + text(node_id) + text(api_address) + text("http") + text("127.0.0.1:1") + text("0.1.0")
            + bytes([1, 1, 1]))  # one version: kv_set 1


def header(response, name):
    for k, v in response.headers.items():
        if k.lower() == name.lower():
            return v
    return None


class AdvertisedCase(ClusterCase):
    def wait_advertised(self, nodes, get_status):
        """Until every node's status shows every member's advertisement."""

        def all_advertised():
            for d in nodes:
                members = get_status(d)["members"]
                if len(members) != len(nodes) or any(m["api_address"] is None for m in members):
                    return False
            return True

        self.eventually(all_advertised, timeout=15, what="every member's advertisement on every node")

    def ctl_env(self, d, addr=None, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
        env.update({"RAMPART_HTTP_ADDR": addr or d.address, "RAMPART_HTTP_TOKEN": TOKEN}, **extra)
        return env

    def run_ctl(self, env, *args, timeout=30):
        started = time.monotonic()
        out = subprocess.run([RAMPARTCTL, *args], capture_output=True, text=True, env=env, timeout=scaled(timeout))
        return out, time.monotonic() - started


class RedirectMode(AdvertisedCase):
    def setUp(self):
        self.nodes = self.start_cluster(env=REDIRECT)
        self.wait_ready(self.nodes)
        self.leader = self.leader_of(self.nodes)
        self.followers = [d for d in self.nodes if d is not self.leader]
        self.wait_advertised(self.nodes, self.status)

    def test_status_shows_every_members_api_address_and_versions(self):
        by_id = {d.node_id: d for d in self.nodes}
        for d in self.nodes:
            for m in self.status(d)["members"]:
                self.assertEqual(m["api_address"], by_id[m["node_id"]].address)
                self.assertEqual(m["api_scheme"], "http")
                self.assertRegex(m["build"], r"^\d+\.\d+\.\d+")
                self.assertEqual(m["versions"]["service_register"], 2)
                self.assertEqual(m["versions"]["kv_set"], 1)
                self.assertEqual(m["versions"]["member_info"], 1)

        # Only a peer may announce, and only for the node its certificate names.
        record = member_info_record("node_3", "203.0.113.9:7700")
        r = self.leader.request("PUT", "/internal/member-info", body=record)
        self.assertEqual(r.status, 404, r.body)
        impostor = next(i for i in (1, 2, 3) if f"node_{i}" != "node_3")
        cert, key = self.certs.node(impostor)
        host, port = self.leader.peer_listen.rsplit(":", 1)
        with tls_connect(host, int(port), client_context(self.certs.ca, cert, key)) as conn:
            conn.sendall(b"RAMPART/1 http\n" + f"PUT /internal/member-info HTTP/1.1\r\nHost: x\r\n"
                         f"Connection: close\r\nContent-Length: {len(record)}\r\n\r\n".encode() + record)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 403"), answer)
        for d in self.nodes:
            m = next(m for m in self.status(d)["members"] if m["node_id"] == "node_3")
            self.assertNotEqual(m["api_address"], "203.0.113.9:7700")

        # api.advertise (here from the environment) replaces the bound address,
        # and a changed advertisement reaches every node.
        follower = self.followers[0]
        follower.stop()
        follower.env["RAMPART_API_ADVERTISE"] = "192.0.2.7:7700"
        self.restart(follower)

        def advertised_everywhere():
            for d in self.nodes:
                m = next(m for m in self.status(d)["members"] if m["node_id"] == follower.node_id)
                if m["api_address"] != "192.0.2.7:7700":
                    return False
            return True

        self.eventually(advertised_everywhere, timeout=15, what="the new advertisement on every node")

    def test_follower_redirects_to_the_leader_and_clients_follow(self):
        follower = self.followers[0]
        r = follower.request("PUT", "/v1/kv/redirect/a?flags=7", body=b"x", headers=AUTH)
        self.assertEqual(r.status, 307, r.body)
        self.assertEqual(header(r, "Location"), f"http://{self.leader.address}/v1/kv/redirect/a?flags=7")
        self.assertEqual(header(r, "X-Rampart-Leader"), self.leader.node_id)
        self.assertEqual(json.loads(r.body)["leader"], self.leader.node_id)
        # Not written: the client has to go to the leader itself.
        self.assertEqual(self.leader.request("GET", "/v1/kv/redirect/a", headers=AUTH).status, 404)
        # A read at default consistency needs the leader too; a stale one does not.
        r = follower.request("GET", "/v1/kv/redirect/a", headers=AUTH)
        self.assertEqual((r.status, header(r, "Location")), (307, f"http://{self.leader.address}/v1/kv/redirect/a"))
        self.assertEqual(follower.request("GET", "/v1/kv/redirect/a?stale", headers=AUTH).status, 404)

        # curl follows with the PUT, its body (307 keeps both) and, with
        # --location-trusted, the token (plain -L drops it on another host:port).
        out = subprocess.run(["curl", "-sS", "--location-trusted", "-X", "PUT", "--data-binary", "via-curl", "-H",
                              f"Authorization: Bearer {TOKEN}", f"http://{follower.address}/v1/kv/redirect/curl"],
                             capture_output=True, text=True, timeout=scaled(10))
        self.assertEqual((out.returncode, out.stdout.strip()), (0, "true"), out.stderr)
        for d in self.nodes:
            self.wait_value(d, "redirect/curl", b"via-curl")

        # rampartctl follows it for a write (POST-like PUT) and for a read.
        env = self.ctl_env(follower)
        out, _ = self.run_ctl(env, "--json", "acl", "token", "create", "--role", "read", "--description", "redir")
        self.assertEqual(out.returncode, 0, out.stderr)
        accessor = json.loads(out.stdout)["AccessorID"]
        out, _ = self.run_ctl(env, "--json", "acl", "token", "list")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(accessor, out.stdout)

        # docs/cluster.md, "Redirect mode": its examples, as written.
        self.run_doc_examples("cluster.md", "redirect-examples",
                              {"FOLLOWER": follower.address, "AUTH": f"Authorization: Bearer {TOKEN}",
                               "RAMPART_HTTP_TOKEN": TOKEN},
                              {"127.0.0.1:7700": self.leader.address, "node_1": self.leader.node_id})

    def test_without_a_leader_503_and_rampartctl_retries_a_bounded_number_of_times(self):
        survivor = self.followers[0]
        for d in self.nodes:
            if d is not survivor:
                d.stop()

        def no_leader():
            r = survivor.request("GET", "/v1/acl/tokens", headers=AUTH)
            return r if r.status == 503 else None

        r = self.eventually(no_leader, timeout=15, what="503 without a leader")
        self.assertEqual(header(r, "Retry-After"), "1")
        self.assertEqual(json.loads(r.body)["code"], "no_leader")
        logged = lambda: survivor.log_text().count('"path":"/v1/acl/tokens"')  # noqa: E731

        def settled():
            # The access log line of the last poll may still be on its way.
            first = logged()
            time.sleep(0.3)
            return first if logged() == first else None

        before = self.eventually(settled, what="the survivor's access log settling")
        out, elapsed = self.run_ctl(self.ctl_env(survivor), "acl", "token", "list")
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("503", out.stderr + out.stdout)
        # One request and three retries, a second apart (Retry-After: 1).
        self.assertGreaterEqual(elapsed, 3)
        self.eventually(lambda: logged() - before >= 4, timeout=5, what="four requests in the survivor's access log")
        self.assertEqual(logged() - before, 4)


class RedirectOverHttps(AdvertisedCase):
    def https_status(self, d):
        status, _, body = https_get(d.host, d.port, client_context(self.certs.ca), "/v1/cluster/status", AUTH)
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def test_rampartctl_over_https_follows_the_redirect_and_verifies_the_leader(self):
        nodes = self.start_cluster(env=REDIRECT, api_tls=True)

        def leader():
            states = {d: self.https_status(d)["state"] for d in nodes}
            leaders = [d for d, s in states.items() if s == "leader"]
            return leaders[0] if len(leaders) == 1 else None

        lead = self.eventually(leader, timeout=15, what="one leader")
        self.wait_advertised(nodes, self.https_status)
        for m in self.https_status(lead)["members"]:
            self.assertEqual(m["api_scheme"], "https")
        follower = next(d for d in nodes if d is not lead)
        addr = f"https://{follower.address}"

        out, _ = self.run_ctl(self.ctl_env(follower, addr, RAMPART_CACERT=self.certs.ca), "--json", "acl", "token",
                              "create", "--role", "read")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("SecretID", out.stdout)
        # The same with flags instead of the environment.
        env = self.ctl_env(follower, "127.0.0.1:1")
        out, _ = self.run_ctl(env, "--addr", addr, "--cacert", self.certs.ca, "--json", "acl", "token", "list")
        self.assertEqual(out.returncode, 0, out.stderr)

        # curl follows too, checking the leader's IP SAN.
        out = subprocess.run(["curl", "-sS", "--location-trusted", "--cacert", self.certs.ca, "-X", "PUT", "--data-binary", "tls",
                              "-H", f"Authorization: Bearer {TOKEN}", f"{addr}/v1/kv/redirect/https"],
                             capture_output=True, text=True, timeout=scaled(10))
        self.assertEqual((out.returncode, out.stdout.strip()), (0, "true"), out.stderr)

        # docs/tls.md: rampartctl's HTTPS examples, as written.
        self.run_doc_examples("tls.md", "rampartctl-https-examples",
                              {"FOLLOWER": follower.address, "CERT_DIR": self.certs.dir, "RAMPART_HTTP_TOKEN": TOKEN},
                              {"127.0.0.1:7710": follower.address})

        # No CA: refused before anything is sent; another CA: the chain fails.
        out, _ = self.run_ctl(self.ctl_env(follower, addr), "cluster", "status")
        self.assertEqual(out.returncode, 1)
        self.assertIn("RAMPART_CACERT", out.stderr)
        other_ca, _ = self.certs.other_ca()
        out, _ = self.run_ctl(self.ctl_env(follower, addr, RAMPART_CACERT=other_ca), "cluster", "status")
        self.assertEqual(out.returncode, 1)
        self.assertIn("TLS handshake failed", out.stderr)
        # A name the certificate does not carry.
        out, _ = self.run_ctl(self.ctl_env(follower, addr, RAMPART_CACERT=self.certs.ca,
                                           RAMPART_TLS_SERVER_NAME="node_9"), "cluster", "status")
        self.assertEqual(out.returncode, 1)
        self.assertIn("TLS handshake failed", out.stderr)


class AdvertiseConfig(unittest.TestCase):
    def test_bad_values_are_configuration_errors(self):
        for env, why in ((REDIRECT, None), ({"RAMPART_API_ADVERTISE": "10.0.0.1:7700"}, None),
                         ({"RAMPART_API_ADVERTISE": "rampart.example:7700"}, "host names are not allowed"),
                         ({"RAMPART_CLUSTER_FOLLOWER_WRITES": "bounce"}, "forward")):
            d = Daemon(env=env, args=["--check-config", "-c", "rampart.yml"])
            self.addCleanup(d.cleanup)
            out = subprocess.run([RAMPARTD, "--check-config", "-c", d.config_path], env=d.env, capture_output=True,
                                 text=True, timeout=scaled(10))
            if why is None:
                self.assertEqual(out.returncode, 0, out.stderr)
            else:
                self.assertEqual(out.returncode, 78, out.stderr)
                self.assertIn(why, out.stderr)
                self.assertIn(next(iter(env)), out.stderr)


if __name__ == "__main__":
    unittest.main()
