// The KV API's wire formats (core/store/kv_json, query, util/base64):
// Consul's JSON shapes, txn bodies and their refusals, percent-decoding,
// query parameters and wait durations.
#include <cstring>
#include <string>

#include "store/kv_json.h"
#include "store/query.h"
#include "util/base64.h"

// cmocka last: its fail() macro clashes with the C++ library.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart::store;
using rampart::util::base64_decode;
using rampart::util::base64_encode;

namespace {

void test_base64(void**) {
    const char* cases[][2] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}};
    for (auto& c : cases) {
        assert_string_equal(base64_encode(c[0]).c_str(), c[1]);
        std::string out;
        assert_true(base64_decode(c[1], &out));
        assert_string_equal(out.c_str(), c[0]);
    }
    std::string bin(256, '\0');
    for (int i = 0; i < 256; i++) bin[i] = static_cast<char>(i);
    std::string back;
    assert_true(base64_decode(base64_encode(bin), &back));
    assert_true(back == bin);
    for (const char* bad : {"Zg=", "Z===", "Zm9v!A==", "Zg==Zg==", "=Zg="}) assert_false(base64_decode(bad, &back));
}

void test_render_entries_like_consul(void**) {
    auto e = Entry::make("bar", 3, 5, 7);
    auto empty = Entry::make("", 0, 8, 8);
    std::string out = render_entries({{"caf\xc3\xa9\"q", e}, {"e", empty}});
    assert_string_equal(
        out.c_str(),
        "[{\"LockIndex\":0,\"Key\":\"caf\xc3\xa9\\\"q\",\"Flags\":3,\"Value\":\"YmFy\",\"CreateIndex\":5,"
        "\"ModifyIndex\":7},"
        "{\"LockIndex\":0,\"Key\":\"e\",\"Flags\":0,\"Value\":null,\"CreateIndex\":8,\"ModifyIndex\":8}]\n");
    assert_string_equal(render_keys({"a/", "b\n"}).c_str(), "[\"a/\",\"b\\n\"]\n");
}

void test_render_txn(void**) {
    Result ok;
    ok.results.push_back({"k", Entry::make("v", 0, 2, 2), false});
    assert_string_equal(render_txn(ok).c_str(),
                        "{\"Results\":[{\"KV\":{\"LockIndex\":0,\"Key\":\"k\",\"Flags\":0,\"Value\":null,"
                        "\"CreateIndex\":2,\"ModifyIndex\":2}}],\"Errors\":null}\n");
    Result bad;
    bad.outcome = Outcome::Failed;
    bad.errors.push_back({1, "key \"x\" exists"});
    assert_string_equal(render_txn(bad).c_str(),
                        "{\"Results\":null,\"Errors\":[{\"OpIndex\":1,\"What\":\"key \\\"x\\\" exists\"}]}\n");
}

void test_parse_txn(void**) {
    TxnParse p = parse_txn(
        R"([{"KV":{"Verb":"cas","Key":"a","Value":"Zm9v","Flags":3,"Index":9}},{"kv":{"verb":"get-tree","key":"p/"}}])");
    assert_true(p.ok());
    assert_int_equal(p.txn.ops.size(), 2);
    assert_int_equal(p.txn.ops[0].verb, TxnVerb::Cas);
    assert_string_equal(p.txn.ops[0].value.c_str(), "foo");
    assert_int_equal(p.txn.ops[0].flags, 3);
    assert_int_equal(p.txn.ops[0].index, 9);
    assert_int_equal(p.txn.ops[1].verb, TxnVerb::GetTree);  // field names match case-insensitively, as in Consul
    assert_true(parse_txn("[]").ok());

    std::string many = "[";
    for (int i = 0; i < 65; i++) many += std::string(i ? "," : "") + R"({"KV":{"Verb":"get","Key":"k"}})";
    many += "]";
    assert_int_equal(parse_txn(many).status, 413);
    assert_non_null(strstr(parse_txn(many).error.c_str(), "too many operations (65 > 64)"));

    const char* bad[] = {
        "",
        "{}",
        R"([{"KV":{"Key":"k"}}])",
        R"([{"KV":{"Verb":"lock","Key":"k"}}])",
        R"([{"KV":{"Verb":"set","Key":"k","Value":"not base64!"}}])",
        R"([{"KV":{"Verb":"set","Key":"k","Flags":-1}}])",
        R"([{"KV":{"Verb":"set","Key":"k","Index":1.5}}])",
        R"([{"KV":{"Verb":"set","Key":7}}])",
        R"([{"Node":{"Verb":"get"}}])",
        R"([{"KV":{"Verb":"set","Key":"k","Session":"abc"}}])",
    };
    for (const char* b : bad) {
        TxnParse r = parse_txn(b);
        if (r.status != 400) fail_msg("expected 400 for %s, got %d", b, r.status);
    }
    std::string big =
        R"([{"KV":{"Verb":"set","Key":"k","Value":")" + base64_encode(std::string(512 * 1024 + 1, 'x')) + "\"}}]";
    assert_int_equal(parse_txn(big).status, 413);
}

void test_percent_decode_and_query(void**) {
    std::string out;
    assert_true(percent_decode("a%2Fb%20c+d", false, &out));
    assert_string_equal(out.c_str(), "a/b c+d");
    assert_true(percent_decode("a+b", true, &out));
    assert_string_equal(out.c_str(), "a b");
    assert_false(percent_decode("%zz", false, &out));
    assert_false(percent_decode("%2", false, &out));
    Query q;
    std::string error;
    assert_true(q.parse("recurse&cas=12&separator=%2F&flags=x&&", &error));
    assert_true(q.has("recurse"));
    assert_string_equal(q.get("recurse")->c_str(), "");
    assert_string_equal(q.get("separator")->c_str(), "/");
    assert_int_equal(*q.number("cas", &error), 12);
    assert_true(error.empty());
    assert_false(q.number("flags", &error).has_value());
    assert_false(error.empty());
    assert_false(q.number("absent", &error).has_value());
    assert_false(q.parse("a=%G0", &error));
}

void test_durations(void**) {
    uint64_t ms = 0;
    assert_true(parse_duration_ms("30s", &ms));
    assert_int_equal(ms, 30000);
    assert_true(parse_duration_ms("5m", &ms));
    assert_int_equal(ms, 300000);
    assert_true(parse_duration_ms("250ms", &ms));
    assert_int_equal(ms, 250);
    assert_true(parse_duration_ms("2", &ms));
    assert_int_equal(ms, 2000);
    assert_true(parse_duration_ms("1h", &ms));
    assert_int_equal(ms, 3600000);
    for (const char* bad : {"", "s", "10x", "-1s", "1.5s", "99999999999999999999s"})
        assert_false(parse_duration_ms(bad, &ms));
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_render_entries_like_consul),
        cmocka_unit_test(test_render_txn),
        cmocka_unit_test(test_parse_txn),
        cmocka_unit_test(test_percent_decode_and_query),
        cmocka_unit_test(test_durations),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
