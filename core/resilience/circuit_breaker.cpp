#include "resilience/circuit_breaker.h"

#include <algorithm>

namespace rampart::resilience {

const char* breaker_state_name(BreakerState state) {
    switch (state) {
        case BreakerState::Closed: return "closed";
        case BreakerState::Open: return "open";
        case BreakerState::HalfOpen: return "half_open";
    }
    return "closed";
}

bool CircuitBreaker::allow(uint64_t now_ms) {
    switch (state(now_ms)) {
        case BreakerState::Closed: return true;
        case BreakerState::Open: return false;
        case BreakerState::HalfOpen:
            // One trial at a time; a trial that never reported back (its caller
            // gave up) does not hold the breaker half-open for ever.
            if (trial_in_flight_ && now_ms < trial_started_at_ + settings_.cooldown_ms) return false;
            state_ = BreakerState::HalfOpen;
            trial_in_flight_ = true;
            trial_started_at_ = now_ms;
            return true;
    }
    return false;
}

void CircuitBreaker::record_success(uint64_t now_ms) {
    (void)now_ms;
    // Only a trial closes an open breaker; a late success of a call admitted
    // before it opened proves nothing about the peer now.
    if (state_ == BreakerState::Open) return;
    state_ = BreakerState::Closed;
    trial_in_flight_ = false;
    failures_.clear();
}

void CircuitBreaker::record_failure(uint64_t now_ms) {
    if (state_ == BreakerState::HalfOpen) {
        open(now_ms);  // the trial failed: another full cool-down
        return;
    }
    if (state_ == BreakerState::Open) return;
    failures_.push_back(now_ms);
    forget_old(now_ms);
    if (failures_.size() >= std::max<uint32_t>(settings_.failure_threshold, 1)) open(now_ms);
}

void CircuitBreaker::trip(uint64_t now_ms) {
    if (state_ != BreakerState::Open) open(now_ms);
}

void CircuitBreaker::reset() {
    state_ = BreakerState::Closed;
    trial_in_flight_ = false;
    failures_.clear();
}

BreakerState CircuitBreaker::state(uint64_t now_ms) const {
    if (state_ == BreakerState::Open && now_ms >= opened_at_ + settings_.cooldown_ms) return BreakerState::HalfOpen;
    return state_;
}

uint32_t CircuitBreaker::failures_in_window(uint64_t now_ms) const {
    const uint64_t since = now_ms > settings_.window_ms ? now_ms - settings_.window_ms : 0;
    return static_cast<uint32_t>(
        std::count_if(failures_.begin(), failures_.end(), [&](uint64_t t) { return t > since; }));
}

bool CircuitBreaker::in_window(uint64_t failed_at, uint64_t now_ms) const {
    return now_ms < failed_at + settings_.window_ms;
}

void CircuitBreaker::open(uint64_t now_ms) {
    state_ = BreakerState::Open;
    opened_at_ = now_ms;
    trial_in_flight_ = false;
    failures_.clear();
    ++times_opened_;
}

void CircuitBreaker::forget_old(uint64_t now_ms) {
    while (!failures_.empty() && !in_window(failures_.front(), now_ms)) failures_.pop_front();
    // Only the newest `threshold` failures can ever matter.
    while (failures_.size() > std::max<uint32_t>(settings_.failure_threshold, 1)) failures_.pop_front();
}

}  // namespace rampart::resilience
