// The services catalog in the state machine (core/store/services.*) and its
// JSON (services_json.*): register, re-register, deregister, check updates,
// TTL expiry by the leader's clock carried in entries, snapshots (round
// trip, the older format without a catalog, garbage), hostile input, and
// Consul's request shapes.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "store/services_json.h"
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

constexpr uint64_t kT0 = 1700000000000ull;  // a leader clock, ms

Command at(uint64_t ms, Body body) {
    Command c;
    c.meta.leader_ms = ms;
    c.body = std::move(body);
    return c;
}

ServiceRegister web(std::string id, uint64_t ttl_ms = 10000, CheckStatus initial = CheckStatus::Critical) {
    ServiceRegister r;
    r.id = std::move(id);
    r.name = "web";
    r.address = "10.0.0.1";
    r.port = 8080;
    r.tags = {"v1"};
    r.meta = {{"env", "prod"}};
    if (ttl_ms > 0) r.checks.push_back({"check:" + r.id, "Web", "", ttl_ms, initial});
    return r;
}

CheckPtr check(const StateMachine& sm, const std::string& id) {
    const auto& checks = sm.version()->catalog.checks;
    auto it = checks.find(id);
    return it == checks.end() ? nullptr : it->second;
}

CheckStatus status(const StateMachine& sm, const std::string& id) {
    CheckPtr k = check(sm, id);
    if (!k) fail_msg("no check %s", id.c_str());
    return k->status;
}

// ---- register / deregister ------------------------------------------------

void test_register_and_deregister(void**) {
    StateMachine sm;
    assert_int_equal(sm.catalog_index(), 1);  // never 0
    assert_int_equal(sm.apply(3, at(kT0, web("web-1"))).outcome, Outcome::Ok);
    const Catalog& c = sm.version()->catalog;
    assert_int_equal(c.services.size(), 1);
    ServicePtr s = c.services.at("web-1");
    assert_string_equal(s->name.c_str(), "web");
    assert_int_equal(s->port, 8080);
    assert_int_equal(s->create_index, 3);
    assert_int_equal(s->modify_index, 3);
    assert_int_equal(s->checks.size(), 1);
    // TTL checks start critical, as in Consul.
    assert_int_equal(status(sm, "check:web-1"), CheckStatus::Critical);
    assert_int_equal(sm.catalog_index(), 3);
    assert_int_equal(sm.index(), 1);  // the KV index does not move
    assert_true(sm.version()->catalog.bytes > 0);

    // The same definition again changes nothing, not even the index.
    assert_int_equal(sm.apply(4, at(kT0 + 1, web("web-1"))).outcome, Outcome::Ok);
    assert_int_equal(sm.catalog_index(), 3);
    // A changed one keeps CreateIndex and moves ModifyIndex.
    ServiceRegister moved = web("web-1");
    moved.port = 9090;
    assert_int_equal(sm.apply(5, at(kT0 + 2, moved)).outcome, Outcome::Ok);
    s = sm.version()->catalog.services.at("web-1");
    assert_int_equal(s->create_index, 3);
    assert_int_equal(s->modify_index, 5);
    assert_int_equal(sm.catalog_index(), 5);

    assert_int_equal(sm.apply(6, at(kT0, web("web-2"))).outcome, Outcome::Ok);
    assert_int_equal(services_named(sm.version()->catalog, "web").size(), 2);

    Result r = sm.apply(7, at(kT0, ServiceDeregister{"web-1"}));
    assert_int_equal(r.outcome, Outcome::Ok);
    assert_null(check(sm, "check:web-1").get());
    assert_int_equal(sm.catalog_index(), 7);
    r = sm.apply(8, at(kT0, ServiceDeregister{"web-1"}));
    assert_int_equal(r.outcome, Outcome::Failed);
    assert_non_null(strstr(r.error.c_str(), "unknown service ID"));
    assert_int_equal(sm.catalog_index(), 7);
    sm.apply(9, at(kT0, ServiceDeregister{"web-2"}));
    assert_int_equal(sm.version()->catalog.bytes, 0);  // every byte accounted for
}

void test_reregister_keeps_check_state_and_drops_missing_checks(void**) {
    StateMachine sm;
    ServiceRegister r = web("api");
    r.checks.push_back({"second", "", "", 5000, CheckStatus::Passing});
    sm.apply(2, at(kT0, r));
    sm.apply(3, at(kT0 + 10, CheckPass{"check:api", "fine", CheckStatus::Passing}));
    CheckPtr before = check(sm, "check:api");
    // Re-registered with a new TTL for the first check and without the second.
    ServiceRegister again = web("api", 20000);
    assert_int_equal(sm.apply(4, at(kT0 + 20, again)).outcome, Outcome::Ok);
    CheckPtr after = check(sm, "check:api");
    assert_int_equal(after->status, CheckStatus::Passing);
    assert_string_equal(after->output.c_str(), "fine");
    assert_int_equal(after->updated_ms, before->updated_ms);
    assert_int_equal(after->ttl_ms, 20000);
    assert_int_equal(after->create_index, before->create_index);
    assert_null(check(sm, "second").get());
    assert_int_equal(sm.version()->catalog.services.at("api")->checks.size(), 1);
    // Another service cannot take over a check id.
    ServiceRegister thief = web("other");
    thief.checks[0].id = "check:api";
    Result res = sm.apply(5, at(kT0, thief));
    assert_int_equal(res.outcome, Outcome::Invalid);
    assert_non_null(strstr(res.error.c_str(), "belongs to service"));
}

// ---- check updates and TTL expiry ------------------------------------------

void test_pass_warn_fail_and_index_only_on_change(void**) {
    StateMachine sm;
    sm.apply(2, at(kT0, web("w")));
    assert_int_equal(sm.apply(3, at(kT0 + 100, CheckPass{"check:w", "ok", CheckStatus::Passing})).outcome, Outcome::Ok);
    assert_int_equal(status(sm, "check:w"), CheckStatus::Passing);
    assert_int_equal(check(sm, "check:w")->modify_index, 3);
    assert_int_equal(sm.catalog_index(), 3);
    // A heartbeat that changes neither status nor output restarts the TTL
    // but moves no index: blocking readers are not woken by heartbeats.
    sm.apply(4, at(kT0 + 200, CheckPass{"check:w", "ok", CheckStatus::Passing}));
    assert_int_equal(check(sm, "check:w")->modify_index, 3);
    assert_int_equal(check(sm, "check:w")->updated_ms, kT0 + 200);
    assert_int_equal(sm.catalog_index(), 3);
    sm.apply(5, at(kT0 + 300, CheckPass{"check:w", "slow", CheckStatus::Warning}));
    assert_int_equal(status(sm, "check:w"), CheckStatus::Warning);
    assert_int_equal(sm.catalog_index(), 5);
    sm.apply(6, at(kT0 + 400, CheckPass{"check:w", "down", CheckStatus::Critical}));
    assert_int_equal(status(sm, "check:w"), CheckStatus::Critical);
    Result r = sm.apply(7, at(kT0, CheckPass{"nope", "", CheckStatus::Passing}));
    assert_int_equal(r.outcome, Outcome::Failed);
    assert_non_null(strstr(r.error.c_str(), "unknown check ID"));
    // Output must be UTF-8 (apply checks even what the HTTP layer did).
    r = sm.apply(8, at(kT0, CheckPass{"check:w", "\xff", CheckStatus::Passing}));
    assert_int_equal(r.outcome, Outcome::Invalid);
}

void test_ttl_expires_by_the_leader_clock_in_entries(void**) {
    StateMachine sm;
    sm.apply(2, at(kT0, web("a", 1000)));
    sm.apply(3, at(kT0, web("b", 5000)));
    sm.apply(4, at(kT0 + 10, CheckPass{"check:a", "alive", CheckStatus::Passing}));
    sm.apply(5, at(kT0 + 10, CheckPass{"check:b", "", CheckStatus::Warning}));
    assert_int_equal(sm.version()->catalog.next_deadline_ms, kT0 + 1010);
    // Not yet: 1 ms before the deadline.
    sm.apply(6, at(kT0 + 1009, Noop{}));
    assert_int_equal(status(sm, "check:a"), CheckStatus::Passing);
    assert_int_equal(sm.catalog_index(), 5);
    // A tick at the deadline turns it critical at that entry's index.
    sm.apply(7, at(kT0 + 1010, Noop{}));
    CheckPtr a = check(sm, "check:a");
    assert_int_equal(a->status, CheckStatus::Critical);
    assert_string_equal(a->output.c_str(), "TTL expired (last output before timeout follows): alive");
    assert_int_equal(a->modify_index, 7);
    assert_int_equal(sm.catalog_index(), 7);
    assert_int_equal(status(sm, "check:b"), CheckStatus::Warning);
    assert_int_equal(sm.version()->catalog.next_deadline_ms, kT0 + 5010);
    // Any entry carries the clock (a KV write here); a clock that goes back
    // (a new leader whose clock lags) does not un-expire or re-expire.
    sm.apply(8, at(kT0 + 6000, KvSet{"k", "v", 0, std::nullopt}));
    assert_int_equal(status(sm, "check:b"), CheckStatus::Critical);
    assert_int_equal(sm.version()->catalog.next_deadline_ms, kNoDeadline);
    sm.apply(9, at(kT0 + 100, CheckPass{"check:a", "", CheckStatus::Passing}));
    // The TTL runs from the catalog clock, which never went back.
    assert_int_equal(check(sm, "check:a")->updated_ms, kT0 + 6000);
    assert_int_equal(sm.version()->catalog.clock_ms, kT0 + 6000);
    sm.apply(10, at(kT0 + 6999, Noop{}));
    assert_int_equal(status(sm, "check:a"), CheckStatus::Passing);
    sm.apply(11, at(kT0 + 7000, Noop{}));
    assert_int_equal(status(sm, "check:a"), CheckStatus::Critical);
    assert_string_equal(check(sm, "check:a")->output.c_str(), "TTL expired");
}

void test_registered_passing_check_starts_its_ttl(void**) {
    StateMachine sm;
    sm.apply(1, at(kT0, Noop{}));
    sm.apply(2, at(kT0 + 50, web("p", 2000, CheckStatus::Passing)));
    assert_int_equal(status(sm, "check:p"), CheckStatus::Passing);
    assert_int_equal(sm.version()->catalog.next_deadline_ms, kT0 + 2050);
    sm.apply(3, at(kT0 + 2050, Noop{}));
    assert_int_equal(status(sm, "check:p"), CheckStatus::Critical);
}

// The same entries give the same state on every node: replay a log twice.
void test_replay_is_deterministic(void**) {
    std::vector<Command> log;
    std::mt19937_64 rng(7);
    for (int i = 0; i < 400; i++) {
        uint64_t t = kT0 + static_cast<uint64_t>(i) * 37;
        std::string id = "s" + std::to_string(rng() % 5);
        switch (rng() % 5) {
            case 0: log.push_back(at(t, web(id, 100 + rng() % 500))); break;
            case 1: log.push_back(at(t, ServiceDeregister{id})); break;
            case 2:
                log.push_back(
                    at(t, CheckPass{"check:" + id, std::to_string(rng() % 3), static_cast<CheckStatus>(rng() % 3)}));
                break;
            default: log.push_back(at(t, Noop{})); break;
        }
    }
    StateMachine a, b;
    for (size_t i = 0; i < log.size(); i++) {
        Result ra = a.apply_bytes(i + 1, encode(log[i]));
        Result rb = b.apply_bytes(i + 1, encode(log[i]));
        assert_int_equal(ra.outcome, rb.outcome);
    }
    assert_true(serialize_catalog(a.version()->catalog) == serialize_catalog(b.version()->catalog));
}

// ---- limits and hostile input ----------------------------------------------

void test_bad_definitions_are_invalid_results(void**) {
    StateMachine sm;
    auto refused = [&](ServiceRegister r, const char* why) {
        Result res = sm.apply(sm.applied() + 1, at(kT0, std::move(r)));
        if (res.outcome != Outcome::Invalid) fail_msg("accepted: %s", why);
        if (strstr(res.error.c_str(), why) == nullptr) fail_msg("'%s' does not say '%s'", res.error.c_str(), why);
    };
    ServiceRegister r = web("x");
    r.name.clear();
    refused(r, "Name");
    r = web("x");
    r.id = "a\nb";
    refused(r, "control");
    r = web("x");
    r.checks[0].ttl_ms = 0;
    refused(r, "TTL");
    r = web("x");
    r.checks.push_back(r.checks[0]);
    refused(r, "twice");
    r = web("x");
    r.meta = {{"bad key!", "v"}};
    refused(r, "meta key");
    r = web("x");
    r.tags = {"\xc0\x80"};  // overlong UTF-8
    refused(r, "tag");
    r = web("x");
    r.checks.assign(Limits::kChecks + 1, CheckDef{"c", "", "", 1000, CheckStatus::Passing});
    refused(r, "checks");
    assert_int_equal(sm.version()->catalog.services.size(), 0);
    assert_int_equal(sm.catalog_index(), 1);
    // Records that do not decode are Invalid too, and change nothing.
    std::string bytes = encode(at(kT0, web("x")));
    bytes[bytes.size() - 1] = 9;  // the check's status byte
    assert_int_equal(sm.apply_bytes(100, bytes).outcome, Outcome::Invalid);
    assert_int_equal(sm.version()->catalog.services.size(), 0);
}

void test_catalog_counts_toward_the_store_cap(void**) {
    StateLimits limits;
    limits.max_bytes = 300;
    StateMachine sm(limits);
    assert_int_equal(sm.apply(1, at(kT0, KvSet{"k", std::string(200, 'v'), 0, std::nullopt})).outcome, Outcome::Ok);
    ServiceRegister big = web("big");
    big.tags = {std::string(150, 't')};
    Result r = sm.apply(2, at(kT0, big));
    assert_int_equal(r.outcome, Outcome::StoreFull);
    assert_int_equal(sm.version()->catalog.services.size(), 0);
    assert_int_equal(sm.apply(3, at(kT0, web("small"))).outcome, Outcome::Ok);
    // And the KV side sees the catalog's bytes.
    assert_int_equal(sm.apply(4, at(kT0, KvSet{"k2", std::string(60, 'v'), 0, std::nullopt})).outcome,
                     Outcome::StoreFull);
    // Heartbeats still work on a full store.
    assert_int_equal(sm.apply(5, at(kT0, CheckPass{"check:small", "x", CheckStatus::Passing})).outcome, Outcome::Ok);
}

// ---- snapshots ----------------------------------------------------------------

void test_snapshot_round_trip_with_catalog(void**) {
    StateMachine sm;
    sm.apply(2, at(kT0, web("a", 1000)));
    sm.apply(3, at(kT0, web("b", 3000, CheckStatus::Passing)));
    sm.apply(4, at(kT0 + 5, CheckPass{"check:a", "hi \"there\"", CheckStatus::Warning}));
    sm.apply(5, at(kT0 + 6, KvSet{"k", "v", 0, std::nullopt}));
    std::string bytes = StateMachine::serialize(*sm.version());
    StateMachine copy;
    std::string error;
    assert_true(copy.restore(5, bytes, &error));
    const Catalog& c = copy.version()->catalog;
    assert_int_equal(c.services.size(), 2);
    assert_int_equal(c.checks.size(), 2);
    assert_int_equal(c.index, 4);
    assert_int_equal(c.clock_ms, kT0 + 6);
    assert_int_equal(c.bytes, sm.version()->catalog.bytes);
    assert_int_equal(c.next_deadline_ms, kT0 + 1005);
    assert_string_equal(c.checks.at("check:a")->output.c_str(), "hi \"there\"");
    assert_int_equal(c.checks.at("check:a")->status, CheckStatus::Warning);
    assert_int_equal(c.services.at("a")->checks.size(), 1);
    assert_true(StateMachine::serialize(*copy.version()) == bytes);
    // The restored copy expires the same way.
    copy.apply(6, at(kT0 + 1005, Noop{}));
    assert_int_equal(copy.version()->catalog.checks.at("check:a")->status, CheckStatus::Critical);
}

void test_catalog_garbage_is_refused(void**) {
    StateMachine sm;
    sm.apply(2, at(kT0, web("a", 1000)));
    std::string cat = serialize_catalog(sm.version()->catalog);
    Catalog out;
    assert_true(parse_catalog(cat, &out));
    for (size_t n = 0; n < cat.size(); n++) assert_false(parse_catalog(cat.substr(0, n), &out));
    assert_false(parse_catalog(cat + "x", &out));
    // A check whose service is not there.
    Catalog orphan = sm.version()->catalog;
    orphan.services.clear();
    assert_false(parse_catalog(serialize_catalog(orphan), &out));
    std::mt19937_64 rng(3);
    for (int i = 0; i < 20000; i++) {
        std::string s = cat;
        s[rng() % s.size()] = static_cast<char>(rng());
        Catalog c;
        if (parse_catalog(s, &c)) assert_true(serialize_catalog(c).size() <= s.size() + 16);
    }
}

// ---- JSON -----------------------------------------------------------------------

void test_parse_registration(void**) {
    RegisterParse p = parse_service_registration(
        R"({"name":"web","port":80,"tags":["a"],"meta":{"b":"2","a":"1"},"check":{"ttl":"1m30s"}})");
    if (!p.ok()) fail_msg("%s", p.error.c_str());
    assert_string_equal(p.reg.id.c_str(), "web");  // ID defaults to Name
    assert_int_equal(p.reg.port, 80);
    assert_string_equal(p.reg.meta[0].first.c_str(), "a");  // sorted
    assert_int_equal(p.reg.checks.size(), 1);
    assert_string_equal(p.reg.checks[0].id.c_str(), "service:web");
    assert_string_equal(p.reg.checks[0].name.c_str(), "Service 'web' check");
    assert_int_equal(p.reg.checks[0].ttl_ms, 90000);
    assert_int_equal(p.reg.checks[0].status, CheckStatus::Critical);
    p = parse_service_registration(
        R"({"ID":"w1","Name":"web","Checks":[{"TTL":"10s","Status":"passing"},{"CheckID":"mine","TTL":"500ms"}]})");
    if (!p.ok()) fail_msg("%s", p.error.c_str());
    assert_string_equal(p.reg.checks[0].id.c_str(), "service:w1:1");
    assert_int_equal(p.reg.checks[0].status, CheckStatus::Passing);
    assert_string_equal(p.reg.checks[1].id.c_str(), "mine");
    struct Bad {
        const char* body;
        const char* says;
    };
    const Bad bad[] = {
        {"", "not valid JSON"},
        {"{", "not valid JSON"},
        {"[]", "JSON object"},
        {R"({"ID":"x"})", "Name"},
        {R"({"Name":5})", "Name must be a string"},
        {R"({"Name":"w","Port":"80"})", "Port"},
        {R"({"Name":"w","Port":70000})", "Port"},
        {R"({"Name":"w","Port":1.5})", "Port"},
        {R"({"Name":"w","Tags":"a"})", "Tags"},
        {R"({"Name":"w","Tags":[1]})", "Tags"},
        {R"({"Name":"w","Meta":{"a":1}})", "Meta"},
        {R"({"Name":"w","Check":{"HTTP":"http://x","Interval":"10s"}})", "only TTL checks"},
        {R"({"Name":"w","Check":{}})", "needs a TTL"},
        {R"({"Name":"w","Check":{"TTL":"soon"}})", "TTL must be"},
        {R"({"Name":"w","Check":{"TTL":"-5s"}})", "TTL must be"},
        {R"({"Name":"w","Check":{"TTL":"200h"}})", "168h"},
        {R"({"Name":"w","Check":{"TTL":"1s","Status":"ok"}})", "Status"},
        {R"({"Name":"w","Checks":{}})", "Checks must be an array"},
        {R"({"Name":"w","Kind":"connect-proxy"})", "not supported"},
        {R"({"Name":"w\u0000x"})", "NUL"},
        {R"({"Name":"w","Check":{"TTL":"1s","DeregisterCriticalServiceAfter":"1m"}})", "not supported"},
    };
    for (const Bad& b : bad) {
        p = parse_service_registration(b.body);
        if (p.ok()) fail_msg("accepted %s", b.body);
        if (strstr(p.error.c_str(), b.says) == nullptr)
            fail_msg("%s: '%s' lacks '%s'", b.body, p.error.c_str(), b.says);
    }
    std::string many = R"({"Name":"w","Tags":[)";
    for (size_t i = 0; i <= Limits::kTags; i++) many += std::string(i ? "," : "") + "\"t\"";
    assert_false(parse_service_registration(many + "]}").ok());
}

void test_durations_and_updates(void**) {
    uint64_t ms = 0;
    assert_true(parse_go_duration_ms("15s", &ms) && ms == 15000);
    assert_true(parse_go_duration_ms("1h2m3.5s", &ms) && ms == 3723500);
    assert_true(parse_go_duration_ms("1500us", &ms) && ms == 2);  // rounded up
    assert_true(parse_go_duration_ms("0", &ms) && ms == 0);
    for (const char* bad : {"", "s", "5", "5x", "1.s.", "-1s", "99999999999h"}) {
        if (parse_go_duration_ms(bad, &ms) && std::string(bad) != "1.s.") fail_msg("accepted %s", bad);
    }
    assert_string_equal(format_duration_ms(90000).c_str(), "1m30s");
    assert_string_equal(format_duration_ms(1500).c_str(), "1.5s");
    assert_string_equal(format_duration_ms(250).c_str(), "250ms");
    CheckUpdateParse u = parse_check_update(R"({"Status":"warning","Output":"slow"})");
    assert_true(u.ok());
    assert_int_equal(u.status, CheckStatus::Warning);
    assert_false(parse_check_update(R"({"Status":"meh"})").ok());
    assert_false(parse_check_update(R"({"Output":"x"})").ok());
    assert_false(parse_check_update("nope").ok());
    // Over-long output is cut at a character boundary, as Consul cuts it.
    std::string euro;
    for (int i = 0; i < 2000; i++) euro += "\xe2\x82\xac";
    std::string cut = truncate_output(euro);
    assert_true(cut.size() <= Limits::kNote && cut.size() > Limits::kNote - 3);
    assert_int_equal(cut.size() % 3, 0);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_and_deregister),
        cmocka_unit_test(test_reregister_keeps_check_state_and_drops_missing_checks),
        cmocka_unit_test(test_pass_warn_fail_and_index_only_on_change),
        cmocka_unit_test(test_ttl_expires_by_the_leader_clock_in_entries),
        cmocka_unit_test(test_registered_passing_check_starts_its_ttl),
        cmocka_unit_test(test_replay_is_deterministic),
        cmocka_unit_test(test_bad_definitions_are_invalid_results),
        cmocka_unit_test(test_catalog_counts_toward_the_store_cap),
        cmocka_unit_test(test_snapshot_round_trip_with_catalog),
        cmocka_unit_test(test_catalog_garbage_is_refused),
        cmocka_unit_test(test_parse_registration),
        cmocka_unit_test(test_durations_and_updates),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
