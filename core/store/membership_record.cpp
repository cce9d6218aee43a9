#include "store/membership_record.h"

#include <type_traits>

#include "store/byte_codec.h"

namespace rampart::store {
namespace {

constexpr uint8_t kVersion = 1;

MembershipType type_of(const MembershipBody& body) {
    return std::visit(
        [](const auto& b) {
            using T = std::decay_t<decltype(b)>;
            if constexpr (std::is_same_v<T, JoinTokenCreate>) return MembershipType::JoinTokenCreate;
            if constexpr (std::is_same_v<T, JoinTokenRevoke>) return MembershipType::JoinTokenRevoke;
            if constexpr (std::is_same_v<T, MemberJoin>) return MembershipType::MemberJoin;
            return MembershipType::MemberLeave;
        },
        body);
}

MemberRole read_role(ByteIn& in) {
    uint8_t r = in.u8();
    if (r > static_cast<uint8_t>(MemberRole::Spare)) in.invalidate();
    return static_cast<MemberRole>(r);
}

}  // namespace

std::string encode_membership(const MembershipRecord& record) {
    ByteOut o;
    o.u8(static_cast<uint8_t>(type_of(record.body)));
    o.u8(kVersion);
    o.varint(record.leader_ms);
    std::visit(
        [&o](const auto& b) {
            using T = std::decay_t<decltype(b)>;
            if constexpr (std::is_same_v<T, JoinTokenCreate>) {
                o.bytes(b.id);
                o.bytes(b.hash);
                o.u8(static_cast<uint8_t>(b.role));
                o.varint(b.max_uses);
                o.varint(b.expires_ms);
            } else if constexpr (std::is_same_v<T, JoinTokenRevoke>) {
                o.bytes(b.id);
            } else if constexpr (std::is_same_v<T, MemberJoin>) {
                o.bytes(b.token_hash);
                o.bytes(b.node_id);
                o.varint(b.raft_id);
                o.bytes(b.address);
                o.u8(static_cast<uint8_t>(b.role));
            } else {
                o.bytes(b.node_id);
            }
        },
        record.body);
    return o.take();
}

bool is_membership_record(std::string_view bytes) {
    if (bytes.empty()) return false;
    auto t = static_cast<uint8_t>(bytes[0]);
    return t >= static_cast<uint8_t>(MembershipType::JoinTokenCreate) &&
           t <= static_cast<uint8_t>(MembershipType::MemberLeave);
}

std::optional<MembershipRecord> decode_membership(std::string_view bytes, std::string* error) {
    using L = MembershipLimits;
    ByteIn in(bytes);
    auto type = static_cast<MembershipType>(in.u8());
    uint8_t version = in.u8();
    if (in.ok() && version != kVersion) {
        *error = "unknown membership record version " + std::to_string(version);
        return std::nullopt;
    }
    MembershipRecord r;
    r.leader_ms = in.varint();
    switch (type) {
        case MembershipType::JoinTokenCreate: {
            JoinTokenCreate c;
            c.id = in.bytes(L::kTokenId);
            c.hash = in.bytes(L::kHash);
            c.role = read_role(in);
            c.max_uses = in.varint();
            c.expires_ms = in.varint();
            r.body = std::move(c);
            break;
        }
        case MembershipType::JoinTokenRevoke: r.body = JoinTokenRevoke{in.bytes(L::kTokenId)}; break;
        case MembershipType::MemberJoin: {
            MemberJoin j;
            j.token_hash = in.bytes(L::kHash);
            j.node_id = in.bytes(L::kNodeId);
            j.raft_id = in.varint();
            j.address = in.bytes(L::kAddress);
            j.role = read_role(in);
            r.body = std::move(j);
            break;
        }
        case MembershipType::MemberLeave: r.body = MemberLeave{in.bytes(L::kNodeId)}; break;
        default: *error = "not a membership record"; return std::nullopt;
    }
    if (!in.ok() || !in.at_end()) {
        *error = "membership record is truncated, malformed or has trailing bytes";
        return std::nullopt;
    }
    return r;
}

const char* member_role_name(MemberRole role) {
    switch (role) {
        case MemberRole::Voter: return "voter";
        case MemberRole::Standby: return "standby";
        default: return "spare";
    }
}

bool parse_member_role(std::string_view s, MemberRole* out) {
    if (s == "voter")
        *out = MemberRole::Voter;
    else if (s == "standby")
        *out = MemberRole::Standby;
    else if (s == "spare")
        *out = MemberRole::Spare;
    else
        return false;
    return true;
}

}  // namespace rampart::store
