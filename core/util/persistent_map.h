// An ordered map from std::string to V whose copies share structure
// (issue 5, memory): a treap with path copying. Copying the map is O(1)
// (one reference); a write copies only the O(log n) nodes on the path to
// its key, and only those still shared with another copy: while no copy is
// held every node has one owner and writes change nodes in place, with no
// allocation beyond the new entry's node. So a snapshot or a reader pinning
// a version costs each later write O(log n), never a copy of the whole map.
//
// Nodes are reference counted with atomics: a version may be dropped on
// another thread (snapshots are written on the thread pool) while the loop
// writes. A map object itself is not thread-safe; copies of it are
// independent. Iterators stay valid while the map (or any copy sharing the
// same nodes) is alive and unchanged.
//
// Priorities come from a hash of the key mixed with a per-process seed, so a
// map's shape depends only on its key set (no hidden state), and a client
// cannot pick keys that degrade the tree without knowing the seed.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rampart::util {

namespace persistent_map_detail {

inline uint64_t seed() {
    static const uint64_t s = [] {
        std::random_device rd;
        return (uint64_t{rd()} << 32) ^ rd();
    }();
    return s;
}

// splitmix64's finaliser: spreads the string hash over all bits.
inline uint32_t priority(std::string_view key) {
    uint64_t z = std::hash<std::string_view>{}(key) ^ seed();
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return static_cast<uint32_t>(z ^ (z >> 31));
}

}  // namespace persistent_map_detail

template <class V>
class PersistentMap {
public:
    using key_type = std::string;
    using mapped_type = V;
    using value_type = std::pair<const std::string, V>;

private:
    struct Node {
        template <class K, class T>
        Node(K&& k, T&& v)
            : kv(std::forward<K>(k), std::forward<T>(v)), prio(persistent_map_detail::priority(kv.first)) {}
        Node(const Node& o) : kv(o.kv), prio(o.prio), left(o.left), right(o.right) {
            acquire(left);
            acquire(right);
        }
        value_type kv;
        uint32_t prio;
        std::atomic<uint32_t> refs{1};
        Node* left = nullptr;
        Node* right = nullptr;
    };

public:
    // In-order, forward only. Holds the path from the root (no parent
    // pointers: a node may belong to several versions).
    class const_iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = PersistentMap::value_type;
        using difference_type = std::ptrdiff_t;
        using pointer = const value_type*;
        using reference = const value_type&;

        const_iterator() = default;
        reference operator*() const { return path_.back()->kv; }
        pointer operator->() const { return &path_.back()->kv; }
        const_iterator& operator++() {
            const Node* n = path_.back();
            if (n->right) {
                push_left(n->right);
                return *this;
            }
            // Climb until we leave a left subtree.
            path_.pop_back();
            while (!path_.empty() && path_.back()->right == n) {
                n = path_.back();
                path_.pop_back();
            }
            return *this;
        }
        const_iterator operator++(int) {
            const_iterator old = *this;
            ++*this;
            return old;
        }
        bool operator==(const const_iterator& o) const {
            return path_.empty() ? o.path_.empty() : !o.path_.empty() && path_.back() == o.path_.back();
        }
        bool operator!=(const const_iterator& o) const { return !(*this == o); }

    private:
        friend class PersistentMap;
        void push_left(const Node* n) {
            for (; n; n = n->left) path_.push_back(n);
        }
        // The path holds every ancestor, including those whose key is
        // smaller (the climb in ++ needs them to know where it came from).
        std::vector<const Node*> path_;
    };
    using iterator = const_iterator;

    PersistentMap() = default;
    PersistentMap(const PersistentMap& o) : root_(o.root_), size_(o.size_) { acquire(root_); }
    PersistentMap(PersistentMap&& o) noexcept : root_(o.root_), size_(o.size_) {
        o.root_ = nullptr;
        o.size_ = 0;
    }
    PersistentMap& operator=(PersistentMap o) noexcept {
        std::swap(root_, o.root_);
        std::swap(size_, o.size_);
        return *this;
    }
    ~PersistentMap() { release(root_); }

    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }

    const_iterator begin() const {
        const_iterator it;
        it.push_left(root_);
        return it;
    }
    const_iterator end() const { return {}; }

    // The first entry whose key is not less than `key`.
    const_iterator lower_bound(std::string_view key) const {
        const_iterator it;
        size_t keep = 0;  // path length up to the best candidate so far
        for (const Node* n = root_; n;) {
            it.path_.push_back(n);
            if (n->kv.first < key) {
                n = n->right;
            } else {
                keep = it.path_.size();
                n = n->left;
            }
        }
        it.path_.resize(keep);
        return it;
    }

    const_iterator find(std::string_view key) const {
        const_iterator it = lower_bound(key);
        return it != end() && it->first == key ? it : end();
    }

    // The value under `key`, or null: the lookup without an iterator's path.
    const V* get(std::string_view key) const {
        for (const Node* n = root_; n;) {
            int c = key.compare(n->kv.first);
            if (c == 0) return &n->kv.second;
            n = c < 0 ? n->left : n->right;
        }
        return nullptr;
    }

    const V& at(std::string_view key) const {
        if (const V* v = get(key)) return *v;
        throw std::out_of_range("PersistentMap::at");
    }

    size_t count(std::string_view key) const { return get(key) ? 1 : 0; }

    // True when the key was new.
    template <class T>
    bool insert_or_assign(std::string_view key, T&& value) {
        bool inserted = false;
        insert(root_, key, std::forward<T>(value), inserted);
        if (inserted) size_++;
        return inserted;
    }

    // The number of entries removed (0 or 1).
    size_t erase(std::string_view key) {
        if (!get(key)) return 0;  // no path copying for a key that is not there
        erase(root_, key);
        size_--;
        return 1;
    }

    void clear() {
        release(root_);
        root_ = nullptr;
        size_ = 0;
    }

    // Do two maps share their whole tree (a copy not written to since)?
    bool shares_root_with(const PersistentMap& o) const { return root_ == o.root_; }

private:
    static void acquire(Node* n) {
        if (n) n->refs.fetch_add(1, std::memory_order_relaxed);
    }

    // Drop one reference; the last one frees the node and, in turn, its
    // children. Iterative on the left spine would bound the stack better,
    // but the treap's depth is O(log n) with high probability.
    static void release(Node* n) {
        if (!n || n->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        release(n->left);
        release(n->right);
        n->left = n->right = nullptr;
        delete n;  // NOLINT(cppcoreguidelines-owning-memory): nodes are reference-counted by hand (shared between
                   // versions)
    }

    // Give `slot` a node of its own: the same node when nothing else holds
    // it, otherwise a copy (the children gain a reference, so they will be
    // copied in turn if the write goes down to them).
    static Node* own(Node*& slot) {
        if (slot->refs.load(std::memory_order_acquire) != 1) {
            Node* copy = new Node(*slot);  // NOLINT(cppcoreguidelines-owning-memory): owned through refs
            release(slot);
            slot = copy;
        }
        return slot;
    }

    static void rotate_right(Node*& slot) {
        Node* t = slot;
        Node* l = t->left;
        t->left = l->right;
        l->right = t;
        slot = l;
    }

    static void rotate_left(Node*& slot) {
        Node* t = slot;
        Node* r = t->right;
        t->right = r->left;
        r->left = t;
        slot = r;
    }

    template <class T>
    static void insert(Node*& slot, std::string_view key, T&& value, bool& inserted) {
        if (!slot) {
            // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): owned through refs
            slot = new Node(std::string(key), std::forward<T>(value));
            inserted = true;
            return;
        }
        Node* t = own(slot);
        int c = key.compare(t->kv.first);
        if (c == 0) {
            t->kv.second = std::forward<T>(value);
        } else if (c < 0) {
            insert(t->left, key, std::forward<T>(value), inserted);
            if (t->left->prio > t->prio) rotate_right(slot);
        } else {
            insert(t->right, key, std::forward<T>(value), inserted);
            if (t->right->prio > t->prio) rotate_left(slot);
        }
    }

    // The key is known to be present.
    static void erase(Node*& slot, std::string_view key) {
        Node* t = own(slot);
        int c = key.compare(t->kv.first);
        if (c < 0) return erase(t->left, key);
        if (c > 0) return erase(t->right, key);
        Node* l = t->left;
        Node* r = t->right;
        t->left = t->right = nullptr;
        release(t);
        slot = merge(l, r);
    }

    // Join two treaps, every key of `a` below every key of `b`; takes over
    // both references.
    static Node* merge(Node* a, Node* b) {
        if (!a) return b;
        if (!b) return a;
        // own() first: the child handed to merge must be a reference we hold.
        if (a->prio > b->prio) {
            own(a);
            a->right = merge(a->right, b);
            return a;
        }
        own(b);
        b->left = merge(a, b->left);
        return b;
    }

    Node* root_ = nullptr;
    size_t size_ = 0;
};

}  // namespace rampart::util
