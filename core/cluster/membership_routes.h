// The membership routes (issue 6; docs/cluster.md "Changing the cluster"):
//
//   POST   /v1/cluster/join-token          admin  make a join token (answered once)
//   GET    /v1/cluster/join-tokens         admin  the live tokens, never their secrets
//   DELETE /v1/cluster/join-token/<id>     admin  revoke one
//   POST   /v1/cluster/join                join token + certificate: admit a node;
//                                          with "seeds" and an admin token: join this node
//   POST   /v1/cluster/leave               admin  {"node_id"} (default: this node) leaves
//   POST   /v1/cluster/transfer-leadership admin  {"to"} (default: the most up-to-date voter)
//
// All but the list act on the leader. A follower relays the request to the
// leader over the peer port (cluster/membership_client.h) with the client's
// token, and marks it with X-Rampart-Relayed-By: a join's certificate is
// checked where the joiner's TLS connection ends, so the leader admits a
// relayed join only from a member's verified peer connection.
//
// Relays are writes, so they go through the peer retry loop but are sent
// again after a failure only when that cannot apply them twice:
//   - join: idempotent by nature. The leader answers a repeat of a join it
//     admitted (same node id and Raft id) with the same admission, without
//     spending the token again; retried as retry.lua says.
//   - leave, transfer-leadership, join-token create and revoke: not. A
//     second transfer moves leadership again, a second create makes a
//     second token, and a repeated leave or revoke answers 404 for what the
//     first did. Sent once, unless the client's request carries an
//     Idempotency-Key (relayed with it), as forwarded writes are, or the
//     node it reached refused it unapplied because it no longer leads
//     (cluster/not_applied.h): then it goes to the leader known now.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cluster/membership_address.h"

namespace rampart::audit {
class AuditLog;
}
namespace rampart::http {
class Router;
}
namespace rampart::store {
class Store;
}

namespace rampart::cluster {

class MembershipClient;
class RaftBridge;

inline constexpr const char* kRelayedBy = "X-Rampart-Relayed-By";

struct MembershipRoutes {
    store::Store* store = nullptr;
    RaftBridge* bridge = nullptr;  // null without a peer port: one node, nothing to join
    MembershipClient* client = nullptr;
    audit::AuditLog* audit = nullptr;
    std::string node_id;
    bool auth_enabled = false;
    // Join this node through `seeds` with `token` (rampartctl cluster
    // join); false with *error when it cannot (it has a configuration).
    std::function<bool(const std::string& token, const std::vector<MemberAddress>& seeds, std::string* error)>
        join_self;
};

// `routes` must outlive the router.
void install_membership_routes(http::Router& router, const MembershipRoutes& routes);

}  // namespace rampart::cluster
