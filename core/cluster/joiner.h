// The joining side (issue 6): a node started with a join token and no Raft
// state asks a seed, over the peer port's internal HTTP, to admit it
// (POST /v1/cluster/join). The leader consumes the token through the log
// and adds the node; the engine then hears from the leader and catches up.
// Start-up never waits for this: the join loop (join_loop.h) runs these
// attempts in the background, round after round under backoff.lua, while
// the node serves (503 "joining" on /ready).
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/join_loop.h"
#include "cluster/membership_address.h"

namespace rampart::cluster {

class MembershipClient;
class RaftBridge;

// This node's Raft id and whether it must join (decided once at start).
// A node that joined keeps its random id in <data_dir>/raft_id; a node
// bootstrapped from etc/peers.yml derives it from its node id. A pristine
// data dir (no Raft state) with a join token joins under a new random id:
// the way back for a member whose data was lost.
struct RaftIdentity {
    uint64_t raft_id = 0;
    bool join = false;
};
bool choose_raft_identity(const std::string& data_dir, const std::string& node_id, bool has_join_token,
                          RaftIdentity* out, std::string* error);

// The join loop's attempt (join_loop.h): one POST /v1/cluster/join to one
// seed, through the peer retry loop for its classification and metrics
// (rampart_peer_request_total{peer,status}) but with one attempt and no
// breaker: the join loop paces the retries itself, under backoff.lua.
//   200                      -> joined: the answer's members are handed to
//                               the Raft bridge until the engine has the
//                               configuration;
//   4xx                      -> refused for good (a bad, expired or reused
//                               token, a certificate naming another node):
//                               asking again cannot change the answer;
//   anything else            -> retryable (the seed is down, has no leader,
//                               answered 5xx, or timed out), with the reason.
// A join is idempotent by nature: the leader answers a repeat of a join it
// admitted again, without spending the token twice.
class JoinAttempt {
public:
    struct Settings {
        std::string node_id;
        uint64_t raft_id = 0;
        std::string peer_address;  // this node's, as the others dial it
        std::string token;
        std::string role;  // cluster.role: what the node asks for
    };
    // The node id a seed's certificate must name, when the seed does not
    // say (a static seed): "" when unknown.
    using NameFor = std::function<std::string(const std::string& address)>;

    JoinAttempt(MembershipClient& client, RaftBridge& bridge, bool tls, NameFor name_for, Settings settings);

    void operator()(const Seed& seed, std::function<void(JoinOutcome)> done);
    const Settings& settings() const { return settings_; }

private:
    MembershipClient& client_;
    RaftBridge& bridge_;
    bool tls_;
    NameFor name_for_;
    Settings settings_;
};

// The join request body for `s` (the fields POST /v1/cluster/join takes).
std::string join_request_json(const JoinAttempt::Settings& s);

}  // namespace rampart::cluster
