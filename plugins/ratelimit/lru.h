// A bounded map from string keys to values with least-recently-used
// eviction, so a flood of source addresses costs at most `capacity`
// entries. The hash is SipHash-1-3 under a random per-process key: the keys
// (source addresses) are chosen by clients, and an unkeyed hash would let
// one craft colliding keys that turn every lookup into a list walk.
//
// Layout, for few cache misses per lookup: an open-addressing index of
// 8-byte slots (hash tag + node number) over a deque of nodes that hold the
// key inline (up to 24 bytes), the recency links and the value. A hit costs
// the index slot and the node; a miss that evicts reuses the coldest node
// in place, with no allocation.
#pragma once

#include <sys/random.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string_view>
#include <vector>

namespace ratelimit {

// SipHash-1-3 (Aumasson & Bernstein), 64-bit output.
inline uint64_t siphash13(uint64_t k0, uint64_t k1, const void* data, size_t len) {
    auto rotl = [](uint64_t x, int b) { return (x << b) | (x >> (64 - b)); };
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    auto round = [&] {
        v0 += v1;
        v1 = rotl(v1, 13);
        v1 ^= v0;
        v0 = rotl(v0, 32);
        v2 += v3;
        v3 = rotl(v3, 16);
        v3 ^= v2;
        v0 += v3;
        v3 = rotl(v3, 21);
        v3 ^= v0;
        v2 += v1;
        v1 = rotl(v1, 17);
        v1 ^= v2;
        v2 = rotl(v2, 32);
    };
    const auto* p = static_cast<const unsigned char*>(data);
    size_t blocks = len / 8;
    for (size_t i = 0; i < blocks; ++i, p += 8) {
        uint64_t m;
        std::memcpy(&m, p, 8);  // little-endian hosts; the key is random anyway
        v3 ^= m;
        round();
        v0 ^= m;
    }
    uint64_t b = static_cast<uint64_t>(len) << 56;
    for (size_t i = 0; i < (len & 7); ++i) b |= static_cast<uint64_t>(p[i]) << (8 * i);
    v3 ^= b;
    round();
    v0 ^= b;
    v2 ^= 0xff;
    round();
    round();
    round();
    return v0 ^ v1 ^ v2 ^ v3;
}

template <class V>
class LruMap {
public:
    explicit LruMap(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {
        random_key();
        table_.assign(16, 0);
    }
    LruMap(const LruMap&) = delete;
    LruMap& operator=(const LruMap&) = delete;

    size_t size() const { return size_; }
    size_t capacity() const { return capacity_; }
    uint64_t evictions() const { return evictions_; }

    // The value for `key`, marked most recently used; nullptr if absent.
    V* find(std::string_view key) {
        uint32_t n = lookup(key, hash(key), nullptr);
        if (n == kNil) return nullptr;
        touch(n);
        return &nodes_[n].value;
    }

    // The value for `key` without changing its recency.
    V* peek(std::string_view key) {
        uint32_t n = lookup(key, hash(key), nullptr);
        return n == kNil ? nullptr : &nodes_[n].value;
    }

    // The value for `key`, inserting a default one if absent; when full, the
    // least recently used entry is evicted and its node reused (V::recycle(),
    // if V has one, readies the old value; otherwise it is reset to V{}).
    // Marked most recent. Pointers to other values stay valid unless their
    // entry is evicted (nodes live in a deque and never move).
    V* find_or_insert(std::string_view key, bool* inserted = nullptr) {
        uint64_t h = hash(key);
        uint32_t n = lookup(key, h, nullptr);
        if (n != kNil) {
            touch(n);
            if (inserted) *inserted = false;
            return &nodes_[n].value;
        }
        while (size_ > capacity_ && tail_ != kNil) evict_tail();
        if (size_ == capacity_ && tail_ != kNil) {
            n = tail_;
            remove(n);
            ++evictions_;
            recycle(nodes_[n].value);
        } else {
            n = new_node();
        }
        Node& node = nodes_[n];
        node.set_key(key);
        node.hash = h;
        node.used = true;
        insert(n);
        if (inserted) *inserted = true;
        return &node.value;
    }

    bool erase(std::string_view key) {
        uint32_t n = lookup(key, hash(key), nullptr);
        if (n == kNil) return false;
        release(n);
        return true;
    }

    // Shrinking evicts least recently used entries at once.
    void set_capacity(size_t capacity) {
        capacity_ = capacity < 1 ? 1 : capacity;
        while (size_ > capacity_ && tail_ != kNil) evict_tail();
    }

    // Calls fn(key, value) for every entry; fn returns true to erase it.
    // fn may modify the value.
    template <class Fn>
    void erase_if(Fn&& fn) {
        for (uint32_t n = head_; n != kNil;) {
            uint32_t next = nodes_[n].next;
            if (fn(nodes_[n].key(), nodes_[n].value)) release(n);
            n = next;
        }
    }

    // Housekeeping from the cold end: looks at up to `max_checked` least
    // recently used entries and erases those for which idle(value) is true.
    // Returns how many were erased.
    template <class Fn>
    size_t trim_cold(size_t max_checked, Fn&& idle) {
        size_t erased = 0;
        uint32_t n = tail_;
        for (size_t i = 0; i < max_checked && n != kNil; ++i) {
            uint32_t prev = nodes_[n].prev;
            if (idle(nodes_[n].value)) {
                release(n);
                ++erased;
            }
            n = prev;
        }
        return erased;
    }

    // Least to most recently used (tests).
    template <class Fn>
    void for_each_cold_first(Fn&& fn) const {
        for (uint32_t n = tail_; n != kNil; n = nodes_[n].prev) fn(nodes_[n].key(), nodes_[n].value);
    }

private:
    static constexpr uint32_t kNil = UINT32_MAX;
    static constexpr size_t kSmallKey = 24;  // IPv6 keys (17 bytes) and most identities fit inline

    struct Node {
        uint64_t hash = 0;
        uint32_t prev = kNil, next = kNil;
        uint32_t key_len = 0;
        bool used = false;
        char small[kSmallKey] = {};
        std::unique_ptr<char[]> big;  // keys longer than kSmallKey
        V value{};

        std::string_view key() const { return {key_len <= kSmallKey ? small : big.get(), key_len}; }
        void set_key(std::string_view k) {
            key_len = static_cast<uint32_t>(k.size());
            if (k.size() <= kSmallKey) {
                big.reset();
                std::memcpy(small, k.data(), k.size());
            } else {
                big = std::make_unique<char[]>(k.size());
                std::memcpy(big.get(), k.data(), k.size());
            }
        }
    };

    // The open-addressing index: each slot holds the top 32 bits of the
    // key's hash (which also picks its home slot) and the node index + 1;
    // 0 is empty. Linear probing, at most half full, backward-shift delete.
    static uint32_t tag_of(uint64_t h) { return static_cast<uint32_t>(h >> 32); }
    static uint64_t slot_of(uint64_t h, uint32_t n) { return (static_cast<uint64_t>(tag_of(h)) << 32) | (n + 1ULL); }
    size_t mask() const { return table_.size() - 1; }

    void random_key() {
        uint64_t k[2] = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
        if (getrandom(k, sizeof k, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof k)) {
            // No entropy this early: something per-process at least.
            k[0] ^= reinterpret_cast<uintptr_t>(this);
            k[1] ^= static_cast<uint64_t>(getpid());
        }
        k0_ = k[0];
        k1_ = k[1];
    }
    uint64_t hash(std::string_view s) const { return siphash13(k0_, k1_, s.data(), s.size()); }

    // The node holding `key`, or kNil; `pos` gets its table position.
    uint32_t lookup(std::string_view key, uint64_t h, size_t* pos) const {
        uint32_t tag = tag_of(h);
        for (size_t i = tag & mask();; i = (i + 1) & mask()) {
            uint64_t s = table_[i];
            if (s == 0) return kNil;
            if (static_cast<uint32_t>(s >> 32) == tag) {
                auto n = static_cast<uint32_t>((s & 0xffffffffu) - 1);
                const Node& node = nodes_[n];
                if (node.key_len == key.size() && std::memcmp(node.key().data(), key.data(), key.size()) == 0) {
                    if (pos) *pos = i;
                    return n;
                }
            }
        }
    }

    uint32_t new_node() {
        if (!free_.empty()) {
            uint32_t n = free_.back();
            free_.pop_back();
            return n;
        }
        nodes_.emplace_back();
        return static_cast<uint32_t>(nodes_.size() - 1);
    }

    // Adds node n (key and hash set) to the index and the front of the list.
    void insert(uint32_t n) {
        if ((size_ + 1) * 2 > table_.size()) grow();
        size_t i = tag_of(nodes_[n].hash) & mask();
        while (table_[i] != 0) i = (i + 1) & mask();
        table_[i] = slot_of(nodes_[n].hash, n);
        ++size_;
        link_front(n);
    }

    // Takes node n out of the index and the list (the node stays allocated).
    void remove(uint32_t n) {
        Node& node = nodes_[n];
        size_t i = tag_of(node.hash) & mask();
        while ((table_[i] & 0xffffffffu) != n + 1ULL) i = (i + 1) & mask();
        // Backward-shift: pull later members of the probe run into the hole
        // unless their home lies cyclically after the hole.
        for (size_t j = (i + 1) & mask(); table_[j] != 0; j = (j + 1) & mask()) {
            size_t home = static_cast<uint32_t>(table_[j] >> 32) & mask();
            bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
            if (movable) {
                table_[i] = table_[j];
                i = j;
            }
        }
        table_[i] = 0;
        --size_;
        unlink(n);
    }

    void release(uint32_t n) {
        remove(n);
        Node& node = nodes_[n];
        node.used = false;
        node.big.reset();
        node.value = V{};
        free_.push_back(n);
    }

    void evict_tail() {
        release(tail_);
        ++evictions_;
    }

    void grow() {
        std::vector<uint64_t> old;
        old.swap(table_);
        table_.assign(old.size() * 2, 0);
        for (uint64_t s : old) {
            if (s == 0) continue;
            size_t i = static_cast<uint32_t>(s >> 32) & mask();
            while (table_[i] != 0) i = (i + 1) & mask();
            table_[i] = s;
        }
    }

    static void recycle(V& v) {
        if constexpr (requires { v.recycle(); }) {
            v.recycle();
        } else {
            v = V{};
        }
    }

    void unlink(uint32_t n) {
        Node& node = nodes_[n];
        (node.prev != kNil ? nodes_[node.prev].next : head_) = node.next;
        (node.next != kNil ? nodes_[node.next].prev : tail_) = node.prev;
        node.prev = node.next = kNil;
    }
    void link_front(uint32_t n) {
        Node& node = nodes_[n];
        node.prev = kNil;
        node.next = head_;
        if (head_ != kNil) nodes_[head_].prev = n;
        head_ = n;
        if (tail_ == kNil) tail_ = n;
    }
    void touch(uint32_t n) {
        if (head_ == n) return;
        unlink(n);
        link_front(n);
    }

    size_t capacity_;
    size_t size_ = 0;
    uint64_t k0_ = 0, k1_ = 0;
    std::vector<uint64_t> table_;
    std::deque<Node> nodes_;      // never moves a node: values may be pointed to
    std::vector<uint32_t> free_;  // released nodes, reused first
    uint32_t head_ = kNil;        // most recently used
    uint32_t tail_ = kNil;        // least recently used
    uint64_t evictions_ = 0;
};

}  // namespace ratelimit
