#include "cluster/raft_bridge.h"

#include "log.h"

namespace rampart::cluster {
namespace {

constexpr const char* kProtocol = "raft";

}  // namespace

uint64_t raft_id_for(std::string_view node_id) {
    uint64_t h = 14695981039346656037ull;
    for (unsigned char c : node_id) {
        h ^= c;
        h *= 1099511628211ull;
    }
    h &= 0x7fffffffffffffffull;  // the engine's ids are printed signed in places
    return h == 0 ? 1 : h;
}

bool RaftBridge::install() {
    sockets_.set_dial_failed([this](const std::string& node_id, const char* reason) { dial_failed(node_id, reason); });
    return sockets_.listen(kProtocol, [this](const rampart_peer_identity* peer, int fd) { return accepted(peer, fd); });
}

void RaftBridge::dial_failed(const std::string& node_id, const char* reason) {
    if (!pin_hold_ || std::string_view(reason) != "pin_mismatch") return;
    pin_failed_at_[node_id] = uv_now(loop_);
    double hold_s = pin_hold_(node_id, true);
    log::warn("raft: the peer's certificate failed its pin; holding off dials (recovery.on_pin_mismatch)",
              {{"peer", node_id}, {"hold_s", hold_s}});
}

// A member whose pin failed is not dialled until the policy's hold has
// passed: each dial would only fail the same way, and log and count it.
bool RaftBridge::pin_held(const std::string& node_id) {
    auto it = pin_failed_at_.find(node_id);
    if (it == pin_failed_at_.end() || !pin_hold_) return false;
    double hold_ms = pin_hold_(node_id, false) * 1000;
    if (static_cast<double>(uv_now(loop_) - it->second) < hold_ms) return true;
    pin_failed_at_.erase(it);
    return false;
}

rampart_raft_transport RaftBridge::transport() {
    rampart_raft_transport t{};
    t.user = this;
    t.connect = cb_connect;
    t.cancel = cb_cancel;
    return t;
}

const Member* RaftBridge::member_by_id(uint64_t id) const {
    for (const Member& m : members_) {
        if (m.raft_id == id) return &m;
    }
    return nullptr;
}

// The member whose node id the certificate carries as a DNS name.
const Member* RaftBridge::member_for_certificate(const rampart_peer_identity* peer) const {
    if (peer == nullptr || !peer->verified) return nullptr;
    for (const Member& m : members_) {
        for (size_t i = 0; i < peer->dns_san_count; ++i) {
            if (m.node_id == peer->dns_sans[i]) return &m;
        }
    }
    return nullptr;
}

// Insecure peers (no certificate) are trusted for whatever id they claim.
bool RaftBridge::accepted(const rampart_peer_identity* peer, int fd) {
    uint64_t expected = 0;
    if (peer != nullptr) {
        const Member* m = member_for_certificate(peer);
        if (m == nullptr) {
            log::warn("raft: refused a connection from a certificate that names no member",
                      {{"subject", peer->subject_cn ? peer->subject_cn : ""}});
            return false;
        }
        expected = m->raft_id;
    }
    if (!accept_) return false;
    accept_(fd, expected);  // the adapter owns the fd from here, even on error
    return true;
}

int RaftBridge::cb_connect(void* user, rampart_raft_connect* req, uint64_t id, const char* address) {
    auto* self = static_cast<RaftBridge*>(user);
    const Member* m = self->member_by_id(id);
    if (m == nullptr) {
        log::warn("raft: no member with this id; not connecting",
                  {{"raft_id", std::to_string(id)}, {"address", address}});
        return 1;
    }
    if (self->pin_held(m->node_id)) return 1;
    peer::SocketBridge::Link* link = self->sockets_.dial(address, m->node_id, kProtocol, [self, req](int fd) {
        std::erase_if(self->dials_, [req](const auto& d) { return d.first == req; });
        rampart_raft_connect_done(req, fd, fd < 0 ? 1 : 0);
    });
    self->dials_.emplace_back(req, link);
    return 0;
}

void RaftBridge::cb_cancel(void* user, rampart_raft_connect* req) {
    auto* self = static_cast<RaftBridge*>(user);
    for (auto it = self->dials_.begin(); it != self->dials_.end(); ++it) {
        if (it->first == req) {
            peer::SocketBridge::Link* link = it->second;
            self->dials_.erase(it);
            self->sockets_.cancel(link);
            return;
        }
    }
}

}  // namespace rampart::cluster
