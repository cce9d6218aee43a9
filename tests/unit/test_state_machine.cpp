// The store's state machine (core/store/state_machine.*): KV semantics as
// Consul has them, CAS and txn edge cases, idempotent deduplication by the
// state machine itself, the size cap, key rules, copy-on-write versions and
// snapshot round trips.
#include <malloc.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "store/key.h"
#include "store/state_machine.h"

// cmocka last: its fail() macro clashes with the C++ library.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart::store;

namespace {

Command set(std::string key, std::string value, std::optional<uint64_t> cas = std::nullopt, uint64_t flags = 0) {
    return {{}, KvSet{std::move(key), std::move(value), flags, cas}};
}

Command del(std::string key, bool recurse = false, std::optional<uint64_t> cas = std::nullopt) {
    return {{}, KvDelete{std::move(key), recurse, cas}};
}

TxnOp op(TxnVerb verb, std::string key, std::string value = "", uint64_t index = 0) {
    return {verb, std::move(key), std::move(value), 0, index};
}

Command txn(std::vector<TxnOp> ops) { return {{}, Txn{std::move(ops)}}; }

Command with_key(Command c, std::string key, std::string fingerprint, uint64_t now_ms) {
    c.meta.idempotency_key = std::move(key);
    c.meta.fingerprint = std::move(fingerprint);
    c.meta.leader_ms = now_ms;
    return c;
}

std::string value_of(const StateMachine& sm, std::string_view key) {
    EntryPtr e = sm.get(key);
    return e ? std::string(e->value()) : "<missing>";
}

// ---- KV ------------------------------------------------------------------

void test_set_get_indexes_and_flags(void**) {
    StateMachine sm;
    assert_int_equal(sm.index(), 1);  // never 0, even empty
    assert_int_equal(sm.apply(5, set("a", "1", std::nullopt, 42)).outcome, Outcome::Ok);
    EntryPtr e = sm.get("a");
    assert_non_null(e.get());
    assert_int_equal(e->create_index(), 5);
    assert_int_equal(e->modify_index(), 5);
    assert_int_equal(e->flags(), 42);
    assert_int_equal(sm.apply(7, set("a", "2")).outcome, Outcome::Ok);
    e = sm.get("a");
    assert_int_equal(e->create_index(), 5);  // kept across updates
    assert_int_equal(e->modify_index(), 7);
    assert_int_equal(e->flags(), 0);  // PUT without ?flags= resets them, as in Consul
    assert_int_equal(sm.index(), 7);
    assert_int_equal(sm.applied(), 7);
    assert_int_equal(sm.used_bytes(), 2);
}

void test_cas(void**) {
    StateMachine sm;
    assert_int_equal(sm.apply(2, set("k", "v", 5)).outcome, Outcome::Failed);  // missing key, cas != 0
    assert_null(sm.get("k").get());
    assert_int_equal(sm.apply(3, set("k", "v", 0)).outcome, Outcome::Ok);      // create only
    assert_int_equal(sm.apply(4, set("k", "w", 0)).outcome, Outcome::Failed);  // exists now
    assert_int_equal(sm.apply(5, set("k", "w", 2)).outcome, Outcome::Failed);  // stale index
    assert_string_equal(value_of(sm, "k").c_str(), "v");
    assert_int_equal(sm.index(), 3);  // failed CAS changes nothing
    assert_int_equal(sm.apply(6, set("k", "w", 3)).outcome, Outcome::Ok);
    assert_string_equal(value_of(sm, "k").c_str(), "w");
    assert_int_equal(sm.applied(), 6);
}

void test_delete_and_delete_cas(void**) {
    StateMachine sm;
    sm.apply(1, set("a", "1"));
    sm.apply(2, set("b", "2"));
    assert_int_equal(sm.apply(3, del("a", false, 0)).outcome, Outcome::Failed);  // 0 never deletes an existing key
    assert_int_equal(sm.apply(4, del("a", false, 2)).outcome, Outcome::Failed);
    assert_int_equal(sm.apply(5, del("a", false, 1)).outcome, Outcome::Ok);
    assert_null(sm.get("a").get());
    assert_int_equal(sm.apply(6, del("a", false, 9)).outcome, Outcome::Ok);  // missing counts as deleted (Consul)
    assert_int_equal(sm.index(), 5);                                         // deleting nothing changes nothing
    assert_int_equal(sm.apply(7, del("b")).outcome, Outcome::Ok);
    assert_int_equal(sm.used_bytes(), 0);
}

void test_delete_recurse_with_cas(void**) {
    StateMachine sm;
    sm.apply(1, set("dir/a", "1"));
    sm.apply(2, set("dir/b/c", "2"));
    sm.apply(3, set("dirt", "3"));
    // cas compares with the newest ModifyIndex under the prefix.
    assert_int_equal(sm.apply(4, del("dir/", true, 1)).outcome, Outcome::Failed);
    assert_non_null(sm.get("dir/a").get());
    assert_int_equal(sm.apply(5, del("dir/", true, 2)).outcome, Outcome::Ok);
    assert_null(sm.get("dir/a").get());
    assert_null(sm.get("dir/b/c").get());
    assert_non_null(sm.get("dirt").get());
    assert_int_equal(sm.index(), 5);
    assert_int_equal(sm.apply(6, del("", true)).outcome, Outcome::Ok);  // everything
    assert_true(sm.version()->kv.empty());
}

// ---- txn -----------------------------------------------------------------

void test_txn_commits_all(void**) {
    StateMachine sm;
    sm.apply(1, set("x", "old"));
    Result r = sm.apply(
        2, txn({op(TxnVerb::Set, "a", "1"), op(TxnVerb::Cas, "x", "new", 1), op(TxnVerb::Get, "a"),
                op(TxnVerb::CheckIndex, "x", "", 2), op(TxnVerb::CheckNotExists, "nope"), op(TxnVerb::GetTree, "")}));
    assert_int_equal(r.outcome, Outcome::Ok);
    assert_true(r.errors.empty());
    // set, cas, get, check-index, then get-tree's two entries.
    assert_int_equal(r.results.size(), 6);
    assert_false(r.results[0].with_value);  // set: no value, like Consul
    assert_true(r.results[2].with_value);
    assert_true(r.results[2].entry->value() == "1");  // sees the earlier op
    assert_int_equal(r.results[1].entry->modify_index(), 2);
    assert_string_equal(value_of(sm, "x").c_str(), "new");
    assert_int_equal(sm.index(), 2);
}

void test_txn_all_or_nothing(void**) {
    StateMachine sm;
    sm.apply(1, set("keep", "1"));
    Result r =
        sm.apply(2, txn({op(TxnVerb::Set, "new", "v"), op(TxnVerb::Delete, "keep"), op(TxnVerb::Cas, "keep", "x", 99),
                         op(TxnVerb::Get, "missing"), op(TxnVerb::CheckIndex, "new", "", 7),
                         op(TxnVerb::CheckNotExists, "new"), op(TxnVerb::DeleteCas, "keep", "", 5)}));
    assert_int_equal(r.outcome, Outcome::Failed);
    assert_true(r.results.empty());
    // Every failing op is reported, not only the first (Consul does too).
    assert_int_equal(r.errors.size(), 4);
    assert_int_equal(r.errors[0].op_index, 2);
    assert_string_equal(r.errors[0].what.c_str(), "failed to set key \"keep\", index is stale");
    assert_string_equal(r.errors[1].what.c_str(), "key \"missing\" doesn't exist");
    assert_string_equal(r.errors[2].what.c_str(), "current modify index 2 != 7");
    assert_string_equal(r.errors[3].what.c_str(), "key \"new\" exists");
    // The delete-cas of a key deleted earlier in the txn passes (missing).
    assert_null(sm.get("new").get());
    assert_string_equal(value_of(sm, "keep").c_str(), "1");
    assert_int_equal(sm.index(), 1);
    assert_int_equal(sm.used_bytes(), 5);
}

void test_txn_delete_verbs_and_read_txn(void**) {
    StateMachine sm;
    sm.apply(1, set("t/a", "1"));
    sm.apply(2, set("t/b", "2"));
    sm.apply(3, set("u", "3"));
    Result r = sm.apply(4, txn({op(TxnVerb::DeleteTree, "t/"), op(TxnVerb::DeleteCas, "u", "", 3)}));
    assert_int_equal(r.outcome, Outcome::Ok);
    assert_true(sm.version()->kv.empty());
    sm.apply(5, set("r", "v"));
    Result read = sm.read_txn(Txn{{op(TxnVerb::Get, "r"), op(TxnVerb::CheckIndex, "r", "", 5)}});
    assert_int_equal(read.outcome, Outcome::Ok);
    assert_int_equal(read.results.size(), 2);
    Result bad = sm.read_txn(Txn{{op(TxnVerb::CheckIndex, "r", "", 4)}});
    assert_int_equal(bad.outcome, Outcome::Failed);
    assert_int_equal(bad.errors.size(), 1);
}

void test_txn_invalid_key_fails_deterministically(void**) {
    StateMachine sm;
    Result r = sm.apply(1, txn({op(TxnVerb::Set, "ok", "1"), op(TxnVerb::Set, "a/../b", "2")}));
    assert_int_equal(r.outcome, Outcome::Failed);
    assert_int_equal(r.errors.size(), 1);
    assert_int_equal(r.errors[0].op_index, 1);
    assert_null(sm.get("ok").get());
}

// ---- size cap ------------------------------------------------------------

void test_size_cap(void**) {
    StateLimits limits;
    limits.max_bytes = 100;
    StateMachine sm(limits);
    assert_int_equal(sm.apply(1, set("a", std::string(60, 'x'))).outcome, Outcome::Ok);  // 61 bytes
    Result full = sm.apply(2, set("b", std::string(40, 'x')));                           // 61 + 41 > 100
    assert_int_equal(full.outcome, Outcome::StoreFull);
    assert_non_null(strstr(full.error.c_str(), "store is full"));
    assert_null(sm.get("b").get());
    assert_int_equal(sm.used_bytes(), 61);
    assert_int_equal(sm.apply(3, set("b", std::string(38, 'x'))).outcome, Outcome::Ok);  // exactly 100
    // A txn over the cap rolls back whole.
    Result t = sm.apply(4, txn({op(TxnVerb::Delete, "b"), op(TxnVerb::Set, "c", std::string(50, 'x'))}));
    assert_int_equal(t.outcome, Outcome::StoreFull);
    assert_non_null(sm.get("b").get());
    // Shrinking writes and deletes always pass, even at the cap.
    assert_int_equal(sm.apply(5, set("a", "small")).outcome, Outcome::Ok);
    assert_int_equal(sm.apply(6, del("a")).outcome, Outcome::Ok);
    assert_int_equal(sm.used_bytes(), 39);
}

// ---- idempotency -----------------------------------------------------------

void test_idempotent_replay(void**) {
    StateMachine sm;
    uint64_t now = 1700000000000ull;
    Result first = sm.apply(1, with_key(set("k", "v1"), "token:a\nkey-1", "fp1", now));
    assert_int_equal(first.outcome, Outcome::Ok);
    assert_false(first.replayed);
    sm.apply(2, set("k", "other"));  // someone else writes in between
    Result again = sm.apply(3, with_key(set("k", "v1"), "token:a\nkey-1", "fp1", now + 1000));
    assert_int_equal(again.outcome, Outcome::Ok);
    assert_true(again.replayed);
    assert_string_equal(value_of(sm, "k").c_str(), "other");  // not applied twice
    assert_int_equal(sm.index(), 2);
    // The same key with another request: refused.
    Result reused = sm.apply(4, with_key(set("k", "v2"), "token:a\nkey-1", "fp2", now + 2000));
    assert_int_equal(reused.outcome, Outcome::KeyReused);
    assert_string_equal(value_of(sm, "k").c_str(), "other");
    // The same key under another identity is another record.
    assert_false(sm.apply(5, with_key(set("k", "v3"), "token:b\nkey-1", "fp1", now)).replayed);
    assert_string_equal(value_of(sm, "k").c_str(), "v3");
}

void test_idempotent_failed_cas_and_txn_replay(void**) {
    StateMachine sm;
    uint64_t now = 1000;
    sm.apply(1, set("k", "v"));
    Result cas = sm.apply(2, with_key(set("k", "x", 0), "s\nc", "f", now));
    assert_int_equal(cas.outcome, Outcome::Failed);
    Result cas_again = sm.apply(3, with_key(set("k", "x", 0), "s\nc", "f", now));
    assert_int_equal(cas_again.outcome, Outcome::Failed);
    assert_true(cas_again.replayed);
    Result t = sm.apply(4, with_key(txn({op(TxnVerb::Set, "n", "1"), op(TxnVerb::Get, "k")}), "s\nt", "g", now));
    sm.apply(5, set("k", "changed"));
    Result t2 = sm.apply(6, with_key(txn({op(TxnVerb::Set, "n", "1"), op(TxnVerb::Get, "k")}), "s\nt", "g", now));
    assert_true(t2.replayed);
    assert_int_equal(t2.results.size(), 2);
    assert_true(t2.results[1].entry->value() == "v");  // the first answer, as it was
    assert_int_equal(t2.results[0].entry->modify_index(), t.results[0].entry->modify_index());
}

void test_idempotency_expiry_by_leader_clock(void**) {
    StateMachine sm;
    uint64_t ttl = sm.limits().dedup.ttl_ms;
    sm.apply(1, with_key(set("k", "1"), "s\nx", "f", 1000));
    sm.apply(2, set("k", "2"));
    // Just before expiry: still a duplicate.
    assert_true(sm.apply(3, with_key(set("k", "1"), "s\nx", "f", 1000 + ttl - 1)).replayed);
    // At expiry (by the leader's clock in the entry): applied again.
    Result late = sm.apply(4, with_key(set("k", "1"), "s\nx", "f", 1000 + ttl));
    assert_false(late.replayed);
    assert_string_equal(value_of(sm, "k").c_str(), "1");
    assert_int_equal(sm.dedup_records(), 1);
}

void test_idempotency_store_full_not_remembered_and_eviction(void**) {
    StateLimits limits;
    limits.max_bytes = 10;
    limits.dedup.max_records = 3;
    StateMachine sm(limits);
    Result full = sm.apply(1, with_key(set("k", std::string(20, 'x')), "s\nbig", "f", 1));
    assert_int_equal(full.outcome, Outcome::StoreFull);
    assert_int_equal(sm.dedup_records(), 0);  // a retry once space is free applies
    for (uint64_t i = 0; i < 5; i++) sm.apply(2 + i, with_key(set("k", "v"), "s\n" + std::to_string(i), "f", 10 + i));
    assert_int_equal(sm.dedup_records(), 3);  // the oldest were evicted
    assert_false(sm.apply(9, with_key(set("k", "v"), "s\n0", "f", 20)).replayed);
    assert_true(sm.apply(10, with_key(set("k", "v"), "s\n4", "f", 20)).replayed);
}

// ---- keys ------------------------------------------------------------------

void test_key_rules(void**) {
    assert_true(check_key("a/b/c", false).empty());
    assert_true(check_key("caf\xc3\xa9/\xe2\x82\xac", false).empty());
    assert_true(check_key("a..b/.../c.", false).empty());
    assert_true(check_key(std::string(512, 'k'), false).empty());
    assert_false(check_key(std::string(513, 'k'), false).empty());
    assert_false(check_key("", false).empty());
    assert_true(check_key("", true).empty());
    assert_false(check_key(std::string("a\0b", 3), false).empty());
    assert_false(check_key("..", false).empty());
    assert_false(check_key("a/../b", false).empty());
    assert_false(check_key("a/..", false).empty());
    assert_false(check_key("../a", false).empty());
    assert_false(check_key("\xff", false).empty());              // not UTF-8
    assert_false(check_key("\xc0\xaf", false).empty());          // overlong '/'
    assert_false(check_key("\xed\xa0\x80", false).empty());      // surrogate
    assert_false(check_key("\xf4\x90\x80\x80", false).empty());  // past U+10FFFF
    assert_false(check_key("\xe2\x82", false).empty());          // truncated
    StateMachine sm;
    Result r = sm.apply(1, set("a/../etc", "x"));
    assert_int_equal(r.outcome, Outcome::Invalid);
    assert_true(sm.version()->kv.empty());
}

// ---- versions and snapshots --------------------------------------------------

void test_versions_are_immutable(void**) {
    StateMachine sm;
    sm.apply(1, set("a", "1"));
    Version v = sm.version();
    sm.apply(2, set("a", "2"));
    sm.apply(3, set("b", "3"));
    assert_true(v->kv.at("a")->value() == "1");
    assert_int_equal(v->kv.size(), 1);
    assert_int_equal(v->applied, 1);
    assert_string_equal(value_of(sm, "a").c_str(), "2");
}

// Pinned versions (a snapshot, a reader) through every kind of write, the
// idempotency table included: each still serialises to exactly the bytes
// it had when pinned, and the live state matches a machine that never had
// a pin (the persistent maps copy paths, not the maps, and share the rest).
void test_pinned_versions_survive_every_write(void**) {
    StateMachine sm;
    StateMachine unpinned;
    uint64_t now = 1700000000000ull;
    std::vector<std::pair<Version, std::string>> pins;
    auto both = [&](uint64_t index, const Command& c) {
        sm.apply(index, c);
        unpinned.apply(index, c);
    };
    for (uint64_t i = 1; i <= 600; i++) {
        std::string key = "dir" + std::to_string(i % 7) + "/k" + std::to_string(i % 97);
        if (i % 11 == 0) {
            both(i, del("dir" + std::to_string(i % 7) + "/", true));
        } else if (i % 5 == 0) {
            both(i, del(key));
        } else if (i % 3 == 0) {
            both(i, with_key(set(key, "v" + std::to_string(i)), "token:a\nkey-" + std::to_string(i % 40),
                             "fp" + std::to_string(i), now + i * 60000));
        } else {
            both(i, set(key, std::string(i % 50, 'x')));
        }
        if (i % 50 == 0) pins.emplace_back(sm.version(), StateMachine::serialize(*sm.version()));
    }
    for (const auto& [v, bytes] : pins) assert_true(StateMachine::serialize(*v) == bytes);
    assert_true(StateMachine::serialize(*sm.version()) == StateMachine::serialize(*unpinned.version()));
    assert_int_equal(sm.used_bytes(), unpinned.used_bytes());
    assert_int_equal(sm.dedup_records(), unpinned.dedup_records());
    assert_true(sm.dedup_records() > 0);
}

void test_snapshot_round_trip(void**) {
    StateMachine sm;
    sm.apply(1, set("a", std::string("\0\xff", 2), std::nullopt, 7));
    sm.apply(2, set("b/c", "v"));
    sm.apply(3, with_key(txn({op(TxnVerb::Set, "t", "1"), op(TxnVerb::Get, "a"), op(TxnVerb::Cas, "b/c", "w", 9)}),
                         "token:x\nk", "fp", 500));
    sm.apply(4, with_key(set("c", "1"), "token:x\nj", "fp2", 600));
    sm.apply(5, del("zzz"));
    std::string bytes = StateMachine::serialize(*sm.version());

    StateMachine copy;
    std::string error;
    assert_true(copy.restore(5, bytes, &error));
    assert_int_equal(copy.applied(), 5);
    assert_int_equal(copy.index(), sm.index());
    assert_int_equal(copy.used_bytes(), sm.used_bytes());
    assert_int_equal(copy.dedup_records(), 2);
    EntryPtr a = copy.get("a");
    assert_int_equal(a->value().size(), 2);
    assert_int_equal(a->flags(), 7);
    assert_int_equal(a->create_index(), 1);
    // Serialising the restored state gives the same bytes.
    assert_true(StateMachine::serialize(*copy.version()) == bytes);
    // The idempotency records came along: a retry is still a duplicate,
    // with the stored (failed) txn answer.
    Result again = copy.apply(
        6, with_key(txn({op(TxnVerb::Set, "t", "1"), op(TxnVerb::Get, "a"), op(TxnVerb::Cas, "b/c", "w", 9)}),
                    "token:x\nk", "fp", 700));
    assert_true(again.replayed);
    assert_int_equal(again.outcome, Outcome::Failed);
    assert_int_equal(again.errors.size(), 1);
}

void test_snapshot_garbage_is_refused(void**) {
    StateMachine sm;
    sm.apply(1, set("a", "1"));
    sm.apply(2, with_key(set("b", "2"), "s\nk", "f", 1));
    std::string bytes = StateMachine::serialize(*sm.version());
    StateMachine target;
    target.apply(1, set("keep", "me"));
    std::string error;
    // Every truncation and a trailing byte fail, and leave the state alone.
    for (size_t n = 0; n < bytes.size(); n++) {
        assert_false(target.restore(9, bytes.substr(0, n), &error));
    }
    assert_false(target.restore(9, bytes + "x", &error));
    assert_false(target.restore(9, "not a snapshot", &error));
    assert_string_equal(value_of(target, "keep").c_str(), "me");
    assert_true(target.restore(9, bytes, &error));
    assert_string_equal(value_of(target, "a").c_str(), "1");
    assert_null(target.get("keep").get());
}

void test_undecodable_entry_is_a_result(void**) {
    StateMachine sm;
    Result r = sm.apply_bytes(3, "\x63garbage");
    assert_int_equal(r.outcome, Outcome::Invalid);
    assert_int_equal(sm.applied(), 3);
    std::string good = encode(set("k", "v"));
    assert_int_equal(sm.apply_bytes(4, good).outcome, Outcome::Ok);
    assert_string_equal(value_of(sm, "k").c_str(), "v");
}

}  // namespace

// An entry is one block (metadata + value), shared by counted references:
// copies see the same bytes, and the last reference frees the block,
// whichever thread drops it.
void test_entry_is_one_shared_block(void**) {
    std::string value(256, 'v');
    value[0] = '\0';  // values are bytes, NUL included
    EntryPtr e = Entry::make(value, 9, 3, 4);
    assert_true(e->value() == value);
    assert_int_equal(e->flags(), 9);
    assert_int_equal(e->create_index(), 3);
    assert_int_equal(e->modify_index(), 4);
    EntryPtr copy = e;  // NOLINT(performance-unnecessary-copy-initialization): the copy is the test
    assert_true(copy == e);
    assert_ptr_equal(copy->value().data(), e->value().data());
    assert_true(Entry::make("", 0, 1, 1)->value().empty());
    EntryPtr none;
    assert_true(none == nullptr);
    assert_false(static_cast<bool>(none));

    // A thread's first run allocates its own malloc state: do that first.
    std::thread([] { Entry::make("warm-up", 0, 1, 1); }).join();
    size_t before = mallinfo2().uordblks;
    {
        std::vector<EntryPtr> held;
        held.reserve(1000);
        for (int i = 0; i < 1000; i++) held.push_back(Entry::make(value, 0, 1, 1));
        // Half the references dropped on another thread, half here.
        std::vector<EntryPtr> theirs(held.begin(), held.end());
        std::thread t([&theirs] { theirs.clear(); });
        held.clear();
        t.join();
    }
    // All 1000 blocks (288 KB) are back; glibc's per-thread caches keep a
    // few freed chunks counted as in use (7 per size), hence the slack.
    size_t after = mallinfo2().uordblks;
    assert_true(after < before + size_t{16} * 1024);
}

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_is_one_shared_block),
        cmocka_unit_test(test_set_get_indexes_and_flags),
        cmocka_unit_test(test_cas),
        cmocka_unit_test(test_delete_and_delete_cas),
        cmocka_unit_test(test_delete_recurse_with_cas),
        cmocka_unit_test(test_txn_commits_all),
        cmocka_unit_test(test_txn_all_or_nothing),
        cmocka_unit_test(test_txn_delete_verbs_and_read_txn),
        cmocka_unit_test(test_txn_invalid_key_fails_deterministically),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_idempotent_replay),
        cmocka_unit_test(test_idempotent_failed_cas_and_txn_replay),
        cmocka_unit_test(test_idempotency_expiry_by_leader_clock),
        cmocka_unit_test(test_idempotency_store_full_not_remembered_and_eviction),
        cmocka_unit_test(test_key_rules),
        cmocka_unit_test(test_versions_are_immutable),
        cmocka_unit_test(test_pinned_versions_survive_every_write),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_snapshot_garbage_is_refused),
        cmocka_unit_test(test_undecodable_entry_is_a_result),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
