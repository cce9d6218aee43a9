#include "cluster/version_gate.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "cluster/raft_adapter.h"
#include "cluster/raft_bridge.h"
#include "log.h"
#include "store/membership_record.h"

namespace rampart::cluster {
namespace {

constexpr uint8_t kRestoreType = static_cast<uint8_t>(store::CommandType::SnapshotRestore);
constexpr uint8_t kRestoreVersion = 1;  // store/snapshot_file.cpp
// store::CommandType values below this were in every build that could form
// a cluster (the baseline an undeclared voter is held to); so was member_info
// itself, which must always be writable or no one could declare anything.
constexpr uint8_t kBaselineTypes = 9;

// 0 = no cap; read once: the switch describes the process, not a request.
uint8_t test_version_cap() {
    static const uint8_t cap = [] {
        const char* v = getenv(kTestVersionMaxEnv);
        if (v == nullptr || *v == '\0') return uint8_t{0};
        long n = strtol(v, nullptr, 10);
        return static_cast<uint8_t>(std::clamp(n, 1L, 255L));
    }();
    return cap;
}

// 0 = every type; read once like the version cap.
uint8_t test_type_cap() {
    static const uint8_t cap = [] {
        const char* v = getenv(kTestTypeMaxEnv);
        if (v == nullptr || *v == '\0') return uint8_t{0};
        long n = strtol(v, nullptr, 10);
        return static_cast<uint8_t>(std::clamp(n, 1L, 63L));
    }();
    return cap;
}

bool is_command_type(uint8_t type) {
    return type < kRestoreType &&
           std::string_view(store::type_name(static_cast<store::CommandType>(type))) != "unknown";
}

// Join-token and membership records (store/membership_record.h), version 1.
// Like member_info they must always be writable: a node joins through them.
bool is_membership_type(uint8_t type) {
    return type >= static_cast<uint8_t>(store::MembershipType::JoinTokenCreate) &&
           type <= static_cast<uint8_t>(store::MembershipType::MemberLeave);
}

uint8_t baseline_version(uint8_t type) {
    return type < kBaselineTypes || type == kRestoreType || type == kMemberInfoType || is_membership_type(type) ? 1 : 0;
}

std::vector<CommandVersion> build_local_versions() {
    std::vector<CommandVersion> out;
    uint8_t cap = test_version_cap();
    auto add = [&out, cap](uint8_t type, uint8_t version) {
        out.push_back({type, cap != 0 ? std::min(version, cap) : version});
    };
    for (unsigned t = 0; t < kRestoreType; t++) {
        auto type = static_cast<uint8_t>(t);
        if (test_type_cap() != 0 && type > test_type_cap()) continue;
        if (is_command_type(type)) add(type, store::record_version(static_cast<store::CommandType>(type)));
    }
    add(kRestoreType, kRestoreVersion);
    add(kMemberInfoType, kMemberInfoVersion);
    for (unsigned t = static_cast<unsigned>(store::MembershipType::JoinTokenCreate);
         t <= static_cast<unsigned>(store::MembershipType::MemberLeave); t++)
        add(static_cast<uint8_t>(t), 1);
    return out;
}

uint8_t local_version(uint8_t type) {
    for (const CommandVersion& v : local_versions()) {
        if (v.type == type) return v.version;
    }
    return 0;
}

}  // namespace

const std::vector<CommandVersion>& local_versions() {
    static const std::vector<CommandVersion> versions = build_local_versions();
    return versions;
}

std::string record_type_name(uint8_t type) {
    if (type == kRestoreType) return "snapshot_restore";
    if (type == kMemberInfoType) return "member_info";
    if (is_membership_type(type)) return "membership record " + std::to_string(type);
    if (is_command_type(type)) return store::type_name(static_cast<store::CommandType>(type));
    return "type " + std::to_string(type);
}

UnknownRecord check_record(std::string_view record) {
    UnknownRecord r;
    // Shorter records are malformed, not newer: decode() refuses them the
    // same way on every node.
    if (record.size() < 2) return r;
    r.type = static_cast<uint8_t>(record[0]);
    r.version = static_cast<uint8_t>(record[1]);
    r.known_version = local_version(r.type);
    r.unknown = r.known_version == 0 || r.version > r.known_version;
    if (r.unknown || !store::is_batch_record(record)) return r;
    // A batch this build reads: what it cannot apply is in its records. A
    // malformed batch is not "newer": decode_batch() refuses it everywhere.
    std::vector<std::string_view> records;
    std::string error;
    if (!store::decode_batch(record, &records, &error)) return r;
    for (std::string_view sub : records) {
        UnknownRecord u = check_record(sub);
        if (u.unknown) return u;
    }
    return r;
}

void stop_on_unknown_record(uint64_t index, const UnknownRecord& what) {
    log::error(what.known_version == 0
                   ? "the Raft log holds a command type this build does not know: stopping rather than diverging "
                     "from the cluster; upgrade this node to the cluster's version and start it again"
                   : "the Raft log holds a command version this build does not know: stopping rather than "
                     "diverging from the cluster; upgrade this node to the cluster's version and start it again",
               {{"index", static_cast<long long>(index)},
                {"command", record_type_name(what.type)},
                {"version", static_cast<long long>(what.version)},
                {"known_version", static_cast<long long>(what.known_version)}});
    fflush(nullptr);
    // Not exit(): no destructor, timer or engine callback may run once the
    // node cannot apply its log; nothing it has not persisted is lost (the
    // entry is in the log and is met again at the next start).
    _exit(1);
}

uint8_t agreed_version(uint8_t type, const rampart_raft* engine, uint64_t self_raft_id, const MemberTable& members) {
    uint8_t agreed = local_version(type);
    std::vector<rampart_raft_member> voters(rampart_raft_members(engine, nullptr, 0));
    voters.resize(rampart_raft_members(engine, voters.data(), static_cast<unsigned>(voters.size())));
    for (const rampart_raft_member& m : voters) {
        if (m.role != RAMPART_RAFT_MEMBER_VOTER || m.id == self_raft_id) continue;
        uint8_t declared = baseline_version(type);
        for (const auto& [node_id, info] : members) {
            // Joined members have random Raft ids; the configuration names
            // them ("node_id@address", cluster/membership_address.h).
            bool same = m.name[0] != '\0' ? node_id == m.name : raft_id_for(node_id) == m.id;
            if (same) declared = info.version_of(type);
        }
        agreed = std::min(agreed, declared);
    }
    return agreed;
}

bool voters_decode_batches(const rampart_raft* engine, uint64_t self_raft_id, const MemberTable& members) {
    return agreed_version(static_cast<uint8_t>(store::CommandType::Batch), engine, self_raft_id, members) >=
           store::kBatchVersion;
}

bool encode_for_voters(const store::Command& cmd, const rampart_raft* engine, uint64_t self_raft_id,
                       const MemberTable& members, std::string* out, std::string* why) {
    auto type = static_cast<uint8_t>(cmd.type());
    uint8_t agreed = agreed_version(type, engine, self_raft_id, members);
    for (uint8_t v = agreed; v >= 1; v--) {
        if (store::encode_as(cmd, v, out)) return true;
    }
    *why = agreed == 0 ? "a voter does not know " + record_type_name(type) + " commands yet"
                       : "the voters decode " + record_type_name(type) + " up to version " + std::to_string(agreed) +
                             ", which cannot carry this request";
    return false;
}

}  // namespace rampart::cluster
