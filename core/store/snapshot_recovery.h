// Recovery of the engine's snapshots on start (issue 5, "Durability and
// recovery"; seed konsul ADR-0031 §1.4), run before the engine opens its
// data dir.
//
// libraft 0.22.1 keeps each snapshot as a pair in the Raft dir:
// snapshot-<term>-<index>-<ms> (the bytes the adapter gave it: our 32-byte
// envelope with a CRC32C, then the state payload) and the same name with
// ".meta" (the engine's own header and configuration). The engine loads the
// newest pair and cannot be told to skip one; when the adapter's restore
// refuses it, start fails. So the pairs are checked here first: a newest
// snapshot whose envelope fails (or whose .meta is missing or empty) is
// renamed to *.corrupt, reported, and the engine starts from the previous
// snapshot and the log after it. Then old pairs beyond the retention count
// (cluster.snapshot_retention) are removed.
//
// Snapshots written compressed (LZ4, the engine's default before the adapter
// turned compression off) cannot be checked without the engine; they are
// left to it (and to the adapter's check at restore).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rampart::store {

struct EngineSnapshot {
    std::string name;  // data file name; the meta is name + ".meta"
    uint64_t term = 0;
    uint64_t index = 0;
    uint64_t timestamp = 0;
};

struct RecoveryReport {
    std::vector<EngineSnapshot> found;     // newest first, before anything moved
    std::vector<std::string> moved_aside;  // data/meta files renamed to *.corrupt
    std::vector<std::string> reasons;      // one per corrupt snapshot
    std::vector<std::string> pruned;       // files removed for retention
    std::vector<std::string> unverified;   // compressed snapshots left to the engine
    std::string error;                     // set when the dir could not be read or a rename failed
};

// Newest first.
std::vector<EngineSnapshot> list_engine_snapshots(const std::string& raft_dir);

// Check a data file's bytes: empty when fine, else why not.
std::string check_engine_snapshot(const std::string& path, bool* unverifiable);

// Check newest-first until a good snapshot is found (each corrupt one is
// moved aside), then prune good ones beyond `retention` (>= 1).
RecoveryReport recover_engine_snapshots(const std::string& raft_dir, unsigned retention);

}  // namespace rampart::store
