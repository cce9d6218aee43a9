// The replicated state machine (issue 5): applies decoded commands at their
// Raft index. Apply is deterministic and never fails: a CAS that does not
// hold, a check that fails, a full store or a reused idempotency key is a
// Result, identical on every node.
//
// The state is copy-on-write: readers and snapshots take an immutable
// Version (shared_ptr, O(1)). The KV map and the dedup table are persistent
// maps (util/persistent_map.h): while a version is held, the next write
// copies the State's small fields and only the O(log n) map nodes on the
// path to the key it changes, never the whole map; with no version held,
// writes change the map in place.
// Tokens apply through store/tokens.h, services and checks through
// store/services.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/member_info.h"
#include "store/command.h"
#include "store/dedup.h"
#include "store/membership_state.h"
#include "store/result.h"
#include "store/services.h"
#include "store/tokens.h"
#include "util/persistent_map.h"

namespace rampart::store {

using KvMap = util::PersistentMap<EntryPtr>;

struct StateLimits {
    // Sum of key and value bytes. Must be the same on every node: it
    // decides outcomes (cluster.max_store_bytes).
    uint64_t max_bytes = uint64_t{64} * 1024 * 1024;
    DedupLimits dedup;
};

// One immutable state: what reads and snapshots see.
struct State {
    KvMap kv;
    DedupTable dedup;
    uint64_t kv_index = 0;         // last index that changed the KV data
    uint64_t applied = 0;          // last index applied
    uint64_t used_bytes = 0;       // sum of key + value sizes
    Catalog catalog;               // services and TTL checks (store/services.h)
    TokenTable tokens;             // API tokens (store/tokens.h)
    cluster::MemberTable members;  // what each member advertises (cluster/member_info.h)
    MembershipState membership;    // join tokens and joined/left members (store/membership_state.h)
};
using Version = std::shared_ptr<const State>;

class StateMachine {
public:
    explicit StateMachine(StateLimits limits = {});

    Result apply(uint64_t index, const Command& cmd);
    // The log's bytes: an entry that does not decode is an Invalid result
    // (deterministic: every node fails the same bytes the same way).
    Result apply_bytes(uint64_t index, std::string_view bytes);
    // One Raft entry: a batch record (group commit, store/command.h) gives
    // one Result per sub-command, applied in order at the same index; any
    // other record gives apply_bytes()'s one Result.
    std::vector<Result> apply_entry(uint64_t index, std::string_view bytes);

    // Reads (local state; consistency is the caller's business).
    Version version() const { return state_; }
    EntryPtr get(std::string_view key) const;
    // The index reads report and blocking reads wait on; at least 1, so a
    // client's ?index=0 never blocks and X-Consul-Index is never 0.
    uint64_t index() const { return state_->kv_index > 0 ? state_->kv_index : 1; }
    uint64_t applied() const { return state_->applied; }
    // The index catalog and health reads report and wait on (at least 1).
    uint64_t catalog_index() const { return state_->catalog.index > 0 ? state_->catalog.index : 1; }
    uint64_t used_bytes() const { return state_->used_bytes; }
    size_t dedup_records() const { return state_->dedup.size(); }
    const StateLimits& limits() const { return limits_; }
    // Valid until the next apply or restore.
    const TokenTable& tokens() const { return state_->tokens; }
    const MembershipState& membership() const { return state_->membership; }
    // A txn of only get, get-tree, check-index and check-not-exists, run
    // against the local state without the log (Consul does the same).
    Result read_txn(const Txn& txn) const;

    // Snapshots: serialise a version (pure: could run on another thread),
    // and replace the whole state from a payload.
    static std::string serialize(const State& state);
    bool restore(uint64_t index, std::string_view payload, std::string* error);

private:
    // A restore record (store/snapshot_file.h): replace the whole state with
    // the snapshot's, re-based at `index` (snapshot_file.cpp).
    Result apply_restore(uint64_t index, std::string_view record);
    // A member's announcement replaces its previous one.
    Result apply_member_info(uint64_t index, std::string_view record);
    Result apply_membership(uint64_t index, std::string_view bytes);
    std::vector<Result> apply_batch(uint64_t index, std::string_view bytes);
    State& mutable_state();
    Result apply_body(State& s, uint64_t index, const Command& cmd);
    Result apply_dedup(State& s, uint64_t index, const Command& cmd);

    StateLimits limits_;
    std::shared_ptr<State> state_;
};

// Every entry whose key starts with `prefix`, in key order.
template <class F>
void for_each_prefix(const KvMap& kv, std::string_view prefix, F&& f) {
    for (auto it = kv.lower_bound(prefix); it != kv.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
        f(it->first, it->second);
    }
}

// Txn verbs that only read.
bool is_read_verb(TxnVerb verb);

}  // namespace rampart::store
