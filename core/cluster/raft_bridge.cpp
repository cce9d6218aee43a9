#include "cluster/raft_bridge.h"

#include "cluster/membership_address.h"
#include "log.h"

namespace rampart::cluster {
namespace {

constexpr const char* kProtocol = "raft";

void add_unique(std::vector<Member>& out, const Member& m) {
    for (const Member& have : out) {
        if (have.raft_id == m.raft_id) return;
    }
    out.push_back(m);
}

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

std::vector<Member> configuration_members(const rampart_raft* engine) {
    std::vector<Member> out;
    if (engine == nullptr) return out;
    std::vector<rampart_raft_member> raw(rampart_raft_members(engine, nullptr, 0));
    raw.resize(rampart_raft_members(engine, raw.data(), static_cast<unsigned>(raw.size())));
    for (const rampart_raft_member& m : raw) out.push_back({m.name, m.id, m.address != nullptr ? m.address : ""});
    return out;
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

// Whether the peer's supervised task lets a dial out now; tasks of peers
// that left the configuration go first.
bool RaftBridge::dial_allowed(const std::string& node_id) {
    if (!dial_tasks_) return true;
    std::vector<std::string> node_ids;
    for (const Member& m : members()) node_ids.push_back(m.node_id);
    dial_tasks_->keep_only(node_ids);
    return dial_tasks_->may_dial(node_id);
}

rampart_raft_transport RaftBridge::transport() {
    rampart_raft_transport t{};
    t.user = this;
    t.connect = cb_connect;
    t.cancel = cb_cancel;
    t.verify = cb_verify;
    return t;
}

void RaftBridge::add_known(const std::vector<Member>& members) {
    for (const Member& m : members) add_unique(known_, m);
}

// A configuration entry without a node id (written by an earlier build)
// takes it from etc/peers.yml.
std::vector<Member> RaftBridge::members() const {
    std::vector<Member> out;
    if (config_members_) {
        for (Member m : config_members_()) {
            if (m.node_id.empty()) {
                for (const Member& p : members_) {
                    if (p.raft_id == m.raft_id) m.node_id = p.node_id;
                }
            }
            if (!m.node_id.empty()) add_unique(out, m);
        }
    }
    for (const Member& m : members_) add_unique(out, m);
    for (const Member& m : known_) add_unique(out, m);
    return out;
}

std::optional<Member> RaftBridge::member_by_id(uint64_t id) const {
    for (const Member& m : members()) {
        if (m.raft_id == id) return m;
    }
    return std::nullopt;
}

// The certificate's name: the DNS name that is a known member's node id
// ("" if none is: a joiner is known once the leader has added it).
std::string RaftBridge::name_for_certificate(const rampart_peer_identity* peer) const {
    if (peer == nullptr || !peer->verified) return {};
    std::vector<Member> all = members();
    for (size_t i = 0; i < peer->dns_san_count; ++i) {
        for (const Member& m : all) {
            if (m.node_id == peer->dns_sans[i]) return m.node_id;
        }
    }
    return {};
}

// Insecure peers (no certificate) are trusted for whatever id they claim.
bool RaftBridge::accepted(const rampart_peer_identity* peer, int fd) {
    std::string name;
    if (peer != nullptr) {
        name = name_for_certificate(peer);
        if (name.empty()) {
            log::warn("raft: refused a connection from a certificate that names no member",
                      {{"subject", peer->subject_cn ? peer->subject_cn : ""}});
            return false;
        }
    }
    if (!accept_) return false;
    accept_(fd, peer != nullptr ? name.c_str() : nullptr);  // the adapter owns the fd from here, even on error
    return true;
}

// The claimed id must be bound to the certificate's node id; an id nobody
// owns is refused too (a joiner is bound once the leader adds it).
int RaftBridge::cb_verify(void* user, const char* peer_name, uint64_t id, const char*) {
    auto* self = static_cast<RaftBridge*>(user);
    std::optional<Member> owner = self->member_by_id(id);
    if (owner && owner->node_id == peer_name) return 0;
    log::warn("raft: refused a peer claiming a Raft id its certificate does not own",
              {{"certificate", peer_name},
               {"raft_id", std::to_string(id)},
               {"owner", owner ? owner->node_id : std::string("(nobody)")}});
    return 1;
}

int RaftBridge::cb_connect(void* user, rampart_raft_connect* req, uint64_t id, const char* address) {
    auto* self = static_cast<RaftBridge*>(user);
    MemberAddress where = split_member_address(address);
    if (where.node_id.empty()) {
        std::optional<Member> m = self->member_by_id(id);
        if (m) where.node_id = m->node_id;
    }
    if (where.node_id.empty()) {
        log::warn("raft: no member with this id; not connecting",
                  {{"raft_id", std::to_string(id)}, {"address", address}});
        return 1;
    }
    if (self->pin_held(where.node_id) || !self->dial_allowed(where.node_id)) return 1;
    peer::SocketBridge::Link* link =
        self->sockets_.dial(where.address, where.node_id, kProtocol,
                            [self, req, node_id = where.node_id](int fd, const std::string& error_class) {
                                std::erase_if(self->dials_, [req](const auto& d) { return d.first == req; });
                                if (self->dial_tasks_) self->dial_tasks_->dialled(node_id, fd >= 0, error_class);
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
