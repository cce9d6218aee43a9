// Group commit in the state machine (StateMachine::apply_entry with a batch
// record, store/command.h): the sub-commands apply in order at the entry's
// one index, each with its own Result (a failed CAS fails only itself), each
// with its own idempotency record; a malformed or nested batch applies
// nothing; two nodes applying the same entries end in the same state.
#include <string>
#include <vector>

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

std::string set(std::string key, std::string value, std::optional<uint64_t> cas = std::nullopt, std::string idem = "") {
    Command c{{}, KvSet{std::move(key), std::move(value), 0, cas}};
    c.meta.leader_ms = 1700000000000ull;
    if (!idem.empty()) {
        c.meta.idempotency_key = std::move(idem);
        c.meta.fingerprint = "fp";
    }
    return encode(c);
}

std::string batch(const std::vector<std::string>& records) {
    return encode_batch(std::vector<std::string_view>(records.begin(), records.end()));
}

void test_sub_commands_share_the_index_with_their_own_results(void**) {
    StateMachine sm;
    assert_int_equal(sm.apply_bytes(3, set("b", "old")).outcome, Outcome::Ok);
    std::vector<Result> rs = sm.apply_entry(7, batch({
                                                   set("a", "1"), set("c", "x", 0),  // create-only: holds
                                                   set("c", "y", 0),                 // create-only again: fails
                                                   set("b", "new", 3),               // CAS on b's index: holds
                                                   set("b", "no", 3),                // b is now at 7: fails
                                                   set("a", "2"),                    // a second write of a key
                                               }));
    assert_int_equal(rs.size(), 6);
    const Outcome want[] = {Outcome::Ok, Outcome::Ok, Outcome::Failed, Outcome::Ok, Outcome::Failed, Outcome::Ok};
    for (size_t i = 0; i < rs.size(); i++) assert_int_equal(rs[i].outcome, want[i]);
    assert_int_equal(sm.applied(), 7);
    assert_int_equal(sm.index(), 7);
    assert_true(sm.get("a")->value() == "2");
    assert_int_equal(sm.get("a")->create_index(), 7);
    assert_int_equal(sm.get("a")->modify_index(), 7);
    assert_true(sm.get("c")->value() == "x");
    assert_true(sm.get("b")->value() == "new");
    assert_int_equal(sm.get("b")->create_index(), 3);
    assert_int_equal(sm.get("b")->modify_index(), 7);
}

void test_idempotency_stays_per_sub_command(void**) {
    StateMachine sm;
    std::vector<Result> rs = sm.apply_entry(
        4, batch({set("k", "1", std::nullopt, "client\nkey-1"), set("k", "1", std::nullopt, "client\nkey-1"),
                  set("j", "1", std::nullopt, "client\nkey-2")}));
    assert_int_equal(rs.size(), 3);
    assert_false(rs[0].replayed);
    assert_true(rs[1].replayed);  // the retry in the same entry gets the first answer
    assert_int_equal(rs[1].outcome, Outcome::Ok);
    assert_false(rs[2].replayed);
    assert_int_equal(sm.dedup_records(), 2);
    // And in a later entry, alone.
    Result again = sm.apply_entry(5, set("k", "1", std::nullopt, "client\nkey-1")).front();
    assert_true(again.replayed);
    assert_int_equal(sm.get("k")->modify_index(), 4);
}

void test_a_bad_sub_record_fails_only_itself(void**) {
    StateMachine sm;
    std::string bad = set("z", "v");
    bad[1] = 9;                                // a version of kv_set no build has
    std::string bad_key = set("a/../b", "v");  // a key the state machine refuses
    std::vector<Result> rs = sm.apply_entry(2, batch({set("a", "1"), bad, bad_key, set("b", "2")}));
    assert_int_equal(rs.size(), 4);
    assert_int_equal(rs[0].outcome, Outcome::Ok);
    assert_int_equal(rs[1].outcome, Outcome::Invalid);
    assert_int_equal(rs[2].outcome, Outcome::Invalid);
    assert_int_equal(rs[3].outcome, Outcome::Ok);
    assert_non_null(sm.get("b").get());
    assert_null(sm.get("z").get());
}

void test_malformed_or_nested_batch_applies_nothing(void**) {
    StateMachine sm;
    std::string good = batch({set("a", "1"), set("b", "2")});
    std::vector<Result> rs = sm.apply_entry(3, good.substr(0, good.size() - 1));
    assert_int_equal(rs.size(), 1);
    assert_int_equal(rs[0].outcome, Outcome::Invalid);
    assert_int_equal(sm.applied(), 3);
    assert_null(sm.get("a").get());
    rs = sm.apply_entry(4, batch({set("a", "1"), good}));  // nested
    assert_int_equal(rs.size(), 1);
    assert_int_equal(rs[0].outcome, Outcome::Invalid);
    assert_null(sm.get("a").get());
    // apply_bytes() takes one command: a batch is not one.
    assert_int_equal(sm.apply_bytes(5, good).outcome, Outcome::Invalid);
    assert_null(sm.get("a").get());
    // A plain record through apply_entry: one result.
    rs = sm.apply_entry(6, set("a", "1"));
    assert_int_equal(rs.size(), 1);
    assert_int_equal(rs[0].outcome, Outcome::Ok);
}

void test_same_entries_same_state(void**) {
    std::vector<std::string> log = {batch({set("a", "1"), set("a", "2", 0), set("b", "1")}), set("c", "1"),
                                    batch({set("b", "2", 1), set("c", "2", 2), set("d", "1", 0)})};
    StateMachine one, two;
    for (size_t i = 0; i < log.size(); i++) {
        std::vector<Result> ra = one.apply_entry(i + 1, log[i]);
        std::vector<Result> rb = two.apply_entry(i + 1, log[i]);
        assert_int_equal(ra.size(), rb.size());
        for (size_t j = 0; j < ra.size(); j++) assert_int_equal(ra[j].outcome, rb[j].outcome);
    }
    assert_true(StateMachine::serialize(*one.version()) == StateMachine::serialize(*two.version()));
    assert_true(one.get("b")->value() == "2");
    assert_true(one.get("a")->value() == "1");  // create-only on an existing key
    assert_true(one.get("c")->value() == "2");  // c was at index 2: the CAS held
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sub_commands_share_the_index_with_their_own_results),
        cmocka_unit_test(test_idempotency_stays_per_sub_command),
        cmocka_unit_test(test_a_bad_sub_record_fails_only_itself),
        cmocka_unit_test(test_malformed_or_nested_batch_applies_nothing),
        cmocka_unit_test(test_same_entries_same_state),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
