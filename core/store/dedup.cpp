#include "store/dedup.h"

namespace rampart::store {

size_t Result::byte_size() const {
    size_t n = sizeof(Result) + error.size();
    for (const TxnResult& r : results) {
        n += sizeof(TxnResult) + r.key.size();
        if (r.with_value && r.entry) n += r.entry->value.size();
    }
    for (const TxnError& e : errors) n += sizeof(TxnError) + e.what.size();
    return n;
}

size_t DedupTable::cost(const std::string& key, const DedupRecord& r) {
    return key.size() + r.fingerprint.size() + (r.outcome ? r.outcome->byte_size() : 0);
}

void DedupTable::erase(std::map<std::string, DedupRecord, std::less<>>::iterator it) {
    bytes_ -= cost(it->first, it->second);
    by_expiry_.erase({it->second.expires_ms, it->first});
    records_.erase(it);
}

void DedupTable::expire(uint64_t now_ms) {
    while (!by_expiry_.empty() && by_expiry_.begin()->first <= now_ms) {
        erase(records_.find(by_expiry_.begin()->second));
    }
}

const DedupRecord* DedupTable::find(std::string_view key) const {
    auto it = records_.find(key);
    return it == records_.end() ? nullptr : &it->second;
}

void DedupTable::remember(std::string key, std::string fingerprint, uint64_t now_ms,
                          std::shared_ptr<const Result> outcome) {
    if (auto it = records_.find(key); it != records_.end()) erase(it);
    insert(std::move(key), DedupRecord{std::move(fingerprint), now_ms + limits_.ttl_ms, std::move(outcome)});
    // The oldest records go first: a retry that late is the least likely.
    while (records_.size() > limits_.max_records || (bytes_ > limits_.max_bytes && records_.size() > 1)) {
        erase(records_.find(by_expiry_.begin()->second));
    }
}

void DedupTable::insert(std::string key, DedupRecord record) {
    bytes_ += cost(key, record);
    by_expiry_.insert({record.expires_ms, key});
    records_.insert_or_assign(std::move(key), std::move(record));
}

}  // namespace rampart::store
