// API tokens in the replicated state (core/store/tokens.*, acl_routes.*):
// create and revoke through the state machine, duplicates and the table's
// bound, hostile records (applied and from the log), snapshots (round trip,
// the format before tokens, damaged token sections), copy-on-write, prefix
// scopes, and the authenticator consulting the replicated tokens.
#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "auth/authenticator.h"
#include "http/parser.h"
#include "store/acl_routes.h"
#include "store/state_machine.h"
#include "store/tokens.h"
#include "util/sha256.h"

// cmocka last: its fail() macro clashes with the C++ library.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart;
using namespace rampart::store;

namespace {

const std::string kSecretA = "secret-a-0123456789abcdef0123456789abcdef";
const std::string kSecretB = "secret-b-0123456789abcdef0123456789abcdef";

TokenCreate token(std::string accessor, const std::string& secret, TokenRole role = TokenRole::Read,
                  std::string prefix = "", std::string description = "") {
    TokenCreate c;
    c.accessor = std::move(accessor);
    c.secret_hash = util::sha256_hex(secret);
    c.role = role;
    c.prefix = std::move(prefix);
    c.description = std::move(description);
    return c;
}

Command create(TokenCreate c, uint64_t leader_ms = 1000) {
    Command cmd{{}, std::move(c)};
    cmd.meta.leader_ms = leader_ms;
    return cmd;
}

Command revoke(std::string accessor) { return {{}, TokenRevoke{std::move(accessor)}}; }

http::Request request(std::string method, std::string path, std::string body = "", std::string auth = "") {
    http::Request r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.body = std::move(body);
    if (!auth.empty()) r.headers.push_back({"Authorization", "Bearer " + auth});
    return r;
}

// ---- apply -----------------------------------------------------------------

void test_create_find_revoke(void**) {
    StateMachine sm;
    Result r = sm.apply(4, create(token("acc-1", kSecretA, TokenRole::Write, "app/", "deploy"), 1700000000123));
    assert_int_equal(r.outcome, Outcome::Ok);
    const Token* t = sm.tokens().find_hash(util::sha256_hex(kSecretA));
    assert_non_null(t);
    assert_string_equal(t->accessor.c_str(), "acc-1");
    assert_int_equal(t->role, TokenRole::Write);
    assert_string_equal(t->prefix.c_str(), "app/");
    assert_string_equal(t->description.c_str(), "deploy");
    assert_int_equal(t->create_index, 4);
    assert_int_equal(t->create_ms, 1700000000123);
    assert_ptr_equal(sm.tokens().find_accessor("acc-1"), t);
    assert_null(sm.tokens().find_hash(util::sha256_hex(kSecretB)));
    // Tokens are not KV data: the KV index does not move.
    assert_int_equal(sm.index(), 1);
    assert_int_equal(sm.applied(), 4);

    assert_int_equal(sm.apply(5, revoke("acc-1")).outcome, Outcome::Ok);
    assert_null(sm.tokens().find_hash(util::sha256_hex(kSecretA)));
    assert_null(sm.tokens().find_accessor("acc-1"));
    assert_int_equal(sm.tokens().size(), 0);
    // Revoking again: a deterministic failure, not a crash.
    Result again = sm.apply(6, revoke("acc-1"));
    assert_int_equal(again.outcome, Outcome::Failed);
    assert_string_equal(again.error.c_str(), "no such token");
}

void test_duplicates_and_bound(void**) {
    StateMachine sm;
    assert_int_equal(sm.apply(2, create(token("a", kSecretA))).outcome, Outcome::Ok);
    assert_int_equal(sm.apply(3, create(token("a", kSecretB))).outcome, Outcome::Failed);  // accessor taken
    assert_int_equal(sm.apply(4, create(token("b", kSecretA))).outcome, Outcome::Failed);  // same secret
    assert_int_equal(sm.tokens().size(), 1);
    assert_string_equal(sm.tokens().find_hash(util::sha256_hex(kSecretA))->accessor.c_str(), "a");

    uint64_t index = 10;
    for (size_t i = 1; i < TokenLimits::kMaxTokens; i++) {
        std::string n = std::to_string(i);
        assert_int_equal(sm.apply(index++, create(token("t" + n, "secret-" + n))).outcome, Outcome::Ok);
    }
    assert_int_equal(sm.tokens().size(), TokenLimits::kMaxTokens);
    Result full = sm.apply(index++, create(token("one-more", kSecretB)));
    assert_int_equal(full.outcome, Outcome::Failed);
    assert_non_null(strstr(full.error.c_str(), "too many tokens"));
    // Revoking makes room.
    assert_int_equal(sm.apply(index++, revoke("t1")).outcome, Outcome::Ok);
    assert_int_equal(sm.apply(index++, create(token("one-more", kSecretB))).outcome, Outcome::Ok);
}

void test_hostile_records_are_invalid(void**) {
    StateMachine sm;
    std::vector<TokenCreate> bad;
    bad.push_back(token("", kSecretA));                                                     // no accessor
    bad.push_back(token("a/b", kSecretA));                                                  // '/' in a path segment
    bad.push_back(token("..", kSecretA));                                                   // dot segment
    bad.push_back(token(std::string(65, 'a'), kSecretA));                                   // too long
    bad.push_back(token("ok", kSecretA, TokenRole::Read, "app/../etc/"));                   // prefix with ".."
    bad.push_back(token("ok", kSecretA, TokenRole::Read, "", std::string("\xff\xfe", 2)));  // not UTF-8
    bad.push_back(token("ok", kSecretA, TokenRole::Read, "", std::string(257, 'd')));       // too long
    TokenCreate raw_secret = token("ok", kSecretA);
    raw_secret.secret_hash = kSecretA;  // a secret where its hash belongs
    bad.push_back(raw_secret);
    TokenCreate upper = token("ok", kSecretA);
    for (char& c : upper.secret_hash) c = static_cast<char>(toupper(c));
    bad.push_back(upper);
    TokenCreate role = token("ok", kSecretA);
    role.role = static_cast<TokenRole>(9);
    bad.push_back(role);
    uint64_t index = 2;
    for (const TokenCreate& c : bad) {
        Result r = sm.apply(index++, create(c));
        assert_int_equal(r.outcome, Outcome::Invalid);
        assert_false(r.error.empty());
    }
    assert_int_equal(sm.tokens().size(), 0);

    // From the log: an unknown role byte does not decode; a truncated
    // record neither. Both are results, and the state is untouched.
    std::string bytes = encode(create(token("ok", kSecretA, TokenRole::Admin)));
    std::string wrong_role = bytes;
    size_t role_at = wrong_role.find(util::sha256_hex(kSecretA)) + 64;
    assert_int_equal(static_cast<uint8_t>(wrong_role[role_at]), 3);
    wrong_role[role_at] = 7;
    assert_int_equal(sm.apply_bytes(index++, wrong_role).outcome, Outcome::Invalid);
    assert_int_equal(sm.apply_bytes(index++, bytes.substr(0, bytes.size() - 3)).outcome, Outcome::Invalid);
    assert_int_equal(sm.tokens().size(), 0);
    assert_int_equal(sm.apply_bytes(index++, bytes).outcome, Outcome::Ok);
    assert_int_equal(sm.tokens().size(), 1);
}

void test_versions_keep_their_tokens(void**) {
    StateMachine sm;
    sm.apply(2, create(token("a", kSecretA)));
    Version before = sm.version();
    sm.apply(3, revoke("a"));
    assert_non_null(before->tokens.find_accessor("a"));
    assert_null(sm.tokens().find_accessor("a"));
}

// ---- snapshots -------------------------------------------------------------

void test_snapshot_round_trip(void**) {
    StateMachine sm;
    sm.apply(2, create(token("a", kSecretA, TokenRole::Admin, "", "ops"), 111));
    TokenCreate b = token("b", kSecretB, TokenRole::Read, "app/", "reader");
    b.expires_ms = 999999;
    sm.apply(3, create(b, 222));
    sm.apply(4, Command{{}, KvSet{"k", "v", 0, std::nullopt}});
    std::string payload = StateMachine::serialize(*sm.version());
    // The secrets are nowhere in a snapshot; their hashes are.
    assert_true(payload.find(kSecretA) == std::string::npos);
    assert_true(payload.find(kSecretB) == std::string::npos);

    StateMachine copy;
    std::string error;
    assert_true(copy.restore(4, payload, &error));
    assert_int_equal(copy.tokens().size(), 2);
    const Token* rb = copy.tokens().find_hash(util::sha256_hex(kSecretB));
    assert_non_null(rb);
    assert_string_equal(rb->accessor.c_str(), "b");
    assert_int_equal(rb->role, TokenRole::Read);
    assert_string_equal(rb->prefix.c_str(), "app/");
    assert_string_equal(rb->description.c_str(), "reader");
    assert_int_equal(rb->create_index, 3);
    assert_int_equal(rb->create_ms, 222);
    assert_int_equal(rb->expires_ms, 999999);
    assert_int_equal(copy.tokens().find_accessor("a")->role, TokenRole::Admin);
    assert_true(copy.get("k")->value() == "v");
    // And the copy goes on applying like the original.
    assert_int_equal(copy.apply(5, revoke("a")).outcome, Outcome::Ok);
    assert_int_equal(copy.apply(6, create(token("c", kSecretA))).outcome, Outcome::Ok);
}

// A snapshot written before tokens existed (format 1) still restores.
void test_snapshot_format_1_restores(void**) {
    // magic, format 1, applied 7, kv_index 5, one entry k=v (flags 0,
    // created 5, modified 5), no idempotency records.
    std::string v1("RMPSTATE", 8);
    for (int b : {1, 7, 5, 1, 1, int{'k'}, 1, int{'v'}, 0, 5, 5, 0}) v1.push_back(static_cast<char>(b));
    StateMachine sm;
    sm.apply(2, create(token("a", kSecretA)));
    std::string error;
    assert_true(sm.restore(7, v1, &error));
    assert_true(sm.get("k")->value() == "v");
    assert_int_equal(sm.tokens().size(), 0);  // the snapshot's state, which had none
    // A format from the future is refused.
    std::string v3 = v1;
    v3[8] = static_cast<char>(200);
    assert_false(sm.restore(7, v3, &error));
}

void test_snapshot_damaged_tokens_are_refused(void**) {
    StateMachine sm;
    sm.apply(2, create(token("a", kSecretA)));
    sm.apply(3, create(token("b", kSecretB)));
    std::string payload = StateMachine::serialize(*sm.version());
    std::string hash = util::sha256_hex(kSecretA);
    size_t at = payload.find(hash);
    assert_true(at != std::string::npos);

    StateMachine target;
    target.apply(2, create(token("keep", "keep-secret-0123456789")));
    std::string error;
    std::string bad = payload;
    bad[at] = 'G';  // not hex
    assert_false(target.restore(9, bad, &error));
    std::string dup = payload;
    dup.replace(payload.find(util::sha256_hex(kSecretB)), 64, hash);  // two tokens, one secret
    assert_false(target.restore(9, dup, &error));
    assert_false(target.restore(9, payload.substr(0, payload.size() - 1), &error));
    assert_false(target.restore(9, payload + "x", &error));
    // Nothing was swapped in.
    assert_non_null(target.tokens().find_accessor("keep"));
    assert_int_equal(target.tokens().size(), 1);
    assert_true(target.restore(9, payload, &error));
    assert_int_equal(target.tokens().size(), 2);
}

// ---- scopes and the authenticator ------------------------------------------

void test_request_in_scope(void**) {
    assert_true(request_in_scope(request("GET", "/v1/kv/app/x"), "app/"));
    assert_true(request_in_scope(request("PUT", "/v1/kv/app/"), "app/"));
    assert_true(request_in_scope(request("GET", "/v1/kv/app%2Fx"), "app/"));  // decoded first
    assert_false(request_in_scope(request("GET", "/v1/kv/app"), "app/"));     // ?recurse would reach "apple"
    assert_false(request_in_scope(request("GET", "/v1/kv/"), "app/"));
    assert_false(request_in_scope(request("DELETE", "/v1/kv/other/x"), "app/"));
    assert_false(request_in_scope(request("GET", "/v1/kv/%61pp2/x"), "app/"));
    assert_true(request_in_scope(request("GET", "/v1/kv/%zz"), "app/"));  // malformed: the handler's 400
    std::string in = R"([{"KV":{"Verb":"set","Key":"app/a","Value":"MQ=="}},{"KV":{"Verb":"get-tree","Key":"app/"}}])";
    std::string out = R"([{"KV":{"Verb":"set","Key":"app/a","Value":"MQ=="}},{"KV":{"Verb":"get","Key":"secret"}}])";
    assert_true(request_in_scope(request("PUT", "/v1/txn", in), "app/"));
    assert_false(request_in_scope(request("PUT", "/v1/txn", out), "app/"));
    assert_true(request_in_scope(request("PUT", "/v1/txn", "not json"), "app/"));
    assert_false(request_in_scope(request("PUT", "/v1/acl/token"), "app/"));
    assert_false(request_in_scope(request("GET", "/v1/acl/tokens"), "app/"));
    assert_false(request_in_scope(request("GET", "/v1/snapshot"), "app/"));
    assert_true(request_in_scope(request("GET", "/v1/catalog/services"), "app/"));
}

void test_authenticator_consults_replicated_tokens(void**) {
    StateMachine sm;
    auth::Authenticator a;
    a.set_enabled(true);
    const std::string config_token = "config-admin-token-0123456789";
    assert_true(a.add_token("bootstrap", auth::Role::Admin, config_token));
    a.set_source(std::make_unique<ReplicatedTokens>(sm));

    // Unknown to both: 401.
    auth::Decision d = a.decide(request("GET", "/v1/kv/app/x", "", kSecretA));
    assert_int_equal(d.status, 401);

    sm.apply(2, create(token("reader", kSecretA, TokenRole::Read, "app/")));
    sm.apply(3, create(token("writer", kSecretB, TokenRole::Write)));
    d = a.decide(request("GET", "/v1/kv/app/x", "", kSecretA));
    assert_int_equal(d.outcome, auth::Decision::Outcome::Allowed);
    assert_string_equal(d.identity.name.c_str(), "reader");
    assert_string_equal(d.identity.role.c_str(), "read");
    assert_int_equal(a.decide(request("PUT", "/v1/kv/app/x", "", kSecretA)).status, 403);  // role
    d = a.decide(request("GET", "/v1/kv/other", "", kSecretA));                            // scope
    assert_int_equal(d.status, 403);
    assert_string_equal(d.code.c_str(), "forbidden");
    assert_int_equal(a.decide(request("PUT", "/v1/kv/other", "", kSecretB)).outcome, auth::Decision::Outcome::Allowed);
    assert_int_equal(a.decide(request("GET", "/v1/acl/tokens", "", kSecretB)).status, 403);  // not admin
    assert_int_equal(a.decide(request("GET", "/v1/acl/tokens", "", config_token)).outcome,
                     auth::Decision::Outcome::Allowed);  // the configured token still works

    // Revoked: refused from the next request on.
    sm.apply(4, revoke("writer"));
    assert_int_equal(a.decide(request("PUT", "/v1/kv/other", "", kSecretB)).status, 401);

    // Expired by this node's clock.
    TokenCreate old = token("old", "old-secret-0123456789abcdef");
    old.expires_ms = 1;
    sm.apply(5, create(old));
    assert_int_equal(a.decide(request("GET", "/v1/kv/x", "", "old-secret-0123456789abcdef")).status, 401);

    // A scoped admin token may not mint tokens (that would escape its scope).
    sm.apply(6, create(token("scoped-admin", "scoped-admin-secret-0123", TokenRole::Admin, "app/")));
    assert_int_equal(a.decide(request("PUT", "/v1/acl/token", "", "scoped-admin-secret-0123")).status, 403);
    assert_int_equal(a.decide(request("POST", "/v1/admin/reload", "", "scoped-admin-secret-0123")).outcome,
                     auth::Decision::Outcome::Allowed);
}

void test_new_accessor(void**) {
    std::string a = new_accessor(), b = new_accessor();
    assert_int_equal(a.size(), 36);
    assert_true(valid_accessor(a));
    assert_string_not_equal(a.c_str(), b.c_str());
    assert_int_equal(a[8], '-');
    assert_int_equal(a[14], '4');  // version 4
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_find_revoke),
        cmocka_unit_test(test_duplicates_and_bound),
        cmocka_unit_test(test_hostile_records_are_invalid),
        cmocka_unit_test(test_versions_keep_their_tokens),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_snapshot_format_1_restores),
        cmocka_unit_test(test_snapshot_damaged_tokens_are_refused),
        cmocka_unit_test(test_request_in_scope),
        cmocka_unit_test(test_authenticator_consults_replicated_tokens),
        cmocka_unit_test(test_new_accessor),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
