// Raft over the peer port. The engine (through core/cluster/raft_adapter)
// never opens a socket: each of its connections is a peer connection with
// the preamble "raft" (mutual TLS through the transport plugin), handed to
// the adapter as a socket by peer::SocketBridge.
//
// Identity: a Raft id belongs to one node id. The bridge knows the
// bindings from the engine's configuration ("<node_id>@<address>",
// cluster/membership_address.h), from etc/peers.yml (bootstrap members,
// whose ids are derived from their node ids) and from a join's answer (the
// members a joiner must talk to before its engine has a configuration). An
// accepted stream whose certificate names node N may only claim a Raft id
// bound to N; a dialled one must present the certificate of the node that
// owns the id dialled.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/peer_dial_tasks.h"
#include "cluster/raft_adapter.h"
#include "peer/socket_bridge.h"

namespace rampart::cluster {

// A node's Raft id when it bootstraps from etc/peers.yml, derived from its
// node id so that every member computes the same initial configuration
// (FNV-1a, 63 bits, never 0). Joined members have random ids.
uint64_t raft_id_for(std::string_view node_id);

struct Member {
    std::string node_id;
    uint64_t raft_id = 0;
    std::string peer_address;  // "ip:port"
};

// The members of the engine's current configuration, with the node ids
// their addresses carry ("" for addresses without one). Empty for null.
std::vector<Member> configuration_members(const rampart_raft* engine);

class RaftBridge {
public:
    using ConfigMembersFn = std::function<std::vector<Member>()>;

    RaftBridge(uv_loop_t* loop, peer::PeerNetwork* network, std::vector<Member> members)
        : loop_(loop), sockets_(loop, network), members_(std::move(members)) {}

    // Register the "raft" protocol on the peer port. False if taken.
    bool install();
    // The transport to put in rampart_raft_config.
    rampart_raft_transport transport();
    // Where accepted streams go: the adapter's accept_named (set once the
    // engine exists; streams accepted before that are refused).
    void set_acceptor(std::function<int(int fd, const char* peer_name)> accept) { accept_ = std::move(accept); }
    // The engine's configuration, asked at each lookup.
    void set_config_members(ConfigMembersFn fn) { config_members_ = std::move(fn); }
    // SIGHUP changed etc/peers.yml: who may connect, and where to dial.
    void set_members(std::vector<Member> members) { members_ = std::move(members); }
    // Members a join's answer named (before the engine has a configuration).
    void add_known(const std::vector<Member>& members);
    // Every binding known: the configuration's first, then etc/peers.yml,
    // then a join's answer; one entry per Raft id.
    std::vector<Member> members() const;
    // The member owning `id`, or nullptr.
    std::optional<Member> member_by_id(uint64_t id) const;
    void close_all() { sockets_.close_all(); }
    // recovery.on_pin_mismatch: seconds to hold off dialling a member whose
    // certificate failed its pin (`just_failed`: asked at the failure, else
    // at each engine connect while held, so a reload applies at once).
    // Unset: the engine redials on its own schedule.
    void set_pin_hold(std::function<double(const std::string& node_id, bool just_failed)> hold) {
        pin_hold_ = std::move(hold);
    }

    // The engine's dials under the supervisor, one task per peer
    // (peer_dial_tasks.h); waits capped at `max_delay_ms`.
    void supervise_dials(resilience::Supervisor& supervisor, uint64_t max_delay_ms) {
        dial_tasks_ = std::make_unique<PeerDialTasks>(supervisor, max_delay_ms);
    }

private:
    static int cb_connect(void* user, rampart_raft_connect* req, uint64_t id, const char* address);
    static void cb_cancel(void* user, rampart_raft_connect* req);
    static int cb_verify(void* user, const char* peer_name, uint64_t id, const char* address);
    std::string name_for_certificate(const rampart_peer_identity* peer) const;
    bool accepted(const rampart_peer_identity* peer, int fd);
    void dial_failed(const std::string& node_id, const char* reason);
    bool pin_held(const std::string& node_id);
    bool dial_allowed(const std::string& node_id);

    uv_loop_t* loop_;
    peer::SocketBridge sockets_;
    std::vector<Member> members_;  // etc/peers.yml and this node
    std::vector<Member> known_;    // from a join's answer
    ConfigMembersFn config_members_;
    std::function<double(const std::string&, bool)> pin_hold_;
    std::map<std::string, uint64_t> pin_failed_at_;  // node id -> loop time of its last pin mismatch
    std::function<int(int, const char*)> accept_;
    std::unique_ptr<PeerDialTasks> dial_tasks_;
    // Engine connects in progress, to cancel them when the node closes.
    std::vector<std::pair<rampart_raft_connect*, peer::SocketBridge::Link*>> dials_;
};

}  // namespace rampart::cluster
