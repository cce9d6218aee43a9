// What this node knows about the cluster, for GET /v1/status/… and
// /v1/cluster/status (status_routes.h), `rampartctl cluster status` and the
// rampart_raft_* metrics. Everything is read from the Raft adapter's getters
// on the loop; node ids come from the members list (etc/peers.yml + this
// node) through the Raft id each member derives from its node id.
//
// Only the leader tracks replication: on a follower, match index, lag and
// last contact are unknown (progress_known false) except the follower's
// contact with its leader.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/member_info.h"
#include "cluster/raft_bridge.h"

namespace rampart::metrics {
class Metric;
class Registry;
}  // namespace rampart::metrics

namespace rampart::store {
class Store;
}

namespace rampart::cluster {

struct MemberStatus {
    std::string node_id;  // "" when no known member has this Raft id
    uint64_t raft_id = 0;
    std::string address;  // peer address, as in the Raft configuration
    std::string role;     // voter / standby / spare
    bool is_self = false;
    bool is_leader = false;
    bool progress_known = false;  // the fields below: leader only
    uint64_t match_index = 0;
    uint64_t lag = 0;                      // entries: the leader's last index - match_index
    int64_t last_contact_ms = -1;          // -1: unknown or never
    std::optional<MemberInfo> advertised;  // its advertisement (member_info.h), once replicated
};

struct NodeStatus {
    std::string node_id;
    uint64_t raft_id = 0;
    std::string state = "unavailable";  // leader / follower / candidate / unavailable
    std::string role;                   // this node's role in the configuration ("" if none)
    uint64_t term = 0;
    uint64_t commit_index = 0;
    uint64_t applied_index = 0;
    uint64_t last_index = 0;
    uint64_t leader_raft_id = 0;  // 0: no known leader
    std::string leader_node_id;
    std::string leader_address;
    int64_t leader_contact_ms = -1;  // since this node last heard from the leader
    unsigned voters = 0;
    unsigned quorum_size = 0;  // voters / 2 + 1 (0 without voters)
    uint64_t leader_changes = 0;
    bool progress_known = false;  // this node leads: members carry replication
    std::vector<MemberStatus> members;
};

// The JSON of GET /v1/cluster/status (docs/cluster.md, "Cluster status").
std::string status_json(const NodeStatus& s);

class ClusterStatus {
public:
    using MembersFn = std::function<std::vector<Member>()>;
    // Refresh period of the gauges; events refresh them at once too.
    static constexpr uint64_t kRefreshMs = 1000;

    // `members` is asked at each snapshot (etc/peers.yml may be reloaded).
    // `registry` may be null (no metrics).
    ClusterStatus(uv_loop_t* loop, store::Store& store, std::string node_id, MembersFn members,
                  metrics::Registry* registry);
    ~ClusterStatus();
    ClusterStatus(const ClusterStatus&) = delete;
    ClusterStatus& operator=(const ClusterStatus&) = delete;

    // Observe the engine (after Store::start) and start the refresh timer
    // (the constructor touches no loop handle).
    void start();
    // Stop observing; call before the store closes.
    void close();

    // What this node advertises now: its own row shows it until the
    // replicated record arrives (a cluster of one never replicates it).
    void set_self_advertisement(std::function<MemberInfo()> self) { self_advertisement_ = std::move(self); }

    NodeStatus snapshot() const;
    // The leader's peer address ("" when none) and the voters' addresses.
    std::string leader_address() const;
    std::vector<std::string> voter_addresses() const;

private:
    static void cb_state_changed(void* user);
    static void cb_applied(void* user, int status, double seconds);
    static void cb_timer(uv_timer_t* timer);
    void refresh_metrics();

    uv_loop_t* loop_;
    store::Store& store_;
    std::string node_id_;
    MembersFn members_;
    std::function<MemberInfo()> self_advertisement_;
    uv_timer_t* timer_ = nullptr;  // freed by its close callback
    bool observing_ = false;
    uint64_t leader_changes_counted_ = 0;
    metrics::Metric* term_ = nullptr;
    metrics::Metric* is_leader_ = nullptr;
    metrics::Metric* commit_index_ = nullptr;
    metrics::Metric* applied_index_ = nullptr;
    metrics::Metric* leader_changes_ = nullptr;
    metrics::Metric* apply_duration_ = nullptr;
    metrics::Metric* quorum_size_ = nullptr;
    metrics::Metric* replication_lag_ = nullptr;
};

}  // namespace rampart::cluster
