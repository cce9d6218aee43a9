// The join loop on a FakeClock with a scripted attempt function: seeds are
// tried in order, a failed round waits exactly the backoff before the next
// one (which asks the seed source again), "refused" stops for good, an
// attempt that never answers times out, answers after stop() or after the
// loop is gone are ignored, and every attempt is counted by result.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cluster/join_loop.h"
#include "log.h"
#include "metrics/registry.h"
#include "resilience/clock.h"

// cmocka last: its fail() macro clashes with the C++ library.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart;
using namespace rampart::cluster;
using Result = JoinOutcome::Result;

namespace {

// A scripted world: the seeds each round sees, and what each attempt on
// each seed answers (synchronously unless `hold` keeps the callback).
struct World {
    resilience::FakeClock clock{0};
    metrics::Registry registry;
    std::vector<Seed> seeds = {{"10.0.0.1:7701", "n1", "static"}, {"10.0.0.2:7701", "n2", "srv"}};
    std::string seed_error;
    int resolutions = 0;
    std::vector<std::string> tried;  // "round:address"
    std::vector<int> backoff_rounds;
    // Answer for an address, per call; the default is retryable.
    std::function<JoinOutcome(const std::string&)> answer = [](const std::string&) {
        return JoinOutcome::retryable("connection refused");
    };
    bool hold = false;  // keep the attempt's callback instead of answering
    std::vector<std::function<void(JoinOutcome)>> held;
    std::unique_ptr<JoinLoop> loop;

    explicit World(uint64_t attempt_timeout_ms = 10000) {
        loop = std::make_unique<JoinLoop>(
            clock,
            [this](std::function<void(const SeedList&)> done) {
                ++resolutions;
                done(SeedList{seeds, seed_error});
            },
            [this](const Seed& seed, std::function<void(JoinOutcome)> done) {
                tried.push_back(std::to_string(loop->rounds()) + ":" + seed.address);
                if (hold) return held.push_back(std::move(done));
                done(answer(seed.address));
            },
            [this](int round) {
                backoff_rounds.push_back(round);
                return static_cast<uint64_t>(100 * round);  // 100, 200, 300 ms ...
            },
            &registry, JoinLoop::Settings{attempt_timeout_ms});
    }
    double attempts(const char* result) const { return registry.find("rampart_join_attempts_total")->value({result}); }
};

void quiet_logs() {
    log::Settings s;
    s.level = log::Level::Error;  // rounds log warnings; keep test output readable
    log::configure(s);
}

void test_joins_through_the_first_seed_that_answers(void**) {
    World w;
    w.answer = [](const std::string& a) {
        return a == "10.0.0.2:7701" ? JoinOutcome::joined("ok") : JoinOutcome::retryable("connection refused");
    };
    w.loop->start();
    assert_int_equal(static_cast<int>(w.loop->state()), static_cast<int>(JoinLoop::State::Joined));
    assert_int_equal(w.tried.size(), 2);
    assert_string_equal(w.tried[0].c_str(), "1:10.0.0.1:7701");
    assert_string_equal(w.tried[1].c_str(), "1:10.0.0.2:7701");
    assert_string_equal(w.loop->joined_through().name.c_str(), "n2");
    assert_true(w.attempts("retryable") == 1 && w.attempts("joined") == 1);
    assert_int_equal(w.clock.pending_timers(), 0);  // nothing left running
}

// Round n fails, waits exactly backoff(n), and the next round asks the
// seed source again before trying the seeds in the same order.
void test_retries_after_the_backoff_and_rediscovers(void**) {
    World w;
    int calls = 0;
    w.answer = [&calls](const std::string&) {
        return ++calls == 5 ? JoinOutcome::joined("ok") : JoinOutcome::retryable("timeout");
    };
    w.loop->start();
    assert_int_equal(w.loop->rounds(), 1);
    assert_int_equal(w.tried.size(), 2);
    assert_int_equal(w.clock.next_due_in(), 100);  // backoff(1)
    w.clock.advance(99);
    assert_int_equal(w.loop->rounds(), 1);
    w.clock.advance(1);
    assert_int_equal(w.loop->rounds(), 2);
    assert_int_equal(w.resolutions, 2);
    assert_int_equal(w.clock.next_due_in(), 200);                         // backoff(2)
    w.seeds.insert(w.seeds.begin(), Seed{"10.0.0.9:7701", "n9", "srv"});  // DNS now has another record
    w.clock.advance(200);
    assert_int_equal(w.loop->rounds(), 3);
    assert_int_equal(static_cast<int>(w.loop->state()), static_cast<int>(JoinLoop::State::Joined));
    std::vector<std::string> expected = {"1:10.0.0.1:7701", "1:10.0.0.2:7701", "2:10.0.0.1:7701", "2:10.0.0.2:7701",
                                         "3:10.0.0.9:7701"};
    assert_true(w.tried == expected);
    assert_true(w.backoff_rounds == std::vector<int>({1, 2}));
    assert_true(w.attempts("retryable") == 4 && w.attempts("joined") == 1);
    w.clock.advance(3600 * 1000);
    assert_int_equal(w.tried.size(), 5);  // joined: no more attempts
}

// A bad token is final: no further seed, no further round.
void test_refused_stops_for_good(void**) {
    World w;
    w.answer = [](const std::string&) { return JoinOutcome::refused("join token rejected (401)"); };
    bool finished = false;
    w.loop->on_finished([&finished](const JoinOutcome& o, const Seed& seed) {
        finished = o.result == Result::Refused && seed.address == "10.0.0.1:7701";
    });
    w.loop->start();
    assert_true(finished);
    assert_int_equal(static_cast<int>(w.loop->state()), static_cast<int>(JoinLoop::State::Refused));
    w.clock.advance(3600 * 1000);
    assert_int_equal(w.tried.size(), 1);
    assert_true(w.attempts("refused") == 1 && w.attempts("retryable") == 0);
    assert_int_equal(w.clock.pending_timers(), 0);
}

// No seeds (DNS has no records yet): the round still ends and retries,
// and seeds that appear later are found.
void test_no_seeds_yet_then_some(void**) {
    World w;
    w.seeds.clear();
    w.seed_error = "SRV discovery: no SRV records for _rampart._tcp.example";
    w.answer = [](const std::string&) { return JoinOutcome::joined("ok"); };
    w.loop->start();
    assert_int_equal(w.tried.size(), 0);
    assert_int_equal(static_cast<int>(w.loop->state()), static_cast<int>(JoinLoop::State::Running));
    w.clock.advance(100);
    w.clock.advance(200);
    assert_int_equal(w.loop->rounds(), 3);
    w.seeds = {{"10.0.0.3:7701", "n3", "srv"}};
    w.seed_error.clear();
    w.clock.advance(300);
    assert_int_equal(static_cast<int>(w.loop->state()), static_cast<int>(JoinLoop::State::Joined));
    assert_int_equal(w.tried.size(), 1);
    assert_true(w.attempts("joined") == 1);
}

// An attempt that never answers times out as retryable; its late answer
// is ignored.
void test_attempt_timeout_and_late_answer(void**) {
    World w(/*attempt_timeout_ms=*/1000);
    w.hold = true;
    w.loop->start();
    assert_int_equal(w.tried.size(), 1);
    w.clock.advance(999);
    assert_int_equal(w.tried.size(), 1);
    w.clock.advance(1);  // the first seed's attempt times out: the second starts
    assert_int_equal(w.tried.size(), 2);
    assert_true(w.attempts("retryable") == 1);
    w.held[0](JoinOutcome::joined("too late"));  // ignored
    assert_int_equal(static_cast<int>(w.loop->state()), static_cast<int>(JoinLoop::State::Running));
    assert_true(w.attempts("joined") == 0);
    w.held[1](JoinOutcome::joined("in time"));
    assert_int_equal(static_cast<int>(w.loop->state()), static_cast<int>(JoinLoop::State::Joined));
    w.held[1](JoinOutcome::retryable("a second answer"));  // ignored too
    assert_true(w.attempts("joined") == 1 && w.attempts("retryable") == 1);
}

// Shutdown while waiting for the next round, and while an attempt is in
// flight: nothing more happens, and a late answer is ignored.
void test_stop_ends_everything(void**) {
    World w;
    w.loop->start();
    assert_int_equal(w.clock.pending_timers(), 1);
    w.loop->stop();
    assert_int_equal(static_cast<int>(w.loop->state()), static_cast<int>(JoinLoop::State::Stopped));
    w.clock.advance(3600 * 1000);
    assert_int_equal(w.tried.size(), 2);

    World held;
    held.hold = true;
    held.loop->start();
    held.loop->stop();
    held.held[0](JoinOutcome::joined("after stop"));
    assert_int_equal(static_cast<int>(held.loop->state()), static_cast<int>(JoinLoop::State::Stopped));
    assert_true(held.attempts("joined") == 0);
    assert_int_equal(held.clock.pending_timers(), 0);
}

// The loop is destroyed with an attempt and a seed lookup outstanding:
// their callbacks arrive later and must not touch it.
void test_callbacks_after_destruction(void**) {
    resilience::FakeClock clock(0);
    std::function<void(const SeedList&)> pending_seeds;
    std::function<void(JoinOutcome)> pending_attempt;
    auto make = [&] {
        return std::make_unique<JoinLoop>(
            clock, [&](std::function<void(const SeedList&)> done) { pending_seeds = std::move(done); },
            [&](const Seed&, std::function<void(JoinOutcome)> done) { pending_attempt = std::move(done); },
            [](int) { return uint64_t{100}; }, nullptr);
    };
    auto loop = make();
    loop->start();
    loop.reset();
    pending_seeds(SeedList{{{"10.0.0.1:7701", "", "static"}}, ""});  // no crash, nothing happens

    loop = make();
    loop->start();
    pending_seeds(SeedList{{{"10.0.0.1:7701", "", "static"}}, ""});
    assert_true(static_cast<bool>(pending_attempt));
    loop.reset();
    pending_attempt(JoinOutcome::joined("after destruction"));
    assert_int_equal(clock.pending_timers(), 0);
}

}  // namespace

int main() {
    quiet_logs();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_joins_through_the_first_seed_that_answers),
        cmocka_unit_test(test_retries_after_the_backoff_and_rediscovers),
        cmocka_unit_test(test_refused_stops_for_good),
        cmocka_unit_test(test_no_seeds_yet_then_some),
        cmocka_unit_test(test_attempt_timeout_and_late_answer),
        cmocka_unit_test(test_stop_ends_everything),
        cmocka_unit_test(test_callbacks_after_destruction),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
