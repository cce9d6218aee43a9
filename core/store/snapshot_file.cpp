#include "store/snapshot_file.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "cluster/raft_adapter.h"
#include "store/state_machine.h"

namespace rampart::store {
namespace {

constexpr char kMagic[8] = {'R', 'M', 'P', 'S', 'N', 'A', 'P', 'F'};

void put32(std::string& s, size_t at, uint32_t v) {
    for (int i = 0; i < 4; i++) s[at + i] = static_cast<char>(v >> (8 * i));
}
void put64(std::string& s, size_t at, uint64_t v) {
    for (int i = 0; i < 8; i++) s[at + i] = static_cast<char>(v >> (8 * i));
}
uint32_t get32(std::string_view s, size_t at) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
    return v;
}
uint64_t get64(std::string_view s, size_t at) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
    return v;
}
uint32_t crc(std::string_view s) { return rampart_raft_crc32c(0, s.data(), s.size()); }

// The header on its own: magic, format, flags and its own checksum.
bool check_header(std::string_view file, SnapshotFileInfo* info, std::string* error) {
    if (file.size() < kSnapshotFileHeader) {
        *error = "not a rampart snapshot: " + std::to_string(file.size()) + " bytes, shorter than the header";
        return false;
    }
    if (std::memcmp(file.data(), kMagic, sizeof kMagic) != 0) {
        *error = "not a rampart snapshot (bad magic)";
        return false;
    }
    if (crc(file.substr(0, 60)) != get32(file, 60)) {
        *error = "snapshot header checksum mismatch: the file is corrupt";
        return false;
    }
    info->format = get32(file, 8);
    if (info->format != kSnapshotFileFormat) {
        *error = "snapshot format " + std::to_string(info->format) + " is not supported (this build reads " +
                 std::to_string(kSnapshotFileFormat) + ")";
        return false;
    }
    if (get32(file, 12) != 0) {
        *error = "snapshot header has unknown flags";
        return false;
    }
    info->index = get64(file, 16);
    info->term = get64(file, 24);
    info->kv_index = get64(file, 32);
    info->keys = get64(file, 40);
    info->payload_bytes = get64(file, 48);
    info->payload_crc = get32(file, 56);
    return true;
}

}  // namespace

std::string crc_text(uint32_t value) {
    char buf[24];
    snprintf(buf, sizeof buf, "crc32c:%08x", value);
    return buf;
}

std::string encode_snapshot_header(const SnapshotFileInfo& info) {
    std::string out(kSnapshotFileHeader, '\0');
    std::memcpy(out.data(), kMagic, sizeof kMagic);
    put32(out, 8, kSnapshotFileFormat);
    put32(out, 12, 0);
    put64(out, 16, info.index);
    put64(out, 24, info.term);
    put64(out, 32, info.kv_index);
    put64(out, 40, info.keys);
    put64(out, 48, info.payload_bytes);
    put32(out, 56, info.payload_crc);
    put32(out, 60, crc(std::string_view(out).substr(0, 60)));
    return out;
}

std::string encode_snapshot_file(std::string_view payload, const SnapshotFileInfo& info) {
    SnapshotFileInfo whole = info;
    whole.payload_bytes = payload.size();
    whole.payload_crc = crc(payload);
    std::string out = encode_snapshot_header(whole);
    out.append(payload);
    return out;
}

std::string encode_snapshot_file(const State& state, uint64_t index, uint64_t term) {
    SnapshotFileInfo info;
    info.index = index;
    info.term = term;
    info.kv_index = state.kv_index;
    info.keys = state.kv.size();
    return encode_snapshot_file(StateMachine::serialize(state), info);
}

bool decode_snapshot_file(std::string_view file, SnapshotFileInfo* info, std::string_view* payload, std::string* error,
                          uint64_t max_payload) {
    SnapshotFileInfo h;
    if (!check_header(file, &h, error)) return false;
    uint64_t have = file.size() - kSnapshotFileHeader;
    if (h.payload_bytes > max_payload) {
        *error = "snapshot payload of " + std::to_string(h.payload_bytes) + " bytes is over the limit of " +
                 std::to_string(max_payload);
        return false;
    }
    if (h.payload_bytes != have) {
        *error = h.payload_bytes > have
                     ? "snapshot is truncated: " + std::to_string(have) + " of " + std::to_string(h.payload_bytes) +
                           " payload bytes"
                     : "snapshot has " + std::to_string(have - h.payload_bytes) + " unexpected bytes after its payload";
        return false;
    }
    std::string_view body = file.substr(kSnapshotFileHeader);
    if (crc(body) != h.payload_crc) {
        *error = "snapshot payload checksum mismatch (" + crc_text(crc(body)) + ", header says " +
                 crc_text(h.payload_crc) + "): the file is corrupt";
        return false;
    }
    *info = h;
    *payload = body;
    return true;
}

uint64_t snapshot_size_limit(uint64_t max_store_bytes) { return max_store_bytes * 2 + (uint64_t{32} << 20); }

constexpr uint8_t kRestoreVersion = 1;

std::string encode_restore_record(std::string_view file) {
    std::string out;
    out.reserve(file.size() + 2);
    out.push_back(static_cast<char>(CommandType::SnapshotRestore));
    out.push_back(static_cast<char>(kRestoreVersion));
    out.append(file);
    return out;
}

bool is_restore_record(std::string_view record) {
    return !record.empty() && static_cast<uint8_t>(record[0]) == static_cast<uint8_t>(CommandType::SnapshotRestore);
}

// Replace the whole state, deterministically on every node. The index is
// re-based: the store's index becomes the restore entry's, so it never goes
// backwards and every blocking reader wakes with an index past the one it
// held; an entry whose CreateIndex/ModifyIndex lies beyond that (a snapshot
// from a cluster further along) takes the restore's index, so no entry is
// newer than the store.
Result StateMachine::apply_restore(uint64_t index, std::string_view record) {
    auto refuse = [&](Outcome outcome, std::string why) {
        mutable_state().applied = index;
        Result r;
        r.outcome = outcome;
        r.error = std::move(why);
        return r;
    };
    if (record.size() < 2 || static_cast<uint8_t>(record[1]) != kRestoreVersion)
        return refuse(Outcome::Invalid, "unknown snapshot restore record version");
    SnapshotFileInfo info;
    std::string_view payload;
    std::string error;
    if (!decode_snapshot_file(record.substr(2), &info, &payload, &error)) return refuse(Outcome::Invalid, error);
    StateMachine parsed(limits_);
    if (!parsed.restore(index, payload, &error)) return refuse(Outcome::Invalid, error);
    std::shared_ptr<State> s = std::move(parsed.state_);
    if (s->kv.size() != info.keys)
        return refuse(Outcome::Invalid, "snapshot header and payload disagree on the key count");
    if (s->used_bytes > limits_.max_bytes)
        return refuse(Outcome::StoreFull, "the snapshot holds " + std::to_string(s->used_bytes) +
                                              " bytes of keys and values, over cluster.max_store_bytes = " +
                                              std::to_string(limits_.max_bytes));
    // Collected first: the persistent map is not written while iterated.
    std::vector<std::pair<std::string, EntryPtr>> rebased;
    for (const auto& [key, e] : s->kv) {
        if (e->create_index() <= index && e->modify_index() <= index) continue;
        rebased.emplace_back(key, Entry::make(e->value(), e->flags(), std::min(e->create_index(), index),
                                              std::min(e->modify_index(), index)));
    }
    for (auto& [key, e] : rebased) s->kv.insert_or_assign(key, std::move(e));
    s->kv_index = index;
    s->applied = index;
    state_ = std::move(s);
    return {};
}

SnapshotInspection inspect_snapshot_file(std::string_view file) {
    SnapshotInspection r;
    r.file_bytes = file.size();
    if (!check_header(file, &r.info, &r.error)) return r;
    r.header_ok = true;
    std::string_view payload;
    if (!decode_snapshot_file(file, &r.info, &payload, &r.error)) return r;
    r.checksum_ok = true;
    StateMachine sm;
    if (!sm.restore(r.info.index, payload, &r.error)) return r;
    if (sm.version()->kv.size() != r.info.keys) {
        r.error = "the header says " + std::to_string(r.info.keys) + " keys, the payload holds " +
                  std::to_string(sm.version()->kv.size());
        return r;
    }
    r.payload_ok = true;
    return r;
}

}  // namespace rampart::store
