#include "store.h"

#include <utility>

namespace idempotency {

// An index entry: the record, its place in the recency list (intrusive, so
// touching a record allocates nothing) and in the expiry index.
struct Store::Node {
    Record record;
    uint64_t expires_ms = 0;
    size_t bytes = 0;
    Node* prev = nullptr;
    Node* next = nullptr;
    Index::iterator self;
    Expiry::iterator expiry;
};

namespace {
// Map node + list links + expiry node + allocator slack: a deliberate
// overestimate, so the bound holds whatever the standard library does.
constexpr size_t kEntryOverhead = 320;
}  // namespace

size_t record_footprint(const Record& r) {
    size_t n =
        kEntryOverhead + r.scope.size() * 2 + r.key.size() * 2 + r.owner.size() + r.content_type.size() + r.body.size();
    for (const Header& h : r.headers) n += 64 + h.name.size() + h.value.size();
    return n;
}

Store::Store(Limits limits) : limits_(limits) {}

Store::~Store() = default;

// Length-prefixed, so no scope can end inside another's key.
std::string Store::id_of(std::string_view scope, std::string_view key) {
    std::string id = std::to_string(scope.size());
    id += ':';
    id.append(scope);
    id.append(key);
    return id;
}

Store::Node* Store::lookup(std::string_view scope, std::string_view key) const {
    auto it = index_.find(id_of(scope, key));
    return it == index_.end() ? nullptr : it->second.get();
}

void Store::unlink(Node* n) {
    (n->prev ? n->prev->next : head_) = n->next;
    (n->next ? n->next->prev : tail_) = n->prev;
    n->prev = n->next = nullptr;
}

void Store::push_front(Node* n) {
    n->prev = nullptr;
    n->next = head_;
    (head_ ? head_->prev : tail_) = n;
    head_ = n;
}

void Store::remove(Node* n) {
    unlink(n);
    expiry_.erase(n->expiry);
    bytes_ -= n->bytes;
    index_.erase(n->self);  // destroys n
}

void Store::enforce(const Node* keep) {
    while ((index_.size() > limits_.max_keys || bytes_ > limits_.max_bytes) && tail_ != nullptr && tail_ != keep) {
        remove(tail_);
        ++evictions_;
    }
}

void Store::set_limits(Limits limits) {
    limits_ = limits;
    enforce(nullptr);
}

Record* Store::find(std::string_view scope, std::string_view key, uint64_t now_ms) {
    Node* n = lookup(scope, key);
    if (n == nullptr) return nullptr;
    if (n->expires_ms <= now_ms) {
        remove(n);
        ++expirations_;
        return nullptr;
    }
    unlink(n);
    push_front(n);
    return &n->record;
}

Record* Store::peek(std::string_view scope, std::string_view key) {
    Node* n = lookup(scope, key);
    return n ? &n->record : nullptr;
}

Record* Store::put(Record record, uint64_t expires_ms) {
    if (!valid_record(record)) return nullptr;
    size_t bytes = record_footprint(record);
    if (bytes > limits_.max_bytes || limits_.max_keys == 0) return nullptr;
    std::string id = id_of(record.scope, record.key);
    auto it = index_.find(id);
    Node* n;
    if (it != index_.end()) {
        n = it->second.get();
        unlink(n);
        expiry_.erase(n->expiry);
        bytes_ -= n->bytes;
    } else {
        auto node = std::make_unique<Node>();
        n = node.get();
        n->self = index_.emplace(std::move(id), std::move(node)).first;
    }
    n->record = std::move(record);
    n->expires_ms = expires_ms;
    n->bytes = bytes;
    n->expiry = expiry_.emplace(expires_ms, n);
    bytes_ += bytes;
    push_front(n);
    enforce(n);
    return &n->record;
}

bool Store::erase(std::string_view scope, std::string_view key) {
    Node* n = lookup(scope, key);
    if (n == nullptr) return false;
    remove(n);
    return true;
}

size_t Store::sweep(uint64_t now_ms) {
    size_t removed = 0;
    while (!expiry_.empty() && expiry_.begin()->first <= now_ms) {
        remove(expiry_.begin()->second);
        ++removed;
    }
    expirations_ += removed;
    return removed;
}

uint64_t Store::deadline(std::string_view scope, std::string_view key) const {
    Node* n = lookup(scope, key);
    return n ? n->expires_ms : 0;
}

void Store::for_each(const std::function<void(const Record&, uint64_t)>& fn) const {
    for (const Node* n = tail_; n != nullptr; n = n->prev) fn(n->record, n->expires_ms);
}

}  // namespace idempotency
