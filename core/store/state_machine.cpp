#include "store/state_machine.h"

#include <type_traits>

#include "store/key.h"
#include "store/snapshot_file.h"

namespace rampart::store {
namespace {

std::string quoted(std::string_view key) { return "\"" + std::string(key) + "\""; }

uint64_t entry_cost(std::string_view key, const Entry& e) { return key.size() + e.value().size(); }

// Changes to the KV map with an undo log, so a txn (or a write over the
// size cap) is all or nothing.
class Mutation {
public:
    Mutation(State& s, uint64_t index) : s_(s), index_(index), used_before_(s.used_bytes) {}

    EntryPtr find(std::string_view key) const {
        const EntryPtr* e = s_.kv.get(key);
        return e ? *e : nullptr;
    }

    EntryPtr put(const std::string& key, std::string_view value, uint64_t flags) {
        EntryPtr old = find(key);
        EntryPtr e = Entry::make(value, flags, old ? old->create_index() : index_, index_);
        s_.used_bytes += entry_cost(key, *e);
        if (old) s_.used_bytes -= entry_cost(key, *old);
        undo_.push_back({key, old});
        s_.kv.insert_or_assign(key, e);
        return e;
    }

    void erase(std::string_view key) {
        const EntryPtr* e = s_.kv.get(key);
        if (!e) return;
        s_.used_bytes -= entry_cost(key, **e);
        undo_.push_back({std::string(key), *e});
        s_.kv.erase(key);
    }

    // The undo log names the keys first: erasing while iterating would
    // invalidate the persistent map's iterator.
    void erase_prefix(std::string_view prefix) {
        size_t first = undo_.size();
        for_each_prefix(s_.kv, prefix, [&](const std::string& k, const EntryPtr& e) {
            s_.used_bytes -= entry_cost(k, *e);
            undo_.push_back({k, e});
        });
        for (size_t i = first; i < undo_.size(); i++) s_.kv.erase(undo_[i].key);
    }

    // Over the cap and grown: shrinking writes and deletes always pass, so
    // a full store can be cleaned up.
    // The services catalog counts toward the cap too.
    bool over_cap(uint64_t max_bytes) const {
        return s_.used_bytes + s_.catalog.bytes > max_bytes && s_.used_bytes > used_before_;
    }

    void rollback() {
        for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
            if (it->old) {
                s_.kv.insert_or_assign(it->key, it->old);
            } else {
                s_.kv.erase(it->key);
            }
        }
        undo_.clear();
        s_.used_bytes = used_before_;
    }

    void commit() {
        if (!undo_.empty()) s_.kv_index = index_;
        undo_.clear();
    }

private:
    struct Undo {
        std::string key;
        EntryPtr old;  // null: the key did not exist
    };
    State& s_;
    uint64_t index_;
    uint64_t used_before_;
    std::vector<Undo> undo_;
};

Result store_full(uint64_t max_bytes) {
    return Result::failure(Outcome::StoreFull,
                           "the store is full (cluster.max_store_bytes = " + std::to_string(max_bytes) +
                               "): delete keys or raise the limit; reads still work");
}

// Consul's kvsSetCASTxn: cas 0 creates only; otherwise the key must exist
// with exactly that ModifyIndex.
bool cas_holds(const EntryPtr& cur, uint64_t cas) {
    return cas == 0 ? cur == nullptr : cur && cur->modify_index() == cas;
}

// Consul's kvsDeleteCASTxn: a missing key counts as deleted.
bool delete_cas_holds(const EntryPtr& cur, uint64_t cas) { return cur == nullptr || cur->modify_index() == cas; }

bool prefix_verb(TxnVerb v) { return v == TxnVerb::GetTree || v == TxnVerb::DeleteTree; }

// The read verbs, shared by read-only txns and write txns. Returns the
// error text, empty when the operation held.
std::string read_op(const KvMap& kv, const TxnOp& op, std::vector<TxnResult>& results) {
    const EntryPtr* found = kv.get(op.key);
    EntryPtr cur = found ? *found : nullptr;
    switch (op.verb) {
        case TxnVerb::Get:
            if (!cur) return "key " + quoted(op.key) + " doesn't exist";
            results.push_back({op.key, cur, true});
            return {};
        case TxnVerb::GetTree:
            for_each_prefix(kv, op.key, [&](const std::string& k, const EntryPtr& e) {
                results.push_back({k, e, true});
            });
            return {};
        case TxnVerb::CheckIndex:
            if (!cur) return "key " + quoted(op.key) + " doesn't exist";
            if (cur->modify_index() != op.index) {
                return "current modify index " + std::to_string(cur->modify_index()) +
                       " != " + std::to_string(op.index);
            }
            results.push_back({op.key, cur, false});
            return {};
        case TxnVerb::CheckNotExists:
            if (cur) return "key " + quoted(op.key) + " exists";
            return {};
        default: return "not a read operation";
    }
}

std::string write_op(Mutation& m, const KvMap& kv, const TxnOp& op, std::vector<TxnResult>& results) {
    switch (op.verb) {
        case TxnVerb::Set: results.push_back({op.key, m.put(op.key, op.value, op.flags), false}); return {};
        case TxnVerb::Cas:
            if (!cas_holds(m.find(op.key), op.index)) return "failed to set key " + quoted(op.key) + ", index is stale";
            results.push_back({op.key, m.put(op.key, op.value, op.flags), false});
            return {};
        case TxnVerb::Delete: m.erase(op.key); return {};
        case TxnVerb::DeleteTree: m.erase_prefix(op.key); return {};
        case TxnVerb::DeleteCas:
            if (!delete_cas_holds(m.find(op.key), op.index)) {
                return "failed to delete key " + quoted(op.key) + ", index is stale";
            }
            m.erase(op.key);
            return {};
        default: return read_op(kv, op, results);
    }
}

// Every op runs (Consul reports every failing op, not just the first);
// any error rolls the whole txn back.
Result run_txn(State& s, uint64_t index, const Txn& txn, uint64_t max_bytes) {
    Mutation m(s, index);
    Result r;
    for (size_t i = 0; i < txn.ops.size(); i++) {
        const TxnOp& op = txn.ops[i];
        std::string err = check_key(op.key, prefix_verb(op.verb));
        if (err.empty()) err = write_op(m, s.kv, op, r.results);
        if (!err.empty()) r.errors.push_back({static_cast<uint32_t>(i), std::move(err)});
    }
    if (!r.errors.empty()) {
        m.rollback();
        r.outcome = Outcome::Failed;
        r.results.clear();
        return r;
    }
    if (m.over_cap(max_bytes)) {
        m.rollback();
        return store_full(max_bytes);
    }
    m.commit();
    return r;
}

Result run_set(State& s, uint64_t index, const KvSet& c, uint64_t max_bytes) {
    if (std::string err = check_key(c.key, false); !err.empty()) return Result::failure(Outcome::Invalid, err);
    Mutation m(s, index);
    if (c.cas && !cas_holds(m.find(c.key), *c.cas)) return Result::failure(Outcome::Failed, "");
    m.put(c.key, c.value, c.flags);
    if (m.over_cap(max_bytes)) {
        m.rollback();
        return store_full(max_bytes);
    }
    m.commit();
    return {};
}

// The newest ModifyIndex under a prefix (0 when nothing is there): what
// DELETE ?recurse&cas= compares against.
uint64_t newest_index(const KvMap& kv, std::string_view prefix) {
    uint64_t newest = 0;
    for_each_prefix(kv, prefix, [&](const std::string&, const EntryPtr& e) {
        if (e->modify_index() > newest) newest = e->modify_index();
    });
    return newest;
}

Result run_delete(State& s, uint64_t index, const KvDelete& c) {
    if (std::string err = check_key(c.key, c.recurse); !err.empty()) return Result::failure(Outcome::Invalid, err);
    Mutation m(s, index);
    if (c.recurse) {
        if (c.cas && newest_index(s.kv, c.key) != *c.cas) return Result::failure(Outcome::Failed, "");
        m.erase_prefix(c.key);
    } else {
        if (c.cas && !delete_cas_holds(m.find(c.key), *c.cas)) return Result::failure(Outcome::Failed, "");
        m.erase(c.key);
    }
    m.commit();
    return {};
}

}  // namespace

bool is_read_verb(TxnVerb verb) {
    return verb == TxnVerb::Get || verb == TxnVerb::GetTree || verb == TxnVerb::CheckIndex ||
           verb == TxnVerb::CheckNotExists;
}

StateMachine::StateMachine(StateLimits limits) : limits_(limits), state_(std::make_shared<State>()) {
    state_->dedup = DedupTable(limits_.dedup);
}

// Copy on write: only while a reader or snapshot still holds the version.
// The copy is O(1) for the KV map and the dedup table (persistent maps
// share their nodes) plus the small catalog, token and member tables.
State& StateMachine::mutable_state() {
    if (state_.use_count() > 1) state_ = std::make_shared<State>(*state_);
    return *state_;
}

EntryPtr StateMachine::get(std::string_view key) const {
    const EntryPtr* e = state_->kv.get(key);
    return e ? *e : nullptr;
}

Result StateMachine::apply_bytes(uint64_t index, std::string_view bytes) {
    if (is_restore_record(bytes)) return apply_restore(index, bytes);
    if (cluster::is_member_info_record(bytes)) return apply_member_info(index, bytes);
    if (is_membership_record(bytes)) return apply_membership(index, bytes);
    DecodeResult d = decode(bytes);
    if (d.ok()) return apply(index, *d.command);
    mutable_state().applied = index;
    return Result::failure(Outcome::Invalid, "undecodable command: " + d.error);
}

std::vector<Result> StateMachine::apply_entry(uint64_t index, std::string_view bytes) {
    if (is_batch_record(bytes)) return apply_batch(index, bytes);
    std::vector<Result> out;
    out.push_back(apply_bytes(index, bytes));
    return out;
}

// Group commit: the sub-commands share the entry's index, as a txn's ops
// do, and each keeps its own outcome (and its own idempotency record). A
// malformed batch applies nothing and is one Invalid result.
std::vector<Result> StateMachine::apply_batch(uint64_t index, std::string_view bytes) {
    std::vector<std::string_view> records;
    std::string error;
    std::vector<Result> out;
    if (!decode_batch(bytes, &records, &error)) {
        mutable_state().applied = index;
        out.push_back(Result::failure(Outcome::Invalid, "undecodable batch: " + error));
        return out;
    }
    out.reserve(records.size());
    for (std::string_view record : records) out.push_back(apply_bytes(index, record));
    return out;
}

Result StateMachine::apply_member_info(uint64_t index, std::string_view record) {
    cluster::MemberInfo info;
    std::string error;
    State& s = mutable_state();
    s.applied = index;
    if (!cluster::decode_member_info(record, &info, &error)) return Result::failure(Outcome::Invalid, error);
    std::string node_id = info.node_id;
    s.members.insert_or_assign(std::move(node_id), std::move(info));
    return Result{};
}

Result StateMachine::apply(uint64_t index, const Command& cmd) {
    State& s = mutable_state();
    s.applied = index;
    // Every entry carries the leader's clock: TTL checks lapse by it.
    catalog_advance_clock(s.catalog, index, cmd.meta.leader_ms);
    if (cmd.meta.idempotency_key.empty()) return apply_body(s, index, cmd);
    return apply_dedup(s, index, cmd);
}

// A key seen before within its lifetime: the same request gets the stored
// outcome and changes nothing; another request under the key is refused.
// Only outcomes that applied (or deterministically failed a CAS) are kept:
// a write refused for space may be retried once space is free.
Result StateMachine::apply_dedup(State& s, uint64_t index, const Command& cmd) {
    s.dedup.expire(cmd.meta.leader_ms);
    if (const DedupRecord* rec = s.dedup.find(cmd.meta.idempotency_key)) {
        if (rec->fingerprint != cmd.meta.fingerprint) {
            return Result::failure(Outcome::KeyReused, "Idempotency-Key was already used with a different request");
        }
        Result r = *rec->outcome;
        r.replayed = true;
        return r;
    }
    Result r = apply_body(s, index, cmd);
    if (r.outcome == Outcome::Ok || r.outcome == Outcome::Failed) {
        s.dedup.remember(cmd.meta.idempotency_key, cmd.meta.fingerprint, cmd.meta.leader_ms,
                         std::make_shared<const Result>(r));
    }
    return r;
}

Result StateMachine::apply_body(State& s, uint64_t index, const Command& cmd) {
    return std::visit(
        [&](const auto& body) -> Result {
            using T = std::decay_t<decltype(body)>;
            if constexpr (std::is_same_v<T, KvSet>) {
                return run_set(s, index, body, limits_.max_bytes);
            } else if constexpr (std::is_same_v<T, KvDelete>) {
                return run_delete(s, index, body);
            } else if constexpr (std::is_same_v<T, Txn>) {
                return run_txn(s, index, body, limits_.max_bytes);
            } else if constexpr (std::is_same_v<T, Noop>) {
                return {};
            } else if constexpr (std::is_same_v<T, ServiceRegister>) {
                return catalog_register(s.catalog, index, body, s.used_bytes, limits_.max_bytes);
            } else if constexpr (std::is_same_v<T, ServiceDeregister>) {
                return catalog_deregister(s.catalog, index, body);
            } else if constexpr (std::is_same_v<T, CheckPass>) {
                return catalog_update_check(s.catalog, index, body);
            } else if constexpr (std::is_same_v<T, TokenCreate>) {
                return s.tokens.create(index, cmd.meta.leader_ms, body);
            } else if constexpr (std::is_same_v<T, TokenRevoke>) {
                return s.tokens.revoke(body);
            } else {
                return Result::failure(Outcome::Invalid,
                                       std::string(type_name(cmd.type())) + " is not supported by this version yet");
            }
        },
        cmd.body);
}

// Membership records (store/membership_record.h) have their own codec.
Result StateMachine::apply_membership(uint64_t index, std::string_view bytes) {
    State& s = mutable_state();
    s.applied = index;
    std::string error;
    std::optional<MembershipRecord> record = decode_membership(bytes, &error);
    if (!record) return Result::failure(Outcome::Invalid, "undecodable membership record: " + error);
    return s.membership.apply(index, *record);
}

Result StateMachine::read_txn(const Txn& txn) const {
    Result r;
    for (size_t i = 0; i < txn.ops.size(); i++) {
        const TxnOp& op = txn.ops[i];
        std::string err = check_key(op.key, prefix_verb(op.verb));
        if (err.empty()) err = read_op(state_->kv, op, r.results);
        if (!err.empty()) r.errors.push_back({static_cast<uint32_t>(i), std::move(err)});
    }
    if (!r.errors.empty()) {
        r.outcome = Outcome::Failed;
        r.results.clear();
    }
    return r;
}

}  // namespace rampart::store
