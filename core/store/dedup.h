// Idempotency records kept in the replicated state (issue 5): for a write
// that carried an idempotency key (already scoped by identity), the request
// fingerprint and the outcome, until the record expires. Expiry and
// eviction use only the leader's clock carried in each entry, so every node
// keeps and drops exactly the same records.
//
// Both indexes are persistent maps (util/persistent_map.h), so copying the
// table for a new version of the state is O(1) and a write after a pinned
// version copies O(log n) nodes, not the table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "store/result.h"
#include "util/persistent_map.h"

namespace rampart::store {

struct DedupLimits {
    size_t max_records = 10000;                   // brief: 10,000 keys
    uint64_t ttl_ms = uint64_t{10} * 60 * 1000;   // brief: 10 min
    size_t max_bytes = size_t{16} * 1024 * 1024;  // stored outcomes (txn get results can be large)
};

struct DedupRecord {
    std::string fingerprint;
    uint64_t expires_ms = 0;
    std::shared_ptr<const Result> outcome;
};

class DedupTable {
public:
    using Records = util::PersistentMap<DedupRecord>;

    explicit DedupTable(DedupLimits limits = {}) : limits_(limits) {}

    // Drop records whose expiry is at or before `now_ms`.
    void expire(uint64_t now_ms);
    const DedupRecord* find(std::string_view key) const;
    // Keep `outcome` for `key`, evicting the records closest to expiry
    // when over a limit.
    void remember(const std::string& key, std::string fingerprint, uint64_t now_ms,
                  std::shared_ptr<const Result> outcome);
    // Restore path: a record exactly as serialised.
    void insert(const std::string& key, DedupRecord record);

    size_t size() const { return records_.size(); }
    size_t bytes() const { return bytes_; }
    const Records& records() const { return records_; }

private:
    void erase(std::string_view key);
    // The record closest to expiry (the table is not empty).
    std::string_view oldest_key() const;
    static size_t cost(std::string_view key, const DedupRecord& r);

    DedupLimits limits_;
    Records records_;
    // Keyed by the expiry (8 bytes, big-endian, so byte order is time
    // order) followed by the record's key.
    util::PersistentMap<bool> by_expiry_;
    size_t bytes_ = 0;
};

}  // namespace rampart::store
