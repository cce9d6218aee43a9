// Raft over the peer port. The engine (through core/cluster/raft_adapter)
// never opens a socket: each of its connections is a peer connection with
// the preamble "raft" (mutual TLS through the transport plugin), handed to
// the adapter as a socket by peer::SocketBridge. An accepted connection's
// certificate must name a member, and the adapter then checks that the
// engine on the other side claims that member's Raft id.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/raft_adapter.h"
#include "peer/socket_bridge.h"

namespace rampart::cluster {

// A node's Raft id, derived from its node id so that every member computes
// the same bootstrap configuration from etc/peers.yml (FNV-1a, 63 bits,
// never 0).
uint64_t raft_id_for(std::string_view node_id);

struct Member {
    std::string node_id;
    uint64_t raft_id = 0;
    std::string peer_address;  // "ip:port" (the Raft configuration's address)
};

class RaftBridge {
public:
    RaftBridge(uv_loop_t* loop, peer::PeerNetwork* network, std::vector<Member> members)
        : loop_(loop), sockets_(loop, network), members_(std::move(members)) {}

    // Register the "raft" protocol on the peer port. False if taken.
    bool install();
    // The transport to put in rampart_raft_config.
    rampart_raft_transport transport();
    // Where accepted streams go: the adapter's accept_fd (set once the
    // engine exists; streams accepted before that are refused).
    void set_acceptor(std::function<int(int fd, uint64_t expected_id)> accept) { accept_ = std::move(accept); }
    // SIGHUP changed etc/peers.yml: who may connect, and where to dial.
    void set_members(std::vector<Member> members) { members_ = std::move(members); }
    const std::vector<Member>& members() const { return members_; }
    const Member* member_by_id(uint64_t id) const;
    void close_all() { sockets_.close_all(); }
    // recovery.on_pin_mismatch: seconds to hold off dialling a member whose
    // certificate failed its pin (`just_failed`: asked at the failure, else
    // at each engine connect while held, so a reload applies at once).
    // Unset: the engine redials on its own schedule.
    void set_pin_hold(std::function<double(const std::string& node_id, bool just_failed)> hold) {
        pin_hold_ = std::move(hold);
    }

private:
    static int cb_connect(void* user, rampart_raft_connect* req, uint64_t id, const char* address);
    static void cb_cancel(void* user, rampart_raft_connect* req);
    const Member* member_for_certificate(const rampart_peer_identity* peer) const;
    bool accepted(const rampart_peer_identity* peer, int fd);
    void dial_failed(const std::string& node_id, const char* reason);
    bool pin_held(const std::string& node_id);

    uv_loop_t* loop_;
    peer::SocketBridge sockets_;
    std::vector<Member> members_;
    std::function<double(const std::string&, bool)> pin_hold_;
    std::map<std::string, uint64_t> pin_failed_at_;  // node id -> loop time of its last pin mismatch
    std::function<int(int, uint64_t)> accept_;
    // Engine connects in progress, to cancel them when the node closes.
    std::vector<std::pair<rampart_raft_connect*, peer::SocketBridge::Link*>> dials_;
};

}  // namespace rampart::cluster
