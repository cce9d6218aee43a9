#include "cluster/member_info.h"

#include "store/byte_codec.h"

namespace rampart::cluster {
namespace {

constexpr size_t kMaxText = 256;        // node id, addresses, scheme, build
constexpr uint64_t kMaxVersions = 256;  // one per type byte at most
constexpr uint64_t kMaxMembers = 1u << 16;

void write_body(store::ByteOut& o, const MemberInfo& m) {
    o.bytes(m.node_id);
    o.bytes(m.api_address);
    o.bytes(m.api_scheme);
    o.bytes(m.peer_address);
    o.bytes(m.build);
    o.varint(m.versions.size());
    for (const CommandVersion& v : m.versions) {
        o.u8(v.type);
        o.u8(v.version);
    }
}

MemberInfo read_body(store::ByteIn& in) {
    MemberInfo m;
    m.node_id = in.bytes(kMaxText);
    m.api_address = in.bytes(kMaxText);
    m.api_scheme = in.bytes(kMaxText);
    m.peer_address = in.bytes(kMaxText);
    m.build = in.bytes(kMaxText);
    uint64_t n = in.count(kMaxVersions);
    for (uint64_t i = 0; i < n && in.ok(); i++) {
        CommandVersion v;
        v.type = in.u8();
        v.version = in.u8();
        m.versions.push_back(v);
    }
    return m;
}

}  // namespace

uint8_t MemberInfo::version_of(uint8_t type) const {
    for (const CommandVersion& v : versions) {
        if (v.type == type) return v.version;
    }
    return 0;
}

bool is_member_info_record(std::string_view record) {
    return !record.empty() && static_cast<uint8_t>(record[0]) == kMemberInfoType;
}

std::string encode_member_info(const MemberInfo& info) {
    store::ByteOut o;
    o.u8(kMemberInfoType);
    o.u8(kMemberInfoVersion);
    write_body(o, info);
    return o.take();
}

bool decode_member_info(std::string_view record, MemberInfo* out, std::string* error) {
    store::ByteIn in(record);
    uint8_t type = in.u8();
    uint8_t version = in.u8();
    if (!in.ok() || type != kMemberInfoType || version != kMemberInfoVersion) {
        *error = "not a member_info record of version " + std::to_string(kMemberInfoVersion);
        return false;
    }
    MemberInfo m = read_body(in);
    if (!in.ok() || !in.at_end() || m.node_id.empty()) {
        *error = "malformed member_info record";
        return false;
    }
    *out = std::move(m);
    return true;
}

std::string serialize_members(const MemberTable& table) {
    store::ByteOut o;
    o.varint(table.size());
    for (const auto& [id, m] : table) write_body(o, m);
    return o.take();
}

bool parse_members(std::string_view bytes, MemberTable* out) {
    store::ByteIn in(bytes);
    MemberTable table;
    uint64_t n = in.count(kMaxMembers);
    for (uint64_t i = 0; i < n && in.ok(); i++) {
        MemberInfo m = read_body(in);
        std::string id = m.node_id;
        table.insert_or_assign(std::move(id), std::move(m));
    }
    if (!in.ok() || !in.at_end()) return false;
    *out = std::move(table);
    return true;
}

}  // namespace rampart::cluster
