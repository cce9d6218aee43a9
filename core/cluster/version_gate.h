// Mixed versions during a rolling upgrade (issue 6). Every record in the
// Raft log carries a type and a version. Two rules keep a cluster of old and
// new builds from diverging:
//
// - The leader writes a version of a command only if every voter has
//   declared (member_info.h) that it decodes it; otherwise it writes the
//   newest version every voter decodes, if that version can carry the
//   command, and refuses the write (503 command_version_unsupported) if
//   none can. A voter that has not declared anything yet is assumed to
//   decode the baseline: version 1 of the types every build has had.
// - A node that meets a record it cannot decode (a newer version, or a type
//   it has never heard of) stops with exit status 1 and the index, type and
//   version in its log: applying it wrongly or skipping it would make its
//   state differ from the others' for good, while a stopped node is
//   repaired by upgrading it and starting it again.
//
// A test-only switch makes a build pretend to be an older one:
// RAMPART_TEST_COMMAND_VERSION_MAX=N caps every type at version N, in what
// the node declares and in what it accepts from the log;
// RAMPART_TEST_COMMAND_TYPE_MAX=N drops the command types above N (8: a
// build from before batch records). Never set them in production
// (docs/cluster.md, "Rolling upgrades").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/member_info.h"
#include "store/command.h"

struct rampart_raft;

namespace rampart::cluster {

// The test switch's environment variable.
inline constexpr const char* kTestVersionMaxEnv = "RAMPART_TEST_COMMAND_VERSION_MAX";
inline constexpr const char* kTestTypeMaxEnv = "RAMPART_TEST_COMMAND_TYPE_MAX";

// Every record type this build decodes, with its highest version (the test
// switch applied), sorted by type: what the node declares.
const std::vector<CommandVersion>& local_versions();

// The name of a record type ("service_register", "member_info", ...).
std::string record_type_name(uint8_t type);

// A record this build cannot apply: set when `record` has a type or version
// the build does not know (for a batch record: the batch itself or any of
// its sub-records).
struct UnknownRecord {
    bool unknown = false;
    uint8_t type = 0;
    uint8_t version = 0;
    uint8_t known_version = 0;  // 0: the type itself is unknown
};
UnknownRecord check_record(std::string_view record);

// Log the record at `index` and end the process with status 1 (see above).
[[noreturn]] void stop_on_unknown_record(uint64_t index, const UnknownRecord& what);

// The highest version of `type` that every voter of `engine`'s
// configuration decodes (this node by its own table, the others by their
// declarations, the baseline for a voter without one); 0 if some voter
// knows no version of it.
uint8_t agreed_version(uint8_t type, const rampart_raft* engine, uint64_t self_raft_id, const MemberTable& members);

// Group commit (store/store.h): whether every voter decodes batch records.
// When one does not, the leader proposes one entry per write.
bool voters_decode_batches(const rampart_raft* engine, uint64_t self_raft_id, const MemberTable& members);

// The leader's encoding of `cmd`: the newest version every voter decodes
// that can carry it. False with *why when there is none.
bool encode_for_voters(const store::Command& cmd, const rampart_raft* engine, uint64_t self_raft_id,
                       const MemberTable& members, std::string* out, std::string* why);

}  // namespace rampart::cluster
