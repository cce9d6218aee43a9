// The leader's side of membership (issue 6): turns the replicated member
// table (store/membership_state.h) into the engine's configuration, one
// change at a time, and keeps doing so on whichever node leads:
//
//  1. a member that left, or whose node id rejoined under a new Raft id
//     (its data was lost), is removed; the leader itself first hands its
//     leadership over;
//  2. a joined member not in the configuration is added (as a spare), then
//     made a standby so that it replicates;
//  3. a standby whose granted role is voter is promoted once caught up
//     (cluster.auto_promote; within promote_max_lag entries of the log);
//  4. with cluster.remove_dead_after_ms > 0, a member the leader has not
//     heard from for that long is removed (a member_leave entry), but only
//     when the voters left reachable still make a quorum of the smaller
//     configuration. Spares are never judged dead: nothing is sent to them.
#pragma once

#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "cluster/membership_timer.h"

namespace rampart::audit {
class AuditLog;
}
namespace rampart::store {
class Store;
}

namespace rampart::cluster {

class RaftBridge;

class MembershipManager {
public:
    struct Settings {
        std::string node_id;
        bool auto_promote = true;
        uint64_t promote_max_lag = 64;      // entries behind the leader's log at most
        uint64_t remove_dead_after_ms = 0;  // 0 = never
        uint64_t interval_ms = 200;
    };

    MembershipManager(uv_loop_t* loop, store::Store& store, RaftBridge& bridge, audit::AuditLog* audit,
                      Settings settings);
    ~MembershipManager();
    MembershipManager(const MembershipManager&) = delete;
    MembershipManager& operator=(const MembershipManager&) = delete;

    void start();
    void close();
    // Settings that SIGHUP may change.
    void set_policy(bool auto_promote, uint64_t remove_dead_after_ms) {
        settings_.auto_promote = auto_promote;
        settings_.remove_dead_after_ms = remove_dead_after_ms;
    }

private:
    struct Pending;
    static void cb_timer(uv_timer_t* t);
    static void cb_changed(void* ctx, int status);
    void tick();
    bool begin_change(const char* what, uint64_t raft_id, const std::string& node_id, int rv);
    void audit(const char* event, const std::string& node_id, uint64_t raft_id, const std::string& detail);

    uv_loop_t* loop_;
    store::Store& store_;
    RaftBridge& bridge_;
    audit::AuditLog* audit_;
    Settings settings_;
    std::unique_ptr<MembershipTimer> timer_;
    Pending* pending_ = nullptr;  // the one change in flight
    bool proposing_ = false;      // a member_leave entry in flight
    bool transferring_ = false;   // handing leadership over before leaving
    // Members the leader has never heard from, since when (uv_now): a new
    // leader knows no last contact for a member that died before it led.
    std::map<uint64_t, uint64_t> silent_since_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rampart::cluster
