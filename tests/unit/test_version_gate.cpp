// Mixed-version safety (core/cluster/version_gate.*, member_info.*, and
// store::encode_as): member_info records and the members snapshot section
// round trip and refuse malformed input; an older record version is written
// only when it can carry the command, and decodes to the same command;
// check_record() names the records this build cannot apply; the state
// machine keeps each member's last advertisement through a snapshot.
#include <string>

#include "cluster/member_info.h"
#include "cluster/version_gate.h"
#include "store/command.h"
#include "store/state_machine.h"

// cmocka last: its fail() macro clashes with the C++ library.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart;
using cluster::MemberInfo;

namespace {

MemberInfo info(const std::string& node_id) {
    MemberInfo m;
    m.node_id = node_id;
    m.api_address = "127.0.0.1:7700";
    m.api_scheme = "https";
    m.peer_address = "127.0.0.1:7701";
    m.build = "0.1.0";
    m.versions = cluster::local_versions();
    return m;
}

store::Command service(bool with_meta) {
    store::ServiceRegister s;
    s.id = "web-1";
    s.name = "web";
    s.port = 80;
    s.tags = {"a", "b"};
    s.checks.push_back({"web-ttl", "", "", 10000, store::CheckStatus::Critical});
    if (with_meta) s.meta = {{"zone", "eu"}};
    return {{"", "", 1700000000000ull}, s};
}

void test_member_info_round_trip_and_malformed(void**) {
    MemberInfo m = info("node_2");
    std::string record = cluster::encode_member_info(m);
    assert_true(cluster::is_member_info_record(record));
    MemberInfo back;
    std::string error;
    assert_true(cluster::decode_member_info(record, &back, &error));
    assert_true(back == m);
    assert_int_equal(back.version_of(static_cast<uint8_t>(store::CommandType::ServiceRegister)), 2);
    for (size_t cut = 0; cut < record.size(); cut++)
        assert_false(cluster::decode_member_info(record.substr(0, cut), &back, &error));
    assert_false(cluster::decode_member_info(record + "x", &back, &error));
    std::string v2 = record;
    v2[1] = 2;
    assert_false(cluster::decode_member_info(v2, &back, &error));

    cluster::MemberTable table{{"node_1", info("node_1")}, {"node_2", m}};
    cluster::MemberTable parsed;
    assert_true(cluster::parse_members(cluster::serialize_members(table), &parsed));
    assert_true(parsed == table);
    assert_false(cluster::parse_members(cluster::serialize_members(table).substr(1), &parsed));
}

void test_older_versions_only_when_they_carry_the_command(void**) {
    std::string out;
    store::Command plain = service(false);
    assert_true(store::encode_as(plain, 1, &out));
    assert_int_equal(static_cast<uint8_t>(out[1]), 1);
    store::DecodeResult d = store::decode(out);
    assert_true(d.ok());
    assert_true(*d.command == plain);  // version 1 decodes to the same registration
    assert_true(store::encode_as(plain, 2, &out));
    assert_true(out == store::encode(plain));

    assert_false(store::encode_as(service(true), 1, &out));  // meta needs version 2
    store::Command named = service(false);
    std::get<store::ServiceRegister>(named.body).checks[0].name = "named";
    assert_false(store::encode_as(named, 1, &out));
    assert_false(store::encode_as(plain, 3, &out));  // no such version

    store::Command pass{{}, store::CheckPass{"web-ttl", "ok", store::CheckStatus::Passing}};
    assert_true(store::encode_as(pass, 1, &out));
    assert_true(store::decode(out).ok() && *store::decode(out).command == pass);
    store::Command warn{{}, store::CheckPass{"web-ttl", "hm", store::CheckStatus::Warning}};
    assert_false(store::encode_as(warn, 1, &out));
    store::Command set{{}, store::KvSet{"k", "v", 0, std::nullopt}};
    assert_true(store::encode_as(set, 1, &out));
    assert_false(store::encode_as(set, 2, &out));
}

void test_check_record_names_what_this_build_cannot_apply(void**) {
    std::string record = store::encode(service(true));
    assert_false(cluster::check_record(record).unknown);
    record[1] = 3;  // a newer version
    cluster::UnknownRecord u = cluster::check_record(record);
    assert_true(u.unknown);
    assert_int_equal(u.version, 3);
    assert_int_equal(u.known_version, 2);
    record[0] = 50;  // a type this build has never heard of
    u = cluster::check_record(record);
    assert_true(u.unknown);
    assert_int_equal(u.known_version, 0);
    assert_string_equal(cluster::record_type_name(50).c_str(), "type 50");
    assert_false(cluster::check_record(cluster::encode_member_info(info("node_1"))).unknown);
    assert_false(cluster::check_record("").unknown);  // malformed, refused by decode() everywhere
}

// A batch is checked record by record: a newer sub-record stops the node
// like a newer plain record; a malformed batch is not "newer".
void test_check_record_looks_inside_batches(void**) {
    std::string plain = store::encode(service(true));
    std::string set = store::encode({{}, store::KvSet{"k", "v", 0, std::nullopt}});
    assert_false(cluster::check_record(store::encode_batch({set, plain})).unknown);
    std::string newer = plain;
    newer[1] = 3;
    cluster::UnknownRecord u = cluster::check_record(store::encode_batch({set, newer}));
    assert_true(u.unknown);
    assert_int_equal(u.type, static_cast<uint8_t>(store::CommandType::ServiceRegister));
    assert_int_equal(u.version, 3);
    std::string batch = store::encode_batch({set});
    batch[1] = 2;  // a newer batch version
    u = cluster::check_record(batch);
    assert_true(u.unknown);
    assert_int_equal(u.type, 9);
    std::string truncated = store::encode_batch({set, plain});
    assert_false(cluster::check_record(truncated.substr(0, truncated.size() - 2)).unknown);
    assert_string_equal(cluster::record_type_name(9).c_str(), "batch");
    // This build declares batches, so a leader of such builds groups writes.
    bool declared = false;
    for (const cluster::CommandVersion& v : cluster::local_versions())
        declared = declared || (v.type == 9 && v.version == store::kBatchVersion);
    assert_true(declared);
}

void test_state_machine_keeps_advertisements_through_a_snapshot(void**) {
    store::StateMachine sm;
    assert_true(sm.apply_bytes(1, cluster::encode_member_info(info("node_1"))).outcome == store::Outcome::Ok);
    MemberInfo newer = info("node_1");
    newer.api_address = "127.0.0.1:8800";
    assert_true(sm.apply_bytes(2, cluster::encode_member_info(newer)).outcome == store::Outcome::Ok);
    assert_true(sm.apply_bytes(3, "\x41\x01garbage").outcome == store::Outcome::Invalid);
    assert_int_equal(sm.version()->members.size(), 1);
    assert_string_equal(sm.version()->members.at("node_1").api_address.c_str(), "127.0.0.1:8800");
    store::StateMachine restored;
    std::string error;
    assert_true(restored.restore(3, store::StateMachine::serialize(*sm.version()), &error));
    assert_true(restored.version()->members == sm.version()->members);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_member_info_round_trip_and_malformed),
        cmocka_unit_test(test_older_versions_only_when_they_carry_the_command),
        cmocka_unit_test(test_check_record_names_what_this_build_cannot_apply),
        cmocka_unit_test(test_check_record_looks_inside_batches),
        cmocka_unit_test(test_state_machine_keeps_advertisements_through_a_snapshot),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
