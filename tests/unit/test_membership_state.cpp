// Membership in the replicated state (core/store/membership_record.*,
// membership_state.*): the records' strict codec, join-token life through
// the state machine (create, use, reuse, expiry by the leader's clock,
// revoke, the table's bound), members joining, rejoining and leaving, and
// the snapshot section (round trip and damage).
#include <cstring>
#include <string>

#include "store/membership_record.h"
#include "store/membership_state.h"
#include "store/state_machine.h"
#include "util/sha256.h"

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

const std::string kHash = rampart::util::sha256_hex("join-secret");

std::string record(uint64_t leader_ms, MembershipBody body) {
    MembershipRecord r;
    r.leader_ms = leader_ms;
    r.body = std::move(body);
    return encode_membership(r);
}

JoinTokenCreate token(std::string id, std::string hash, uint64_t expires_ms, uint64_t uses = 1,
                      MemberRole role = MemberRole::Voter) {
    JoinTokenCreate c;
    c.id = std::move(id);
    c.hash = std::move(hash);
    c.expires_ms = expires_ms;
    c.max_uses = uses;
    c.role = role;
    return c;
}

MemberJoin join(std::string node_id, uint64_t raft_id, MemberRole asked = MemberRole::Voter) {
    return MemberJoin{kHash, std::move(node_id), raft_id, "127.0.0.1:7741", asked};
}

void test_codec_round_trip_and_strictness(void**) {
    std::string bytes = record(42, join("node_4", 99, MemberRole::Standby));
    assert_true(is_membership_record(bytes));
    std::string error;
    auto r = decode_membership(bytes, &error);
    assert_true(r.has_value());
    assert_int_equal(r->leader_ms, 42);
    const auto& j = std::get<MemberJoin>(r->body);
    assert_string_equal(j.node_id.c_str(), "node_4");
    assert_int_equal(j.raft_id, 99);
    assert_int_equal(static_cast<int>(j.role), static_cast<int>(MemberRole::Standby));
    // Truncated, extended, another version, a bad role: refused.
    assert_false(decode_membership(bytes.substr(0, bytes.size() - 1), &error).has_value());
    assert_false(decode_membership(bytes + "x", &error).has_value());
    std::string v2 = bytes;
    v2[1] = 2;
    assert_false(decode_membership(v2, &error).has_value());
    std::string role = bytes;
    role.back() = 7;
    assert_false(decode_membership(role, &error).has_value());
    // Ordinary commands are never taken for membership records.
    assert_false(is_membership_record(std::string(1, '\x01')));
    assert_false(is_membership_record(""));
}

void test_single_use_token_then_reuse_and_forgery(void**) {
    StateMachine sm;
    assert_int_equal(static_cast<int>(sm.apply_bytes(1, record(1000, token("t1", kHash, 5000))).outcome),
                     static_cast<int>(Outcome::Ok));
    Result first = sm.apply_bytes(2, record(1100, join("node_4", 44)));
    assert_int_equal(static_cast<int>(first.outcome), static_cast<int>(Outcome::Ok));
    const MemberRecord* m = sm.membership().member("node_4");
    assert_non_null(m);
    assert_int_equal(m->raft_id, 44);
    Result again = sm.apply_bytes(3, record(1200, join("node_5", 55)));
    assert_int_equal(static_cast<int>(again.outcome), static_cast<int>(Outcome::Failed));
    assert_string_equal(again.error.c_str(), "join token already used");
    MemberJoin forged = join("node_6", 66);
    forged.token_hash = rampart::util::sha256_hex("guess");
    Result f = sm.apply_bytes(4, record(1300, forged));
    assert_non_null(strstr(f.error.c_str(), "unknown join token"));
    assert_null(sm.membership().member("node_6"));
}

void test_expiry_by_the_leaders_clock_and_revoke(void**) {
    MembershipState s;
    MembershipRecord r{1000, token("t1", kHash, 2000, 0)};
    assert_int_equal(static_cast<int>(s.apply(1, r).outcome), static_cast<int>(Outcome::Ok));
    // Unlimited uses until it expires.
    assert_int_equal(static_cast<int>(s.apply(2, {1500, join("node_4", 44)}).outcome), static_cast<int>(Outcome::Ok));
    assert_int_equal(static_cast<int>(s.apply(3, {1600, join("node_5", 55)}).outcome), static_cast<int>(Outcome::Ok));
    assert_string_equal(s.join_refusal(s.token_by_hash(kHash), 2000).c_str(), "join token expired");
    Result late = s.apply(4, {2000, join("node_6", 66)});
    assert_int_equal(static_cast<int>(late.outcome), static_cast<int>(Outcome::Failed));
    assert_int_equal(s.tokens().size(), 0);  // forgotten once expired
    // Revoke.
    assert_int_equal(static_cast<int>(s.apply(5, {3000, token("t2", kHash, 9000)}).outcome),
                     static_cast<int>(Outcome::Ok));
    assert_int_equal(static_cast<int>(s.apply(6, {3000, JoinTokenRevoke{"t2"}}).outcome),
                     static_cast<int>(Outcome::Ok));
    assert_int_equal(static_cast<int>(s.apply(7, {3000, JoinTokenRevoke{"t2"}}).outcome),
                     static_cast<int>(Outcome::Failed));
    assert_int_equal(static_cast<int>(s.apply(8, {3100, join("node_7", 77)}).outcome),
                     static_cast<int>(Outcome::Failed));
}

void test_roles_rejoin_leave_and_bounds(void**) {
    MembershipState s;
    s.apply(1, {0, token("t1", kHash, 100000, 0, MemberRole::Standby)});
    // A standby token never makes a voter; a node may ask for less.
    s.apply(2, {1, join("node_4", 44, MemberRole::Voter)});
    assert_int_equal(static_cast<int>(s.member("node_4")->role), static_cast<int>(MemberRole::Standby));
    s.apply(3, {2, join("node_5", 55, MemberRole::Spare)});
    assert_int_equal(static_cast<int>(s.member("node_5")->role), static_cast<int>(MemberRole::Spare));
    // Rejoin after data loss: the same node id, a new Raft id.
    s.apply(4, {3, join("node_4", 45)});
    assert_int_equal(s.member("node_4")->raft_id, 45);
    s.apply(5, {4, MemberLeave{"node_4"}});
    assert_true(s.member("node_4")->left);
    s.apply(6, {5, MemberLeave{"node_1"}});  // a bootstrap member: recorded when it leaves
    assert_true(s.member("node_1")->left);
    // Malformed records no leader of ours proposes.
    assert_int_equal(static_cast<int>(s.apply(7, {6, token("", kHash, 100)}).outcome),
                     static_cast<int>(Outcome::Invalid));
    assert_int_equal(static_cast<int>(s.apply(8, {6, token("x", "nothex", 100)}).outcome),
                     static_cast<int>(Outcome::Invalid));
    // The table's bound.
    MembershipState full;
    for (size_t i = 0; i < MembershipState::kMaxTokens; i++) {
        std::string h = rampart::util::sha256_hex(std::to_string(i));
        assert_int_equal(static_cast<int>(full.apply(i + 1, {0, token("t" + std::to_string(i), h, 1000)}).outcome),
                         static_cast<int>(Outcome::Ok));
    }
    Result over = full.apply(1000, {0, token("over", kHash, 1000)});
    assert_int_equal(static_cast<int>(over.outcome), static_cast<int>(Outcome::Failed));
}

void test_snapshot_section(void**) {
    StateMachine sm;
    sm.apply_bytes(1, record(0, token("t1", kHash, 100000, 3, MemberRole::Standby)));
    sm.apply_bytes(2, record(1, join("node_4", 44)));
    sm.apply_bytes(3, record(2, MemberLeave{"node_2"}));
    std::string payload = StateMachine::serialize(*sm.version());
    StateMachine restored;
    std::string error;
    assert_true(restored.restore(3, payload, &error));
    const JoinToken* t = restored.membership().token_by_hash(kHash);
    assert_non_null(t);
    assert_int_equal(t->uses, 1);
    assert_int_equal(t->max_uses, 3);
    assert_int_equal(restored.membership().member("node_4")->raft_id, 44);
    assert_true(restored.membership().member("node_2")->left);
    // The membership section damaged: the restore is refused.
    MembershipState m;
    assert_false(m.restore(std::string("\x05", 1)));
    assert_false(m.restore(sm.membership().serialize() + "x"));
    assert_true(m.restore(sm.membership().serialize()));
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_round_trip_and_strictness),
        cmocka_unit_test(test_single_use_token_then_reuse_and_forgery),
        cmocka_unit_test(test_expiry_by_the_leaders_clock_and_revoke),
        cmocka_unit_test(test_roles_rejoin_leave_and_bounds),
        cmocka_unit_test(test_snapshot_section),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
