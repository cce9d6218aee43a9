// The joining side (issue 6): a node started with cluster.seeds and
// cluster.join_token and no Raft state asks a seed, over the peer port's
// internal HTTP, to admit it (POST /v1/cluster/join). The leader consumes
// the token through the log and adds the node; the engine then hears from
// the leader and catches up. Start-up never waits for this: the node
// serves (503 on /ready) while it joins.
//
// Retries are plain and bounded: a seed that cannot be reached or has no
// leader is retried (the next seed, every retry_ms, at most max_attempts
// times); a refusal (bad, expired or reused token, certificate mismatch)
// stops at once, because asking again cannot change the answer.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/membership_address.h"
#include "cluster/membership_timer.h"

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

class Joiner {
public:
    struct Settings {
        std::string node_id;
        uint64_t raft_id = 0;
        std::string peer_address;  // this node's, as the others dial it
        std::string token;
        std::string role;  // cluster.role: what the node asks for
        std::vector<MemberAddress> seeds;
        unsigned max_attempts = 60;
        uint64_t retry_ms = 1000;
    };
    enum class State { Idle, Joining, Joined, Refused, GaveUp };

    Joiner(uv_loop_t* loop, MembershipClient& client, RaftBridge& bridge, Settings settings);
    ~Joiner();
    Joiner(const Joiner&) = delete;
    Joiner& operator=(const Joiner&) = delete;

    void start();
    void close();
    State state() const { return state_; }

private:
    static void cb_timer(uv_timer_t* t);
    void attempt();
    void answered(int status, const std::string& body, const std::string& error);
    void retry_later(const std::string& why);

    uv_loop_t* loop_;
    MembershipClient& client_;
    RaftBridge& bridge_;
    Settings settings_;
    std::unique_ptr<MembershipTimer> timer_;
    State state_ = State::Idle;
    unsigned attempts_ = 0;
    bool closed_ = false;
};

// The join request body for `s` (the fields POST /v1/cluster/join takes).
std::string join_request_json(const Joiner::Settings& s);

}  // namespace rampart::cluster
