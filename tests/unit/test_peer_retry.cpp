// The peer retry loop (core/resilience/peer_retry.h) and the retry budget,
// on a FakeClock with the shipped policies loaded by the real policy host:
// the seed's backoff table, budget exhaustion and refill, the breaker's
// transitions, Retry-After, per-attempt timeouts, and the requests that are
// never retried (TLS failures, writes without an Idempotency-Key, 4xx).
// The peer is a script of outcomes answered on the fake clock.
#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "metrics/registry.h"
#include "policy/policy_host.h"
#include "resilience/clock.h"
#include "resilience/peer_retry.h"
#include "resilience/retry_budget.h"

// cmocka last: its fail() macro clashes with the C++ library.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart;
using namespace rampart::resilience;
namespace fs = std::filesystem;

namespace {

const std::string kShipped = std::string(RAMPART_SOURCE_ROOT) + "/policies";

// The shipped policies with edits, in a directory of their own.
struct PolicyDir {
    std::string path;
    PolicyDir(const std::string& file, const std::string& from, const std::string& to) {
        char tmpl[] = "/tmp/rampart-peer-retry-XXXXXX";
        path = mkdtemp(tmpl);
        for (const auto& e : fs::directory_iterator(kShipped))
            fs::copy(e.path(), path + "/" + e.path().filename().string());
        std::ifstream in(path + "/" + file);
        std::stringstream ss;
        ss << in.rdbuf();
        std::string text = ss.str();
        size_t at = text.find(from);
        assert_true(at != std::string::npos);
        text.replace(at, from.size(), to);
        std::ofstream(path + "/" + file, std::ios::trunc) << text;
    }
    ~PolicyDir() { fs::remove_all(path); }
};

// A peer that answers from a script: each attempt takes the next outcome
// (the last one repeats) and answers it `latency_ms` later on the fake
// clock, or at once (inside send) when latency is 0. `hang` never answers.
struct ScriptedPeers {
    struct Step {
        PeerOutcome outcome;
        bool hang = false;
    };
    FakeClock& clock;
    std::deque<Step> script;
    uint64_t latency_ms = 0;
    std::vector<uint64_t> sent_at;
    std::vector<std::string> sent_to;
    int aborted = 0;
    std::vector<std::unique_ptr<Timer>> answers;

    explicit ScriptedPeers(FakeClock& c) : clock(c) {}

    void then(int status, std::string error = "", uint64_t retry_after_ms = 0) {
        script.push_back({PeerOutcome{status, std::move(error), retry_after_ms}, false});
    }
    void then_hang() { script.push_back({PeerOutcome{}, true}); }

    PeerRetrier::Abort send(const std::string& peer, PeerRetrier::Done done) {
        sent_at.push_back(clock.now_ms());
        sent_to.push_back(peer);
        Step step = script.front();
        if (script.size() > 1) script.pop_front();
        if (step.hang) return [this] { aborted++; };
        if (latency_ms == 0) {
            done(step.outcome);
            return nullptr;
        }
        answers.push_back(clock.timer([done, o = step.outcome] { done(o); }));
        Timer* t = answers.back().get();
        t->start(latency_ms);
        return [this, t] {
            aborted++;
            t->stop();
        };
    }
};

struct Fixture {
    FakeClock clock{0};
    policy::PolicyHost host;
    metrics::Registry registry;
    ScriptedPeers peers{clock};
    std::unique_ptr<PeerRetrier> retrier;
    std::vector<RetryResult> results;

    explicit Fixture(
        const std::string& dir = kShipped, std::function<double()> rand01 = [] { return 0.5; }) {
        policy::LoadReport r = host.load(dir);
        if (!r.ok) {
            for (auto& e : r.errors) print_error("%s\n", e.c_str());
        }
        assert_true(r.ok);
        retrier = std::make_unique<PeerRetrier>(clock, host, PeerRetrier::Settings{42, std::move(rand01), &registry});
    }

    // One request to `peer` (or a different peer per attempt when rotate).
    void request(bool idempotent = true, std::string peer = "node_2", bool rotate = false) {
        auto attempt = std::make_shared<int>(0);
        PeerRetrier::Request rq;
        rq.idempotent = idempotent;
        rq.target = [peer, rotate, attempt] { return rotate ? "node_" + std::to_string(++*attempt) : peer; };
        rq.send = [this](const std::string& p, PeerRetrier::Done d) { return peers.send(p, std::move(d)); };
        rq.finish = [this](const RetryResult& r) { results.push_back(r); };
        retrier->start(std::move(rq));
    }

    // Run the fake clock until nothing is pending.
    void settle() {
        while (clock.pending_timers() > 0 && retrier->in_flight() > 0) clock.advance(clock.next_due_in());
    }

    std::vector<uint64_t> gaps() const {
        std::vector<uint64_t> out;
        for (size_t i = 1; i < peers.sent_at.size(); ++i) out.push_back(peers.sent_at[i] - peers.sent_at[i - 1]);
        return out;
    }

    double metric(const char* name, std::vector<std::string> labels) const {
        return registry.find(name)->value(labels);
    }
};

void assert_gaps(const std::vector<uint64_t>& got, const std::vector<uint64_t>& want) {
    assert_int_equal(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        if (got[i] != want[i])
            print_error("gap %zu: %llu, want %llu\n", i, (unsigned long long)got[i], (unsigned long long)want[i]);
        assert_int_equal(got[i], want[i]);
    }
}

// ---- the retry budget on its own ----

void test_budget_spends_and_refills(void**) {
    RetryBudget b;  // 10 tokens, 0.1 per success
    assert_true(b.allows_retry());
    for (int i = 0; i < 4; ++i) b.record_failure();
    assert_true(b.allows_retry());  // 6 left
    b.record_failure();
    assert_false(b.allows_retry());  // exactly half: no
    for (int i = 0; i < 100; ++i) b.record_failure();
    assert_true(b.tokens() == 0);  // never below zero
    for (int i = 0; i < 50; ++i) b.record_success();
    assert_false(b.allows_retry());  // 5.0: still not more than half
    b.record_success();
    assert_true(b.allows_retry());
    for (int i = 0; i < 1000; ++i) b.record_success();
    assert_true(b.tokens() == 10);  // never above the bucket
    b.configure({4, 1});
    assert_true(b.tokens() == 4);
}

// ---- the seed's backoff table ----

// A peer that answers 503 for ever, a different one per attempt (a fresh
// budget and breaker each time, so only the policy stops the loop): ten
// attempts, nine waits, the seed's numbers at both ends of the jitter.
void test_backoff_table_at_jitter_bounds(void**) {
    for (double r : {0.0, 1.0}) {
        Fixture f(kShipped, [r] { return r; });
        f.peers.then(503);
        f.request(true, "", true);
        f.settle();
        assert_int_equal(f.results.size(), 1);
        assert_int_equal(f.results[0].attempts, 10);
        assert_string_equal(f.results[0].retry_class.c_str(), "http_5xx");
        assert_true(f.results[0].end == RetryEnd::Answered);  // the policy's last attempt
        if (r == 0.0) {
            assert_gaps(f.gaps(), {80, 160, 320, 640, 1280, 2560, 4000, 4000, 4000});
        } else {
            assert_gaps(f.gaps(), {120, 240, 480, 960, 1920, 3840, 6000, 6000, 6000});
        }
        assert_string_equal(f.peers.sent_to[0].c_str(), "node_1");
        assert_string_equal(f.peers.sent_to[9].c_str(), "node_10");  // looked up before every attempt
        const metrics::Metric* h = f.registry.find("rampart_peer_backoff_seconds");
        assert_non_null(h);
        assert_true(h->buckets() == std::vector<double>({0.1, 0.2, 0.5, 1.0, 2.0, 5.0}));
    }
}

// The seeded generator: every wait inside its jitter range, and the same
// seed gives the same sequence.
void test_backoff_seeded_jitter_is_deterministic(void**) {
    const uint64_t lo[] = {80, 160, 320, 640, 1280, 2560, 4000, 4000, 4000};
    const uint64_t hi[] = {120, 240, 480, 960, 1920, 3840, 6000, 6000, 6000};
    std::vector<uint64_t> first;
    for (int run = 0; run < 2; ++run) {
        Fixture f(kShipped, nullptr);
        f.peers.then(0, "refused");
        f.request(true, "", true);
        f.settle();
        std::vector<uint64_t> g = f.gaps();
        assert_int_equal(g.size(), 9);
        for (size_t i = 0; i < g.size(); ++i) {
            assert_in_range(g[i], lo[i], hi[i]);
        }
        if (run == 0) first = g;
        assert_true(g == first);
        assert_int_equal(f.metric("rampart_peer_request_total", {"node_3", "network_error"}), 1);
    }
}

// ---- the budget inside the loop ----

void test_budget_exhaustion_and_refill(void**) {
    // The breaker out of the way (it would open at the same fifth failure).
    PolicyDir dir("retry.lua", "failures = 5,", "failures = 1000,");
    Fixture f(dir.path);
    f.peers.then(503);
    f.request();
    f.settle();
    // Ten tokens; the fifth failure leaves five, not more than half: stop.
    assert_int_equal(f.results.size(), 1);
    assert_true(f.results[0].end == RetryEnd::BudgetExhausted);
    assert_int_equal(f.results[0].attempts, 5);
    assert_int_equal(f.metric("rampart_retry_budget_exhausted_total", {"node_2"}), 1);
    assert_int_equal(f.metric("rampart_peer_request_total", {"node_2", "http_5xx"}), 5);
    // Spent: a failing request is tried once only.
    f.request();
    f.settle();
    assert_int_equal(f.results[1].attempts, 1);
    assert_true(f.results[1].end == RetryEnd::BudgetExhausted);
    // Successes refill a tenth each: 4 + 22 * 0.1 = 6.2 tokens.
    f.peers.script.clear();
    f.peers.then(200);
    for (int i = 0; i < 22; ++i) f.request();
    f.settle();
    assert_int_equal(f.metric("rampart_peer_request_total", {"node_2", "success"}), 22);
    assert_true(f.retrier->budget_tokens("node_2") > 6.1 && f.retrier->budget_tokens("node_2") < 6.3);
    // Enough for one retry (6.2 - 1 = 5.2 > 5), not two.
    f.peers.script.clear();
    f.peers.then(503);
    f.request();
    f.settle();
    assert_int_equal(f.results.back().attempts, 2);
    assert_true(f.results.back().end == RetryEnd::BudgetExhausted);
}

// ---- the breaker ----

void test_breaker_opens_fails_fast_half_opens_and_closes(void**) {
    Fixture f;  // shipped: 5 failures in 60 s, 30 s cool-down
    f.peers.then(503);
    f.request();
    f.settle();
    assert_int_equal(f.peers.sent_at.size(), 5);
    assert_true(f.retrier->breaker_state("node_2") == BreakerState::Open);
    assert_int_equal(f.metric("rampart_peer_breaker_state", {"node_2"}), 2);
    uint64_t opened_at = f.peers.sent_at.back();
    // Open: nothing is sent; the answer says when the next trial may go.
    f.clock.advance(10'000);
    f.request();
    assert_int_equal(f.results.size(), 2);
    assert_true(f.results[1].end == RetryEnd::BreakerOpen);
    assert_int_equal(f.results[1].attempts, 0);
    assert_int_equal(f.results[1].retry_after_ms, opened_at + 30'000 - f.clock.now_ms());
    assert_int_equal(f.peers.sent_at.size(), 5);
    assert_int_equal(f.metric("rampart_peer_breaker_rejected_total", {"node_2"}), 1);
    // The cool-down ends: the gauge moves by itself (a clock timer).
    f.clock.advance(opened_at + 30'000 - f.clock.now_ms());
    assert_int_equal(f.metric("rampart_peer_breaker_state", {"node_2"}), 1);
    // Half-open: one trial; while it is out, others fail fast.
    f.peers.script.clear();
    f.peers.then(200);
    f.peers.latency_ms = 50;
    f.request();
    f.request();
    assert_true(f.results.back().end == RetryEnd::BreakerOpen);
    f.settle();
    assert_string_equal(f.results.back().retry_class.c_str(), "success");
    assert_true(f.retrier->breaker_state("node_2") == BreakerState::Closed);
    assert_int_equal(f.metric("rampart_peer_breaker_state", {"node_2"}), 0);
}

void test_breaker_failed_trial_reopens(void**) {
    PolicyDir dir("retry.lua", "cooldown_s = 30", "cooldown_s = 2");
    Fixture f(dir.path);
    f.peers.then(0, "refused");
    f.request();
    f.settle();
    assert_true(f.retrier->breaker_state("node_2") == BreakerState::Open);
    f.clock.advance(2000);
    assert_true(f.retrier->breaker_state("node_2") == BreakerState::HalfOpen);
    f.request();  // the trial fails: open again, for another cool-down
    f.settle();
    assert_true(f.retrier->breaker_state("node_2") == BreakerState::Open);
    f.clock.advance(1999);
    f.request();
    assert_true(f.results.back().end == RetryEnd::BreakerOpen);
    assert_int_equal(f.results.back().retry_after_ms, 1);
}

// ---- Retry-After, timeouts, what is never retried ----

void test_retry_after_is_honoured_and_capped(void**) {
    Fixture f;
    f.peers.then(503, "", 2000);       // longer than the 100 ms backoff
    f.peers.then(503, "", 3'600'000);  // an hour: capped at the policy's longest delay (6 s)
    f.peers.then(503, "", 50);         // shorter than the backoff (400 ms): the backoff wins
    f.peers.then(200);
    f.request();
    f.settle();
    assert_gaps(f.gaps(), {2000, 6000, 400});
    assert_string_equal(f.results[0].retry_class.c_str(), "success");
    assert_int_equal(f.results[0].attempts, 4);
}

void test_attempt_timeout_is_the_policy_budget(void**) {
    Fixture f;
    f.peers.then_hang();
    f.peers.then(200);
    f.request();
    f.settle();
    // 2500 ms without an answer: a timeout, aborted, retried after 100 ms.
    assert_gaps(f.gaps(), {2600});
    assert_int_equal(f.peers.aborted, 1);
    assert_int_equal(f.metric("rampart_peer_request_total", {"node_2", "timeout"}), 1);
    assert_string_equal(f.results[0].retry_class.c_str(), "success");
}

void test_never_retried(void**) {
    struct Case {
        int status;
        const char* error;
        bool idempotent;
        const char* retry_class;
    };
    for (const Case& c : {Case{0, "tls", true, "tls_error"}, Case{503, "", false, "http_5xx"},
                          Case{0, "refused", false, "network_error"}, Case{404, "", true, "http_4xx"}}) {
        Fixture f;
        f.peers.then(c.status, c.error);
        f.peers.then(200);
        f.request(c.idempotent);
        f.settle();
        assert_int_equal(f.peers.sent_at.size(), 1);
        assert_int_equal(f.results.size(), 1);
        assert_true(f.results[0].end == RetryEnd::Answered);
        assert_string_equal(f.results[0].retry_class.c_str(), c.retry_class);
        assert_int_equal(f.metric("rampart_peer_request_total", {"node_2", c.retry_class}), 1);
    }
}

// A deposed leader refuses a forwarded or relayed write before acting on it
// (503 with X-Rampart-Not-Applied): even a write without an Idempotency-Key
// goes again, to the leader looked up afresh. The refusal spends retry
// budget but does not count towards the refusing node's breaker.
void test_not_applied_is_sent_again_to_the_new_leader(void**) {
    Fixture f;
    PeerOutcome refused{503, "", 1000, true};
    for (int i = 0; i < 6; ++i) f.peers.script.push_back({refused, false});
    f.peers.then(200);
    f.request(false, "", true);  // not idempotent; node_1, node_2, ... in turn
    f.settle();
    assert_int_equal(f.results.size(), 1);
    assert_true(f.results[0].end == RetryEnd::Answered);
    assert_string_equal(f.results[0].retry_class.c_str(), "success");
    assert_int_equal(f.peers.sent_at.size(), 7);
    assert_string_equal(f.peers.sent_to.back().c_str(), "node_7");
    // Retry-After: 1 from the refusing node; the policy's delay when longer.
    assert_true(f.gaps()[0] >= 1000);
    // The same refusals from one node: its breaker stays closed, its budget
    // stops the retries once half is spent.
    Fixture g;
    g.peers.script.push_back({refused, false});
    g.request(false);
    g.settle();
    assert_true(g.retrier->breaker_state("node_2") == BreakerState::Closed);
    assert_true(g.results[0].end == RetryEnd::BudgetExhausted);
    assert_true(g.peers.sent_at.size() >= 2 && g.peers.sent_at.size() <= 6);
    // Without the header, a 503 to a write without a key is final.
    Fixture h;
    h.peers.then(503, "", 1000);
    h.peers.then(200);
    h.request(false);
    h.settle();
    assert_int_equal(h.peers.sent_at.size(), 1);
    assert_int_equal(h.results[0].attempts, 1);
}

// The join loop's way: one attempt, whatever retry.lua says, and the
// peer's budget and breaker left alone (the loop paces itself); outcomes
// are still counted per peer.
void test_capped_and_unguarded(void**) {
    Fixture f;
    f.peers.then(0, "refused");
    for (int i = 0; i < 8; ++i) {  // more failures than open a breaker (5)
        PeerRetrier::Request rq;
        rq.idempotent = true;
        rq.max_attempts = 1;
        rq.guarded = false;
        rq.target = [] { return std::string("node_2"); };
        rq.send = [&f](const std::string& p, PeerRetrier::Done d) { return f.peers.send(p, std::move(d)); };
        rq.finish = [&f](const RetryResult& r) { f.results.push_back(r); };
        f.retrier->start(std::move(rq));
        f.settle();
    }
    assert_int_equal(f.peers.sent_at.size(), 8);  // one each, none failed fast
    for (const RetryResult& r : f.results) {
        assert_true(r.end == RetryEnd::Answered);
        assert_int_equal(r.attempts, 1);
    }
    assert_int_equal(f.metric("rampart_peer_request_total", {"node_2", "network_error"}), 8);
    assert_true(f.retrier->breaker_state("node_2") == BreakerState::Closed);
    assert_true(f.retrier->budget_tokens("node_2") == RetryBudgetSettings{}.max_tokens);
    // A guarded request with a cap of 3 stops at 3 though retry.lua allows 10.
    f.results.clear();
    PeerRetrier::Request rq;
    rq.idempotent = true;
    rq.max_attempts = 3;
    rq.target = [] { return std::string("node_3"); };
    rq.send = [&f](const std::string& p, PeerRetrier::Done d) { return f.peers.send(p, std::move(d)); };
    rq.finish = [&f](const RetryResult& r) { f.results.push_back(r); };
    f.retrier->start(std::move(rq));
    f.settle();
    assert_int_equal(f.results.at(0).attempts, 3);
    assert_true(f.results[0].end == RetryEnd::Answered);
}

// No peer known (an election): those attempts back off like failures but
// touch no peer's budget or breaker; the request goes out once one leads.
void test_no_peer_waits_for_one(void**) {
    Fixture f;
    f.peers.then(200);
    int lookups = 0;
    PeerRetrier::Request rq;
    rq.idempotent = true;
    rq.target = [&lookups] { return ++lookups < 4 ? std::string() : std::string("node_3"); };
    rq.send = [&f](const std::string& p, PeerRetrier::Done d) { return f.peers.send(p, std::move(d)); };
    rq.finish = [&f](const RetryResult& r) { f.results.push_back(r); };
    f.retrier->start(std::move(rq));
    f.settle();
    assert_int_equal(f.results.size(), 1);
    assert_int_equal(f.results[0].attempts, 4);
    assert_string_equal(f.results[0].peer.c_str(), "node_3");
    assert_int_equal(f.clock.now_ms(), 100 + 200 + 400);
    assert_true(f.retrier->budget_tokens("node_3") == 10);
}

void test_cancel_and_not_wanted(void**) {
    Fixture f;
    f.peers.then_hang();
    PeerRetrier::Request rq;
    rq.idempotent = true;
    rq.target = [] { return std::string("node_2"); };
    rq.send = [&f](const std::string& p, PeerRetrier::Done d) { return f.peers.send(p, std::move(d)); };
    rq.finish = [&f](const RetryResult& r) { f.results.push_back(r); };
    uint64_t id = f.retrier->start(rq);
    f.retrier->cancel(id);
    assert_int_equal(f.peers.aborted, 1);
    assert_int_equal(f.retrier->in_flight(), 0);
    f.clock.advance(10'000);
    assert_true(f.results.empty());  // cancel never finishes
    bool wanted = true;
    rq.wanted = [&wanted] { return wanted; };
    f.retrier->start(rq);
    wanted = false;
    f.settle();  // times out, then is no longer wanted before the retry
    assert_int_equal(f.results.size(), 1);
    assert_true(f.results[0].end == RetryEnd::Cancelled);
}

// A policy edit reaches new requests only (each holds its generation).
void test_reload_changes_the_base_delay_for_new_requests(void**) {
    Fixture f;
    f.peers.then(503);
    f.peers.then(200);
    f.request();
    f.settle();
    assert_gaps(f.gaps(), {100});
    PolicyDir dir("backoff.lua", "local BASE_MS = 100", "local BASE_MS = 250");
    assert_true(f.host.load(dir.path).ok);
    f.peers.sent_at.clear();
    f.peers.script = {};
    f.peers.then(503);
    f.peers.then(200);
    f.request();
    f.settle();
    assert_gaps(f.gaps(), {250});
}

void test_retry_after_header_parsing(void**) {
    std::string s;
    assert_int_equal(PeerRetrier::parse_retry_after(nullptr), 0);
    for (auto [text, ms] : std::vector<std::pair<std::string, uint64_t>>{{"1", 1000},
                                                                         {"0", 0},
                                                                         {"120", 120'000},
                                                                         {"", 0},
                                                                         {"-1", 0},
                                                                         {"1.5", 0},
                                                                         {"Wed, 21 Oct 2015 07:28:00 GMT", 0},
                                                                         {"99999999999", 0}}) {
        assert_int_equal(PeerRetrier::parse_retry_after(&text), ms);
    }
}

// Bad numbers in retry.budget / retry.breaker keep the defaults, counted.
void test_bad_limits_fall_back(void**) {
    PolicyDir dir("retry.lua", "tokens = 10, refill = 0.1", "tokens = -3, refill = \"x\"");
    policy::PolicyHost host;
    assert_true(host.load(dir.path).ok);
    PeerRetryLimits l = peer_retry_limits(*host.current());
    assert_true(l.budget.max_tokens == 10 && l.budget.refill == 0.1);
    assert_int_equal(host.counters("retry").bad_result, 2);
    PeerRetryLimits shipped;
    policy::PolicyHost ok;
    assert_true(ok.load(kShipped).ok);
    l = peer_retry_limits(*ok.current());
    assert_int_equal(l.breaker.failure_threshold, shipped.breaker.failure_threshold);
    assert_int_equal(l.breaker.cooldown_ms, 30'000);
    assert_int_equal(l.breaker.window_ms, 60'000);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_spends_and_refills),
        cmocka_unit_test(test_backoff_table_at_jitter_bounds),
        cmocka_unit_test(test_backoff_seeded_jitter_is_deterministic),
        cmocka_unit_test(test_budget_exhaustion_and_refill),
        cmocka_unit_test(test_breaker_opens_fails_fast_half_opens_and_closes),
        cmocka_unit_test(test_breaker_failed_trial_reopens),
        cmocka_unit_test(test_retry_after_is_honoured_and_capped),
        cmocka_unit_test(test_attempt_timeout_is_the_policy_budget),
        cmocka_unit_test(test_never_retried),
        cmocka_unit_test(test_capped_and_unguarded),
        cmocka_unit_test(test_no_peer_waits_for_one),
        cmocka_unit_test(test_cancel_and_not_wanted),
        cmocka_unit_test(test_reload_changes_the_base_delay_for_new_requests),
        cmocka_unit_test(test_retry_after_header_parsing),
        cmocka_unit_test(test_bad_limits_fall_back),
        cmocka_unit_test(test_not_applied_is_sent_again_to_the_new_leader),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
