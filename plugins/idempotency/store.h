// The idempotency store: records by (scope, key), least recently used
// first out, each with a deadline on the loop's monotonic clock.
//
// Bounded twice: at most `max_keys` records and at most `max_bytes` of
// accounted memory (record_footprint(): the strings it owns plus a fixed
// per-entry overhead for the index nodes). Inserting past either bound
// evicts from the least recently used end. Lookups are O(log n) in an
// ordered map (no hash to flood: keys are chosen by clients), expiry is an
// ordered index so a sweep only touches what has expired.
//
// Single-threaded: the plugin calls it from the event loop only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "record.h"

namespace idempotency {

struct Limits {
    size_t max_keys = 10000;
    size_t max_bytes = 8u << 20;
};

// Bytes a record is charged for, overhead included.
size_t record_footprint(const Record& r);

class Store {
public:
    explicit Store(Limits limits = {});
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // New bounds; evicts at once if the store is over them.
    void set_limits(Limits limits);
    const Limits& limits() const { return limits_; }

    // The live record for (scope, key) and marks it most recently used; an
    // expired one is removed and nullptr returned. The pointer is valid
    // until the next call that changes the store.
    Record* find(std::string_view scope, std::string_view key, uint64_t now_ms);
    // The same without touching recency or expiry (may return an expired one).
    Record* peek(std::string_view scope, std::string_view key);
    // Insert, or replace the record with the same scope and key, as the most
    // recently used, valid until `expires_ms`. Then evicts others until
    // within bounds. nullptr, and the store unchanged (an existing record
    // with that key is kept), when this record alone is over max_bytes or
    // is not valid_record().
    Record* put(Record record, uint64_t expires_ms);
    bool erase(std::string_view scope, std::string_view key);
    // Remove every record whose deadline is <= now_ms; returns how many.
    size_t sweep(uint64_t now_ms);
    // Monotonic deadline of (scope, key), or 0 when absent.
    uint64_t deadline(std::string_view scope, std::string_view key) const;
    // Least to most recently used, for tests and snapshots later.
    void for_each(const std::function<void(const Record&, uint64_t expires_ms)>& fn) const;

    size_t size() const { return index_.size(); }
    size_t bytes() const { return bytes_; }
    uint64_t evictions() const { return evictions_; }
    uint64_t expirations() const { return expirations_; }

private:
    struct Node;
    using Index = std::map<std::string, std::unique_ptr<Node>, std::less<>>;
    using Expiry = std::multimap<uint64_t, Node*>;

    static std::string id_of(std::string_view scope, std::string_view key);
    Node* lookup(std::string_view scope, std::string_view key) const;
    void unlink(Node* n);
    void push_front(Node* n);
    void remove(Node* n);
    void enforce(const Node* keep);

    Limits limits_;
    Index index_;
    Expiry expiry_;
    Node* head_ = nullptr;  // most recently used
    Node* tail_ = nullptr;  // least recently used
    size_t bytes_ = 0;
    uint64_t evictions_ = 0;
    uint64_t expirations_ = 0;
};

}  // namespace idempotency
