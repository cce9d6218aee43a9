// Raft over the peer port. The engine (through core/cluster/raft_adapter)
// never opens a socket: for each of its connections the bridge dials or
// accepts a peer connection with the preamble "raft" (mutual TLS through
// the transport plugin, the other node's id checked against its
// certificate) and joins it to one end of a socketpair whose other end the
// adapter reads. Both directions apply back-pressure: a slow engine pauses
// reading from the peer, and a slow peer pauses reading from the engine, so
// neither side's buffers grow past a bound.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/raft_adapter.h"
#include "rampart/plugin.h"

namespace rampart::peer {
class PeerNetwork;
}

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
    RaftBridge(uv_loop_t* loop, peer::PeerNetwork* network, std::vector<Member> members);
    ~RaftBridge();
    RaftBridge(const RaftBridge&) = delete;
    RaftBridge& operator=(const RaftBridge&) = delete;

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
    // Close every link (shutdown).
    void close_all();

    // Bytes held in one direction before that side pauses its source.
    static constexpr size_t kHighWater = size_t{1} << 20;

private:
    class Link;
    friend class Link;

    static const rampart_conn_callbacks* bridge_callbacks();
    static int cb_connect(void* user, rampart_raft_connect* req, uint64_t id, const char* address);
    static void cb_cancel(void* user, rampart_raft_connect* req);
    static void cb_open(void* arg, rampart_conn* conn, const rampart_handshake_result* result);
    static void cb_data(void* arg, rampart_conn* conn, const char* data, size_t len);
    static void cb_close(void* arg, rampart_conn* conn, const char* error_class);
    static void cb_writable(void* arg, rampart_conn* conn);

    const Member* member_by_id(uint64_t id) const;
    const Member* member_for_certificate(const rampart_peer_identity* peer) const;
    Link* link_of(rampart_conn* conn);
    void accepted(rampart_conn* conn, const rampart_handshake_result* result);
    void link_closed(Link* link);

    uv_loop_t* loop_;
    peer::PeerNetwork* network_;
    std::vector<Member> members_;
    std::function<int(int, uint64_t)> accept_;
    std::map<rampart_conn*, std::unique_ptr<Link>> links_;
    std::vector<std::unique_ptr<Link>> closing_;  // links whose pipe is still closing
};

}  // namespace rampart::cluster
