// Keeps this node's advertisement (member_info.h) in the replicated state:
// a few times a second, in a cluster of more than one member, it compares
// what the node would advertise now with what the state holds for it, and
// when they differ (at start, after a change, after a snapshot restore
// dropped it) it announces the record through the leader. The leader proposes it itself; a follower sends it to
// the leader over the peer port ("http", mutual TLS) as
// `PUT /internal/member-info`, which only peer connections may call and
// only for the node id their certificate names.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "cluster/member_info.h"
#include "peer/socket_bridge.h"

namespace rampart::http {
class Router;
}
namespace rampart::store {
class Store;
}

namespace rampart::cluster {

class MemberInfoAnnouncer {
public:
    // What this node advertises now.
    using DesiredFn = std::function<MemberInfo()>;
    // The leader's (node id, peer address); node id "" when unknown.
    using LeaderFn = std::function<std::pair<std::string, std::string>()>;

    MemberInfoAnnouncer(uv_loop_t* loop, peer::PeerNetwork* network, store::Store& store, DesiredFn desired,
                        LeaderFn leader);
    ~MemberInfoAnnouncer();
    MemberInfoAnnouncer(const MemberInfoAnnouncer&) = delete;
    MemberInfoAnnouncer& operator=(const MemberInfoAnnouncer&) = delete;

    // The leader's end: PUT /internal/member-info.
    void install_route(http::Router& router);
    void start();
    void close();

    static constexpr uint64_t kCheckMs = 200;
    static constexpr uint64_t kTimeoutMs = 5000;  // one announcement to the leader

private:
    class Call;
    static void cb_tick(uv_timer_t* timer);
    void tick();
    void finished(bool ok, uint64_t index);

    uv_loop_t* loop_;
    store::Store& store_;
    DesiredFn desired_;
    LeaderFn leader_;
    peer::SocketBridge sockets_;
    uv_timer_t* timer_ = nullptr;  // freed by its close callback
    std::unique_ptr<Call> call_;   // the announcement in flight, if any
    bool in_flight_ = false;
    uint64_t committed_index_ = 0;  // wait until applied here before comparing again
};

}  // namespace rampart::cluster
