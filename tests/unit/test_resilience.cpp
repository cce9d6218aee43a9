// The resilience foundation (core/resilience/): the fake clock's timers fire
// in deadline order and never after they are gone; the loop clock's timer
// fires on a real libuv loop; the circuit breaker moves closed → open →
// half-open → closed (or open again) exactly at its thresholds.
#include <uv.h>

#include <string>
#include <vector>

#include "resilience/circuit_breaker.h"
#include "resilience/clock.h"

// cmocka last: its fail() macro clashes with the C++ library.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart::resilience;

namespace {

void test_fake_clock_fires_in_deadline_order(void**) {
    FakeClock clock(0);
    std::vector<std::string> fired;
    auto late = clock.timer([&] { fired.push_back("late@" + std::to_string(clock.now_ms())); });
    auto early = clock.timer([&] { fired.push_back("early@" + std::to_string(clock.now_ms())); });
    late->start(300);
    early->start(100);
    assert_int_equal(clock.pending_timers(), 2);
    assert_int_equal(clock.next_due_in(), 100);
    clock.advance(99);
    assert_true(fired.empty());
    clock.advance(250);
    assert_int_equal(fired.size(), 2);
    assert_string_equal(fired[0].c_str(), "early@100");
    assert_string_equal(fired[1].c_str(), "late@300");
    assert_int_equal(clock.now_ms(), 349);
    assert_false(late->pending());
}

void test_fake_clock_rearm_stop_and_destroy(void**) {
    FakeClock clock(0);
    int ticks = 0;
    std::unique_ptr<Timer> ticker;
    ticker = clock.timer([&] {
        if (++ticks < 5) ticker->start(10);  // re-armed from its own callback
    });
    ticker->start(10);
    clock.advance(1000);
    assert_int_equal(ticks, 5);  // all five within one advance()
    int stopped = 0;
    auto t = clock.timer([&] { ++stopped; });
    t->start(5);
    t->stop();
    t->start(20);
    t->start(50);  // replaces the pending start
    clock.advance(30);
    assert_int_equal(stopped, 0);
    t.reset();  // destroyed while pending: never fires
    clock.advance(100);
    assert_int_equal(stopped, 0);
    assert_int_equal(clock.pending_timers(), 0);
}

void test_loop_clock_timer_on_a_real_loop(void**) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    {
        LoopClock clock(&loop);
        int fired = 0;
        uint64_t start = clock.now_ms();
        auto t = clock.timer([&] { ++fired; });
        auto never = clock.timer([&] { fired += 100; });
        t->start(20);
        never->start(10);
        never.reset();  // cancelled before it was due
        assert_true(t->pending());
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_int_equal(fired, 1);
        uv_update_time(&loop);
        assert_true(clock.now_ms() >= start + 20);
    }
    uv_run(&loop, UV_RUN_DEFAULT);  // the closes
    assert_int_equal(uv_loop_close(&loop), 0);
}

void test_breaker_opens_at_threshold_within_window(void**) {
    CircuitBreaker b({.failure_threshold = 3, .window_ms = 1000, .cooldown_ms = 500});
    uint64_t now = 10'000;
    b.record_failure(now);
    b.record_failure(now + 100);
    assert_int_equal(b.state(now + 100), BreakerState::Closed);
    assert_int_equal(b.failures_in_window(now + 100), 2);
    // The first failure ages out of the window: still closed after a third.
    b.record_failure(now + 1500);
    assert_int_equal(b.state(now + 1500), BreakerState::Closed);
    assert_int_equal(b.failures_in_window(now + 1500), 1);
    b.record_failure(now + 1600);
    b.record_failure(now + 1700);
    assert_int_equal(b.state(now + 1700), BreakerState::Open);
    assert_false(b.allow(now + 1700));
    assert_int_equal(b.retry_at_ms(), now + 2200);
    assert_int_equal(b.times_opened(), 1);
}

void test_breaker_half_open_trial(void**) {
    CircuitBreaker b({.failure_threshold = 1, .window_ms = 1000, .cooldown_ms = 500});
    b.record_failure(0 + 1);
    assert_false(b.allow(400));
    assert_int_equal(b.state(501), BreakerState::HalfOpen);
    assert_true(b.allow(501));   // the one trial
    assert_false(b.allow(502));  // nobody else meanwhile
    b.record_failure(600);       // the trial failed: a full cool-down again
    assert_int_equal(b.state(600), BreakerState::Open);
    assert_false(b.allow(1099));
    assert_true(b.allow(1100));
    b.record_success(1150);
    assert_int_equal(b.state(1150), BreakerState::Closed);
    assert_true(b.allow(1151));
    assert_int_equal(b.times_opened(), 2);
    assert_string_equal(breaker_state_name(b.state(1151)), "closed");
}

void test_breaker_lost_trial_and_late_success(void**) {
    CircuitBreaker b({.failure_threshold = 2, .window_ms = 1000, .cooldown_ms = 100});
    b.record_failure(0);
    b.record_failure(1);
    b.record_success(2);  // a call admitted before it opened: proves nothing
    assert_int_equal(b.state(2), BreakerState::Open);
    assert_true(b.allow(101));  // trial starts, never reports back
    assert_false(b.allow(150));
    assert_true(b.allow(201));  // a new trial after another cool-down
}

void test_breaker_trip_and_reset(void**) {
    CircuitBreaker b({.failure_threshold = 100, .window_ms = 1000, .cooldown_ms = 60'000});
    b.trip(5);
    assert_int_equal(b.state(6), BreakerState::Open);
    b.trip(7);  // already open: the cool-down does not restart
    assert_int_equal(b.retry_at_ms(), 60'005);
    b.reset();
    assert_int_equal(b.state(8), BreakerState::Closed);
    assert_true(b.allow(8));
    assert_int_equal(b.failures_in_window(8), 0);
    b.configure({.failure_threshold = 1, .window_ms = 10, .cooldown_ms = 10});
    b.record_failure(9);
    assert_int_equal(b.state(9), BreakerState::Open);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fake_clock_fires_in_deadline_order),
        cmocka_unit_test(test_fake_clock_rearm_stop_and_destroy),
        cmocka_unit_test(test_loop_clock_timer_on_a_real_loop),
        cmocka_unit_test(test_breaker_opens_at_threshold_within_window),
        cmocka_unit_test(test_breaker_half_open_trial),
        cmocka_unit_test(test_breaker_lost_trial_and_late_success),
        cmocka_unit_test(test_breaker_trip_and_reset),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
