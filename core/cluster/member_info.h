// What each member advertises to the cluster (the brief: "every member
// advertises its peer address and its API address"): its API address as
// clients reach it, its peer address, its build, and the highest version
// of each command type it decodes. A node announces its record through the
// leader at start and whenever it changes (member_info_announcer.h); the
// record is replicated like any write, so every node (and every future
// leader) knows every member's API address, for 307 redirects, and which
// command versions the voters decode (version_gate.h).
//
// The record is not a store::Command: like a snapshot restore it has its own
// type byte, read by the state machine before decode():
//
//   type:u8=65  version:u8=1  node_id  api_address  api_scheme  peer_address
//   build  count { command_type:u8 highest_version:u8 }
//
// with store/byte_codec.h's varints and length-prefixed bytes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace rampart::cluster {

// The type byte, beside store::CommandType's (SnapshotRestore is 64).
inline constexpr uint8_t kMemberInfoType = 65;
inline constexpr uint8_t kMemberInfoVersion = 1;

struct CommandVersion {
    uint8_t type = 0;
    uint8_t version = 0;  // the highest version of `type` the member decodes
    bool operator==(const CommandVersion&) const = default;
};

struct MemberInfo {
    std::string node_id;
    std::string api_address;  // "ip:port" as clients reach the node
    std::string api_scheme;   // "http" or "https"
    std::string peer_address;
    std::string build;                     // rampartd's version, for operators during an upgrade
    std::vector<CommandVersion> versions;  // sorted by type
    bool operator==(const MemberInfo&) const = default;

    // The highest version of `type` this member declared, 0 if none.
    uint8_t version_of(uint8_t type) const;
};

// Replicated: every member's last announced record, by node id.
using MemberTable = std::map<std::string, MemberInfo, std::less<>>;

bool is_member_info_record(std::string_view record);
std::string encode_member_info(const MemberInfo& info);
// Strict: false with *error on a truncated, oversized or malformed record.
bool decode_member_info(std::string_view record, MemberInfo* out, std::string* error);

// The table's section of a state snapshot.
std::string serialize_members(const MemberTable& table);
bool parse_members(std::string_view bytes, MemberTable* out);

}  // namespace rampart::cluster
