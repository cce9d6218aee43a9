"""Mixed versions during a rolling upgrade (docs/cluster.md, "Rolling
upgrades"), on real daemons. node_3 plays a build that knows only version 1
of every command (the test-only switch RAMPART_TEST_COMMAND_VERSION_MAX=1):

- it declares so, and GET /v1/cluster/status shows it on the leader;
- the leader then writes a service registration as version 1 when version 1
  can carry it (node_3 applies it and keeps running), and refuses one that
  needs version 2 (meta) with 503 command_version_unsupported;
- once node_3 runs the full build again ("upgraded") and declares version 2,
  the same registration succeeds and reaches node_3;
- started once more as the old build, node_3 meets that version-2 entry in
  its log and stops with exit status 1, the index and version in its log,
  instead of skipping it or applying it wrongly."""
import json
import time
import unittest

from cluster_util import AUTH, ClusterCase
from harness import scaled

OLD_BUILD = {"RAMPART_TEST_COMMAND_VERSION_MAX": "1"}
PLAIN = {"ID": "plain-1", "Name": "plain", "Port": 80}                  # fits version 1
WITH_META = {"ID": "meta-1", "Name": "meta", "Meta": {"zone": "eu"}}     # needs version 2


class MixedVersions(ClusterCase):
    def register(self, d, service):
        return d.request("PUT", "/v1/agent/service/register", body=json.dumps(service), headers=AUTH)

    def declared(self, d, node_id):
        """What `d` knows node_id decodes of service_register (None before its advertisement)."""
        for m in self.status(d)["members"]:
            if m["node_id"] == node_id and m["versions"] is not None:
                return m["versions"]["service_register"]
        return None

    def wait_service(self, d, name):
        self.eventually(lambda: json.loads(d.request("GET", f"/v1/catalog/service/{name}?stale",
                                                     headers=AUTH).body or b"[]"),
                        what=f"service {name} on {d.node_id}")

    def test_old_voter_limits_versions_then_stops_on_one_it_does_not_know(self):
        nodes, old, leader = self.start_with_an_old_voter(OLD_BUILD)
        self.eventually(lambda: self.declared(leader, "node_3") == 1, what="node_3 declaring version 1")
        self.eventually(lambda: self.declared(leader, "node_1") == 2, what="node_1 declaring version 2")

        r = self.register(leader, WITH_META)
        self.assertEqual(r.status, 503, r.body)
        self.assertEqual(json.loads(r.body)["code"], "command_version_unsupported")
        self.assertIsNotNone(r.headers.get("retry-after"))
        r = self.register(leader, PLAIN)
        self.assertEqual(r.status, 200, r.body)
        self.wait_service(old, "plain")
        self.assertIsNone(old.proc.poll())

        # The rolling upgrade reaches node_3: the full build declares version 2.
        old.stop()
        for k in OLD_BUILD:
            del old.env[k]
        self.restart(old)
        self.eventually(lambda: all(self.declared(d, "node_3") == 2 for d in nodes), timeout=15,
                        what="node_3's new declaration on every node")

        def registered():
            for d in nodes:
                r = self.register(d, WITH_META)  # followers forward to the leader
                if r.status == 200:
                    return r
            return None

        r = self.eventually(registered, what="the meta registration accepted")
        index = int(r.headers["x-rampart-index"])
        self.wait_service(old, "meta")

        # Rolled back to the old build: its log holds a version-2 entry.
        old.stop()
        old.env.update(OLD_BUILD)
        self.restart(old, wait=False)
        self.assertEqual(old.wait(timeout=30), 1, old.log_text()[-3000:])
        stop = old.wait_log(lambda e: e.get("level") == "error" and e.get("command") == "service_register")
        self.assertEqual((stop["index"], stop["version"], stop["known_version"]), (index, 2, 1))
        self.assertIn("does not know", stop["msg"])
        # The other two are unaffected: a quorum of two keeps taking writes.
        self.put_on_leader(nodes[:2], "mixed/after", b"ok")


if __name__ == "__main__":
    unittest.main()
