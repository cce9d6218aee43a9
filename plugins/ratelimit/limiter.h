// The rate limiter proper, free of the plugin ABI: rules in, decisions
// out, time passed in by the caller (the host's loop clock in the plugin,
// a hand-driven clock in tests).
//
// State lives in one bounded LRU table of keys (a source address, or an
// authenticated identity), each holding one small slot per rule that has
// touched it: a token bucket, and for auth-failure rules a penalty deadline,
// a block deadline and a sliding failure count.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bucket.h"
#include "cidr.h"
#include "lru.h"
#include "rules.h"

namespace ratelimit {

enum class Decision : uint8_t { Allowed, Limited, ShadowLimited, Blocked, Allowlisted };
constexpr size_t kDecisionCount = 5;
const char* decision_name(Decision d);

// Who sent a request, as the host's identity kind says.
enum class Caller : uint8_t { Unauthenticated, Authenticated, Peer };

struct RequestInfo {
    Caller caller = Caller::Unauthenticated;
    char identity_kind = 't';    // 't' token, 'c' certificate (keeps the two namespaces apart)
    std::string_view identity;   // token name or certificate id
    std::string_view source_ip;  // without port
    std::string_view path;       // without query
};

// What admit() decided. Reused between calls (its strings keep capacity).
struct Outcome {
    bool exempt = false;   // internal peer traffic: no rule applies, no headers
    bool refuse = false;   // answer 429
    bool blocked = false;  // refused because of an auth-failure block
    uint32_t retry_after_s = 0;
    const Rule* cause = nullptr;  // the rule that refused (a block first)
    RouteClass route = RouteClass::Other;
    // Header values (IETF draft-ietf-httpapi-ratelimit-headers, structured
    // fields); has_headers false when no rule applied (peer, allow-listed).
    bool has_headers = false;
    const std::string* policy = nullptr;  // RateLimit-Policy
    std::string limit;                    // RateLimit
    std::string body;                     // the 429 JSON when refuse

    void clear();

private:
    friend class Limiter;
    std::string policy_buf;
};

// A block that began (for the log).
struct BlockEvent {
    std::string rule;
    double failures = 0;
    double duration_s = 0;
    bool shadow = false;
};

class Limiter {
public:
    explicit Limiter(size_t max_keys = 100000);

    // Swaps in a new rule set. Buckets, penalties and blocks are kept by
    // rule name; a rule whose rate or burst changed has its tokens rescaled
    // (Bucket::rescale); state of rules that are gone is dropped, and so
    // are blocks of a rule that no longer blocks. Decision counts not yet
    // drained are kept.
    void set_rules(std::vector<Rule> rules, uint64_t now_ms);
    const std::vector<Rule>& rules() const { return rules_; }

    // At least 16. Shrinking evicts the least recently used keys.
    void set_max_keys(size_t n);
    size_t max_keys() const { return keys_.capacity(); }
    size_t tracked() const { return keys_.size(); }
    uint64_t evictions() const { return keys_.evictions(); }

    // Decides one request. Never allocates once warmed up, unless a key is
    // new or the request is refused.
    void admit(const RequestInfo& req, uint64_t now_ms, Outcome* out);

    // An authentication failure from `source_ip`. Counts it against every
    // auth-failure rule (except reason "forbidden": a valid token without
    // the role is not guessing). Blocks that begin are appended to `events`.
    void auth_failure(std::string_view source_ip, std::string_view reason, uint64_t now_ms,
                      std::vector<BlockEvent>* events);

    // Housekeeping: of the `max_checked` least recently used keys, drops
    // those whose state is back to that of a new key (buckets full, no
    // penalty, block or recent failures). Returns how many were dropped.
    size_t trim(uint64_t now_ms, size_t max_checked);

    // Counts since the last drain, then reset: fn(rule, decision, count)
    // and fn(reason, count).
    template <class Fn>
    void drain_decisions(Fn&& fn) {
        for (size_t i = 0; i < rules_.size(); ++i) {
            for (size_t d = 0; d < kDecisionCount; ++d) {
                if (counts_[i][d] != 0) fn(rules_[i].name, static_cast<Decision>(d), counts_[i][d]);
                counts_[i][d] = 0;
            }
        }
        for (auto& [name, c] : retired_counts_) {
            for (size_t d = 0; d < kDecisionCount; ++d) {
                if (c[d] != 0) fn(name, static_cast<Decision>(d), c[d]);
            }
        }
        retired_counts_.clear();
    }
    template <class Fn>
    void drain_auth_failures(Fn&& fn) {
        for (auto& [reason, n] : reasons_) {
            if (n != 0) fn(reason, n);
            n = 0;
        }
    }

    // Tests and debugging: the state of `rule` for a key. `who` is a source
    // address (rules keyed by ip) or "t:<name>" / "c:<name>" (identity).
    struct SlotView {
        double tokens = 0;
        uint64_t penalty_until = 0;
        uint64_t block_until = 0;
    };
    bool inspect(std::string_view rule, std::string_view who, uint64_t now_ms, SlotView* out);

private:
    struct Slot {
        uint16_t rule = 0;
        Bucket bucket;
        uint64_t penalty_until = 0;
        uint64_t block_until = 0;
        SlidingCount failures;
    };
    struct Entry {
        std::vector<Slot> slots;
        void recycle() { slots.clear(); }  // an evicted entry's buffer serves the next key
    };
    struct Pending {
        Entry* entry;
        uint32_t slot;
        uint16_t rule;
    };
    struct Penalized {
        uint16_t rule;
        uint32_t seconds;
    };
    using Counts = std::array<uint64_t, kDecisionCount>;

    static size_t table_index(Caller c, RouteClass rc) {
        return (c == Caller::Authenticated ? kRouteClassCount : 0) + static_cast<size_t>(rc);
    }
    void rebuild_tables();
    void make_ip_key(const Address& a, std::string_view raw);
    uint32_t slot_index(Entry* e, uint16_t rule, uint64_t now_ms);
    void count(uint16_t rule, Decision d) { ++counts_[rule][static_cast<size_t>(d)]; }
    void refuse(Outcome* out, const Rule& r, uint32_t seconds, bool blocked);
    void write_headers(Outcome* out, Caller caller, RouteClass rc, bool dynamic_policy);
    void write_body(Outcome* out);
    uint64_t penalty_ms(const Rule& r) const;

    std::vector<Rule> rules_;
    std::vector<Rate> rates_;
    std::vector<Counts> counts_;
    std::vector<std::pair<std::string, Counts>> retired_counts_;
    std::vector<uint16_t> failed_;                                   // auth-failure rules
    std::array<std::vector<uint16_t>, 2 * kRouteClassCount> table_;  // request rules by caller and route class
    std::array<std::string, 2 * kRouteClassCount> policy_header_;    // their RateLimit-Policy
    std::vector<std::pair<std::string, uint64_t>> reasons_;
    LruMap<Entry> keys_;

    // Scratch, reused by admit().
    std::string ip_key_, id_key_;
    std::vector<Pending> pending_;
    std::vector<Penalized> penalized_;
    std::vector<uint16_t> allowlisted_;
};

}  // namespace ratelimit
