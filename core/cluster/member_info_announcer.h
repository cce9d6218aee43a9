// Keeps this node's advertisement (member_info.h) in the replicated state:
// a few times a second, in a cluster of more than one member, it compares
// what the node would advertise now with what the state holds for it, and
// when they differ (at start, after a change, after a snapshot restore
// dropped it) it announces the record through the leader. The leader proposes it itself; a follower sends it to
// the leader over the peer port ("http", mutual TLS) as
// `PUT /internal/member-info`, which only peer connections may call and
// only for the node id their certificate names. That request goes through
// the membership client (membership_client.h): classified and counted in
// rampart_peer_request_total like every node-to-node request, one attempt
// per tick (the next tick is the retry).
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "cluster/member_info.h"

namespace rampart::http {
class Router;
}
namespace rampart::store {
class Store;
}

namespace rampart::cluster {

class MembershipClient;

class MemberInfoAnnouncer {
public:
    // What this node advertises now.
    using DesiredFn = std::function<MemberInfo()>;
    // The leader's (node id, peer address); node id "" when unknown.
    using LeaderFn = std::function<std::pair<std::string, std::string>()>;

    // `client` may be null (no peer port: a cluster of one, nobody to tell).
    MemberInfoAnnouncer(uv_loop_t* loop, MembershipClient* client, store::Store& store, DesiredFn desired,
                        LeaderFn leader);
    ~MemberInfoAnnouncer();
    MemberInfoAnnouncer(const MemberInfoAnnouncer&) = delete;
    MemberInfoAnnouncer& operator=(const MemberInfoAnnouncer&) = delete;

    // The leader's end: PUT /internal/member-info.
    void install_route(http::Router& router);
    void start();
    void close();

    static constexpr uint64_t kCheckMs = 200;

private:
    static void cb_tick(uv_timer_t* timer);
    void tick();
    void finished(bool ok, uint64_t index);

    uv_loop_t* loop_;
    store::Store& store_;
    DesiredFn desired_;
    LeaderFn leader_;
    MembershipClient* client_;
    uv_timer_t* timer_ = nullptr;  // freed by its close callback
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    bool in_flight_ = false;        // an announcement is on its way
    uint64_t committed_index_ = 0;  // wait until applied here before comparing again
};

}  // namespace rampart::cluster
