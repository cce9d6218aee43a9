#include "store/dedup.h"

namespace rampart::store {

size_t Result::byte_size() const {
    size_t n = sizeof(Result) + error.size();
    for (const TxnResult& r : results) {
        n += sizeof(TxnResult) + r.key.size();
        if (r.with_value && r.entry) n += r.entry->value().size();
    }
    for (const TxnError& e : errors) n += sizeof(TxnError) + e.what.size();
    return n;
}

namespace {

constexpr size_t kExpiryBytes = 8;

std::string expiry_key(uint64_t expires_ms, std::string_view key) {
    std::string out(kExpiryBytes, '\0');
    for (size_t i = 0; i < kExpiryBytes; i++) out[i] = static_cast<char>(expires_ms >> (8 * (kExpiryBytes - 1 - i)));
    out.append(key);
    return out;
}

uint64_t expiry_of(std::string_view k) {
    uint64_t v = 0;
    for (size_t i = 0; i < kExpiryBytes; i++) v = (v << 8) | static_cast<uint8_t>(k[i]);
    return v;
}

}  // namespace

size_t DedupTable::cost(std::string_view key, const DedupRecord& r) {
    return key.size() + r.fingerprint.size() + (r.outcome ? r.outcome->byte_size() : 0);
}

void DedupTable::erase(std::string_view key) {
    const DedupRecord* rec = records_.get(key);
    if (!rec) return;
    bytes_ -= cost(key, *rec);
    by_expiry_.erase(expiry_key(rec->expires_ms, key));
    records_.erase(key);
}

std::string_view DedupTable::oldest_key() const {
    return std::string_view(by_expiry_.begin()->first).substr(kExpiryBytes);
}

void DedupTable::expire(uint64_t now_ms) {
    while (!by_expiry_.empty() && expiry_of(by_expiry_.begin()->first) <= now_ms) {
        erase(std::string(oldest_key()));
    }
}

const DedupRecord* DedupTable::find(std::string_view key) const { return records_.get(key); }

void DedupTable::remember(const std::string& key, std::string fingerprint, uint64_t now_ms,
                          std::shared_ptr<const Result> outcome) {
    erase(key);
    insert(key, DedupRecord{std::move(fingerprint), now_ms + limits_.ttl_ms, std::move(outcome)});
    // The oldest records go first: a retry that late is the least likely.
    while (records_.size() > limits_.max_records || (bytes_ > limits_.max_bytes && records_.size() > 1)) {
        erase(std::string(oldest_key()));
    }
}

// The restore path may name a key twice: the later record wins, as it did
// with std::map::insert_or_assign.
void DedupTable::insert(const std::string& key, DedupRecord record) {
    erase(key);
    bytes_ += cost(key, record);
    by_expiry_.insert_or_assign(expiry_key(record.expires_ms, key), true);
    records_.insert_or_assign(key, std::move(record));
}

}  // namespace rampart::store
