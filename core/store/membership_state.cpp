#include "store/membership_state.h"

#include <type_traits>

#include "store/byte_codec.h"

namespace rampart::store {
namespace {

bool valid_hash(std::string_view h) {
    if (h.size() != 64) return false;
    for (char c : h) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

}  // namespace

MemberRole granted_role(MemberRole token_role, MemberRole asked) {
    return static_cast<uint8_t>(asked) > static_cast<uint8_t>(token_role) ? asked : token_role;
}

const JoinToken* MembershipState::token_by_hash(std::string_view hash) const {
    // At most kMaxTokens: a scan is cheap, and joins are rare.
    for (const auto& [id, t] : tokens_) {
        if (t.hash == hash) return &t;
    }
    return nullptr;
}

const MemberRecord* MembershipState::member(std::string_view node_id) const {
    auto it = members_.find(node_id);
    return it == members_.end() ? nullptr : &it->second;
}

std::string MembershipState::join_refusal(const JoinToken* t, uint64_t now_ms) const {
    if (t == nullptr) return "unknown join token (never issued, revoked, or expired and forgotten)";
    if (now_ms >= t->expires_ms) return "join token expired";
    if (t->used_up()) return "join token already used";
    return {};
}

// Expired tokens are forgotten by the leader's clock carried in each
// record, so every node forgets the same ones at the same entry. A token
// outlives its last use until it expires, so a reuse is told apart from a
// forgery.
void MembershipState::expire(uint64_t now_ms) {
    std::erase_if(tokens_, [now_ms](const auto& kv) { return now_ms >= kv.second.expires_ms; });
}

Result MembershipState::apply(uint64_t index, const MembershipRecord& record) {
    expire(record.leader_ms);
    return std::visit(
        [&](const auto& b) -> Result {
            using T = std::decay_t<decltype(b)>;
            if constexpr (std::is_same_v<T, JoinTokenCreate>) {
                if (b.id.empty() || !valid_hash(b.hash) || b.expires_ms <= record.leader_ms)
                    return Result::failure(Outcome::Invalid, "malformed join token record");
                if (tokens_.size() >= kMaxTokens)
                    return Result::failure(Outcome::Failed, "too many live join tokens (" + std::to_string(kMaxTokens) +
                                                                "): revoke some or let them expire");
                if (tokens_.count(b.id) != 0 || token_by_hash(b.hash) != nullptr)
                    return Result::failure(Outcome::Failed, "join token exists");
                JoinToken t;
                t.id = b.id;
                t.hash = b.hash;
                t.role = b.role;
                t.max_uses = b.max_uses;
                t.create_index = index;
                t.create_ms = record.leader_ms;
                t.expires_ms = b.expires_ms;
                tokens_.emplace(t.id, std::move(t));
                return {};
            } else if constexpr (std::is_same_v<T, JoinTokenRevoke>) {
                if (tokens_.erase(b.id) == 0) return Result::failure(Outcome::Failed, "no such join token");
                return {};
            } else if constexpr (std::is_same_v<T, MemberJoin>) {
                if (b.node_id.empty() || b.raft_id == 0 || b.address.empty())
                    return Result::failure(Outcome::Invalid, "malformed member join record");
                auto it = tokens_.end();
                for (auto t = tokens_.begin(); t != tokens_.end(); ++t) {
                    if (t->second.hash == b.token_hash) it = t;
                }
                JoinToken* token = it == tokens_.end() ? nullptr : &it->second;
                if (std::string why = join_refusal(token, record.leader_ms); !why.empty())
                    return Result::failure(Outcome::Failed, why);
                if (members_.size() >= kMaxMembers && members_.count(b.node_id) == 0)
                    return Result::failure(Outcome::Failed, "too many members");
                token->uses++;
                MemberRecord& m = members_[b.node_id];
                m.node_id = b.node_id;
                m.raft_id = b.raft_id;
                m.address = b.address;
                m.role = granted_role(token->role, b.role);
                m.left = false;
                m.index = index;
                return {};
            } else {
                if (b.node_id.empty()) return Result::failure(Outcome::Invalid, "malformed member leave record");
                if (members_.size() >= kMaxMembers && members_.count(b.node_id) == 0)
                    return Result::failure(Outcome::Failed, "too many members");
                MemberRecord& m = members_[b.node_id];
                m.node_id = b.node_id;
                m.raft_id = 0;
                m.left = true;
                m.index = index;
                return {};
            }
        },
        record.body);
}

// count { id hash role max_uses uses create_index create_ms expires_ms }
// count { node_id raft_id address role left index }
std::string MembershipState::serialize() const {
    ByteOut o;
    o.varint(tokens_.size());
    for (const auto& [id, t] : tokens_) {
        o.bytes(t.id);
        o.bytes(t.hash);
        o.u8(static_cast<uint8_t>(t.role));
        o.varint(t.max_uses);
        o.varint(t.uses);
        o.varint(t.create_index);
        o.varint(t.create_ms);
        o.varint(t.expires_ms);
    }
    o.varint(members_.size());
    for (const auto& [id, m] : members_) {
        o.bytes(m.node_id);
        o.varint(m.raft_id);
        o.bytes(m.address);
        o.u8(static_cast<uint8_t>(m.role));
        o.u8(m.left ? 1 : 0);
        o.varint(m.index);
    }
    return o.take();
}

bool MembershipState::restore(std::string_view bytes) {
    using L = MembershipLimits;
    ByteIn in(bytes);
    MembershipState s;
    auto role = [&in] {
        uint8_t r = in.u8();
        if (r > static_cast<uint8_t>(MemberRole::Spare)) in.invalidate();
        return static_cast<MemberRole>(r);
    };
    uint64_t n = in.count(kMaxTokens);
    for (uint64_t i = 0; i < n && in.ok(); i++) {
        JoinToken t;
        t.id = in.bytes(L::kTokenId);
        t.hash = in.bytes(L::kHash);
        t.role = role();
        t.max_uses = in.varint();
        t.uses = in.varint();
        t.create_index = in.varint();
        t.create_ms = in.varint();
        t.expires_ms = in.varint();
        s.tokens_.emplace(t.id, std::move(t));
    }
    uint64_t m = in.count(kMaxMembers);
    for (uint64_t i = 0; i < m && in.ok(); i++) {
        MemberRecord r;
        r.node_id = in.bytes(L::kNodeId);
        r.raft_id = in.varint();
        r.address = in.bytes(L::kAddress);
        r.role = role();
        uint8_t left = in.u8();
        if (left > 1) in.invalidate();
        r.left = left == 1;
        r.index = in.varint();
        s.members_.emplace(r.node_id, std::move(r));
    }
    if (!in.ok() || !in.at_end() || s.tokens_.size() != n || s.members_.size() != m) return false;
    *this = std::move(s);
    return true;
}

}  // namespace rampart::store
