// One KV entry: its metadata and its value in a single allocation, shared
// by every version of the state that holds it (and by the answers and
// snapshots that read it) through an intrusive count.
//
// Why not shared_ptr<Entry> with a std::string: that is three blocks per
// key (count + entry, string buffer), 352 bytes of heap for a 256-byte
// value; this is one block of 304. On a router holding 10,000 such keys
// that is ~0.5 MiB (docs/benchmarks.md, "Memory").
//
// Immutable once made; the count is atomic because the snapshot writer
// reads a pinned state on the thread pool while the loop drops versions.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

namespace rampart::store {

class EntryPtr;

class Entry {
public:
    uint64_t flags() const { return flags_; }
    uint64_t create_index() const { return create_index_; }
    uint64_t modify_index() const { return modify_index_; }
    std::string_view value() const { return {reinterpret_cast<const char*>(this + 1), size_}; }

    static EntryPtr make(std::string_view value, uint64_t flags, uint64_t create_index, uint64_t modify_index);

    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;

private:
    friend class EntryPtr;
    Entry() = default;
    ~Entry() = default;

    mutable std::atomic<uint32_t> refs_{1};
    uint32_t size_ = 0;
    uint64_t flags_ = 0;
    uint64_t create_index_ = 0;
    uint64_t modify_index_ = 0;
    // The value's size_ bytes follow, in the same allocation.
};

// A counted reference to an Entry; null or one entry. Copying it is one
// atomic increment.
class EntryPtr {
public:
    EntryPtr() = default;
    EntryPtr(std::nullptr_t) {}  // NOLINT(google-explicit-constructor): as shared_ptr
    EntryPtr(const EntryPtr& o) : p_(o.p_) { acquire(); }
    EntryPtr(EntryPtr&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
    EntryPtr& operator=(EntryPtr o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~EntryPtr() { release(); }

    const Entry* get() const { return p_; }
    const Entry* operator->() const { return p_; }
    const Entry& operator*() const { return *p_; }
    explicit operator bool() const { return p_ != nullptr; }
    friend bool operator==(const EntryPtr& a, const EntryPtr& b) { return a.p_ == b.p_; }
    friend bool operator==(const EntryPtr& a, std::nullptr_t) { return a.p_ == nullptr; }

private:
    friend class Entry;
    explicit EntryPtr(Entry* adopted) : p_(adopted) {}
    void acquire() const {
        if (p_ != nullptr) p_->refs_.fetch_add(1, std::memory_order_relaxed);
    }
    void release();

    Entry* p_ = nullptr;
};

}  // namespace rampart::store
