// Membership records in the Raft log: join tokens and the members that
// joined or left with them (issue 6). They are a family of their own beside
// store/command.h's commands, with their own codec, and the state machine
// recognises them by their type byte before command decoding, as it does a
// snapshot restore record:
//
//   type:u8  version:u8 (1)  leader_ms:varint  body
//   join_token_create (80): id:bytes hash:bytes role:u8 max_uses:varint expires_ms:varint
//   join_token_revoke (81): id:bytes
//   member_join       (82): token_hash:bytes node_id:bytes raft_id:varint address:bytes role:u8
//   member_leave      (83): node_id:bytes
//
// bytes = length:varint data, varints LEB128. The decoder is strict: a
// truncated or extended record, an unknown version or a field over its
// limit is an error, the same on every node.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace rampart::store {

// Type bytes are on-disk format (store/command.h reserves 80-89 for them).
enum class MembershipType : uint8_t {
    JoinTokenCreate = 80,
    JoinTokenRevoke = 81,
    MemberJoin = 82,
    MemberLeave = 83,
};

// Numbers match rampart_raft_member_role (cluster/raft_adapter.h) and are
// on-disk format. Lower is more: a voter token admits a standby, not the
// other way round.
enum class MemberRole : uint8_t { Voter = 0, Standby = 1, Spare = 2 };

struct JoinTokenCreate {
    std::string id;    // public id (shown, used to revoke)
    std::string hash;  // hex SHA-256 of the secret; the secret never enters the log
    MemberRole role = MemberRole::Voter;
    uint64_t max_uses = 1;  // 0 = any number until it expires
    uint64_t expires_ms = 0;
};

struct JoinTokenRevoke {
    std::string id;
};

struct MemberJoin {
    std::string token_hash;
    std::string node_id;
    uint64_t raft_id = 0;
    std::string address;                  // the joiner's peer address
    MemberRole role = MemberRole::Voter;  // what the node asks for (cluster.role)
};

struct MemberLeave {
    std::string node_id;
};

using MembershipBody = std::variant<JoinTokenCreate, JoinTokenRevoke, MemberJoin, MemberLeave>;

struct MembershipRecord {
    uint64_t leader_ms = 0;  // the leader's clock: expiry is judged by it, never the applier's
    MembershipBody body;
};

struct MembershipLimits {
    static constexpr size_t kTokenId = 32;
    static constexpr size_t kHash = 64;
    static constexpr size_t kNodeId = 63;  // node.id: 1-63 characters
    static constexpr size_t kAddress = 256;
};

std::string encode_membership(const MembershipRecord& record);
bool is_membership_record(std::string_view bytes);
// nullopt with *error when the record does not decode.
std::optional<MembershipRecord> decode_membership(std::string_view bytes, std::string* error);

const char* member_role_name(MemberRole role);
bool parse_member_role(std::string_view s, MemberRole* out);

}  // namespace rampart::store
