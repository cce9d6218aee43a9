// state.json: the node's own metadata in node.data_dir (issue 5; the seed
// anna-phase-1.10 "State Schema v2", adapted):
//
//   {"schema_version": 2, "node_id": "node_1", "raft_id": 1,
//    "created_at": "...", "updated_at": "...", "last_boot_time": "...",
//    "system_state": "running", "configuration_hash": "sha256:...",
//    "versions": {"rampart": "0.1.0", "snapshot_format": 1, "command_version": 1}}
//
// Version 1 (written before this schema) is {"node_id", "raft_id",
// "created_at"} with "schema_version": 1 or none; it is migrated on start
// exactly as the seed says: backup state.backup.v1 and its .sha256, load,
// convert, save state.v2.json, verify the backup checksum and the new file,
// rename over state.json. Any failure rolls back (state.json is the v1
// bytes again, state.v2.json gone), is logged CRITICAL, and start exits 78.
// Every step is a "state_migration" event in audit.jsonl.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace rampart::audit {
class AuditLog;
}
namespace rampart::metrics {
class Metric;
}

namespace rampart::state {

inline constexpr int kSchemaVersion = 2;

struct NodeState {
    int schema_version = kSchemaVersion;
    std::string node_id;
    uint64_t raft_id = 1;
    std::string created_at;
    std::string updated_at;
    std::string last_boot_time;
    std::string system_state = "running";
    std::string configuration_hash;
    std::string rampart_version;
    int snapshot_format = 1;
    int command_version = 1;
};

// The migration steps, in order (the seed's 8 steps; rollback is the 8th).
enum class Step { Backup, Checksum, Load, Convert, Save, Verify, Replace };
const char* step_name(Step step);

// Test seam: fail_before(step) returning true makes that step fail as an
// I/O error would, after every earlier step has really run.
struct Hooks {
    std::function<bool(Step)> fail_before;
};

// Where the counters and the audit trail go; either may be null.
struct Sinks {
    audit::AuditLog* audit = nullptr;
    metrics::Metric* migrations = nullptr;  // rampart_migration_events_total{result}
};

// Parse a state file of either version. *version gets the schema version
// (1 when absent). A v1 file fills node_id, raft_id and created_at.
bool parse_state(std::string_view json, NodeState* out, int* version, std::string* error);
std::string render_state(const NodeState& state);
NodeState convert_v1(const NodeState& v1, std::string_view now);

enum class MigrateResult { NotNeeded, Migrated, Failed };
// Migrate <dir>/state.json from v1 to v2 if it is v1. On Failed the
// rollback has run and *error says what failed.
MigrateResult migrate_state(const std::string& dir, const Sinks& sinks, std::string* error, const Hooks& hooks = {});

struct BootInfo {
    std::string node_id;
    std::string rampart_version;
    std::string configuration_hash;
};
// On start: migrate if needed, create state.json on a new node, refuse a
// data_dir that belongs to another node id or a newer schema, and record
// this boot. False (exit 78) with *error.
bool ensure_state(const std::string& dir, const BootInfo& boot, const Sinks& sinks, std::string* error,
                  const Hooks& hooks = {});

}  // namespace rampart::state
