// A circuit breaker: closed (calls go ahead) → open after `failure_threshold`
// failures within `window_ms` (calls refused at once) → half-open once
// `cooldown_ms` has passed (one trial at a time) → closed on the trial's
// success, open again on its failure. An operator may reset it to closed.
//
// Pure mechanics on a caller-supplied clock reading (Clock::now_ms()), so a
// FakeClock drives it in tests. The thresholds come from the policies; the
// consumers (the peer client per peer, the supervisor per task) own one each.
#pragma once

#include <cstdint>
#include <deque>

namespace rampart::resilience {

struct BreakerSettings {
    uint32_t failure_threshold = 5;  // failures within the window that open it (≥ 1)
    uint64_t window_ms = 60'000;
    uint64_t cooldown_ms = 30'000;  // open → half-open
};

enum class BreakerState { Closed, Open, HalfOpen };
const char* breaker_state_name(BreakerState state);  // "closed", "open", "half_open"

class CircuitBreaker {
public:
    explicit CircuitBreaker(BreakerSettings settings = {}) : settings_(settings) {}

    // May a call go ahead now? Closed: yes. Open: no, until the cool-down has
    // passed; then half-open, and yes for one trial until it reports back.
    bool allow(uint64_t now_ms);
    void record_success(uint64_t now_ms);
    void record_failure(uint64_t now_ms);
    // Open now, whatever the count (a policy decided so).
    void trip(uint64_t now_ms);
    void reset();

    // Open reads as HalfOpen once the cool-down has passed.
    BreakerState state(uint64_t now_ms) const;
    uint32_t failures_in_window(uint64_t now_ms) const;
    // When an open breaker lets the next trial through (0 unless open).
    uint64_t retry_at_ms() const { return state_ == BreakerState::Closed ? 0 : opened_at_ + settings_.cooldown_ms; }
    uint64_t times_opened() const { return times_opened_; }

    // New thresholds (a policy reload); the state and recent failures stay.
    void configure(BreakerSettings settings) { settings_ = settings; }
    const BreakerSettings& settings() const { return settings_; }

private:
    void open(uint64_t now_ms);
    void forget_old(uint64_t now_ms);
    bool in_window(uint64_t failed_at, uint64_t now_ms) const;

    BreakerSettings settings_;
    BreakerState state_ = BreakerState::Closed;
    uint64_t opened_at_ = 0;
    bool trial_in_flight_ = false;
    uint64_t trial_started_at_ = 0;
    uint64_t times_opened_ = 0;
    std::deque<uint64_t> failures_;  // times of recent failures, oldest first
};

}  // namespace rampart::resilience
