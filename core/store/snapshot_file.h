// The operator's snapshot file (GET/PUT /v1/snapshot, rampartctl snapshot
// save|restore|inspect): the state machine's snapshot payload behind a
// checksummed header of ours, independent of the Raft engine's files.
//
//   offset size
//    0      8   magic "RMPSNAPF"
//    8      4   format (1), u32 LE
//   12      4   flags (0; anything else is refused)
//   16      8   index: the Raft index the state covers
//   24      8   term of that index (0 when unknown)
//   32      8   kv_index: the KV index readers saw
//   40      8   key count
//   48      8   payload length
//   56      4   CRC32C of the payload
//   60      4   CRC32C of bytes 0..59 (the header itself)
//   64      …   payload: StateMachine::serialize() ("RMPSTATE" …)
//
// Nothing is trusted before both checksums match and the length is exact:
// a truncated, extended, corrupt or hostile file is refused with a reason.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rampart::store {

struct State;

inline constexpr size_t kSnapshotFileHeader = 64;
inline constexpr uint32_t kSnapshotFileFormat = 1;

struct SnapshotFileInfo {
    uint32_t format = kSnapshotFileFormat;
    uint64_t index = 0;
    uint64_t term = 0;
    uint64_t kv_index = 0;
    uint64_t keys = 0;
    uint64_t payload_bytes = 0;
    uint32_t payload_crc = 0;
};

// Serialise `state` into a whole file.
std::string encode_snapshot_file(const State& state, uint64_t index, uint64_t term);
// Wrap an already serialised payload.
std::string encode_snapshot_file(std::string_view payload, const SnapshotFileInfo& info);
// The 64-byte header alone, for a payload of info.payload_bytes bytes whose
// CRC32C is info.payload_crc (a file streamed piece by piece).
std::string encode_snapshot_header(const SnapshotFileInfo& info);

// Check the header and both checksums. On success fill *info and point
// *payload into `file`. `max_payload` bounds the length a header may claim.
bool decode_snapshot_file(std::string_view file, SnapshotFileInfo* info, std::string_view* payload, std::string* error,
                          uint64_t max_payload = UINT64_MAX);

// Everything `rampartctl snapshot inspect` reports. `checksum_ok` covers
// both checksums; `payload_ok` that the payload parses as a state whose key
// count matches the header.
struct SnapshotInspection {
    bool header_ok = false;
    bool checksum_ok = false;
    bool payload_ok = false;
    SnapshotFileInfo info;
    uint64_t file_bytes = 0;
    std::string error;  // why not OK
    bool ok() const { return header_ok && checksum_ok && payload_ok; }
};
SnapshotInspection inspect_snapshot_file(std::string_view file);

// The largest snapshot a node accepts (PUT /v1/snapshot, the restore log
// entry): twice the store cap (per-entry overhead of many small keys) plus
// room for idempotency records and tokens.
uint64_t snapshot_size_limit(uint64_t max_store_bytes);

// The log record that restores a snapshot on every node: type byte
// CommandType::SnapshotRestore, version 1, then the whole snapshot file, so
// every node checks both checksums again before applying it.
std::string encode_restore_record(std::string_view file);
bool is_restore_record(std::string_view record);

// "crc32c:0123abcd"
std::string crc_text(uint32_t crc);

}  // namespace rampart::store
