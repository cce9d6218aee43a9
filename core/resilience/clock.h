// The clock behind every timer the resilience policies use (retry backoff,
// retry budgets, circuit breakers, the supervisor's restarts). Production
// runs LoopClock on the libuv loop; tests run FakeClock and move time by
// hand, so backoff sequences and breaker transitions are checked
// deterministically. The code under test is the same either way.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>

struct uv_loop_s;

namespace rampart::resilience {

// A one-shot timer. Destroying it cancels it; the callback never runs after
// the timer is gone.
class Timer {
public:
    virtual ~Timer() = default;
    virtual void start(uint64_t delay_ms) = 0;  // (re)arms; replaces a pending start
    virtual void stop() = 0;
    virtual bool pending() const = 0;
};

class Clock {
public:
    virtual ~Clock() = default;
    virtual uint64_t now_ms() const = 0;  // monotonic
    virtual std::unique_ptr<Timer> timer(std::function<void()> fire) = 0;
};

// uv_now() and uv_timer_t. Loop thread only.
class LoopClock final : public Clock {
public:
    explicit LoopClock(uv_loop_s* loop) : loop_(loop) {}
    uint64_t now_ms() const override;
    std::unique_ptr<Timer> timer(std::function<void()> fire) override;

private:
    uv_loop_s* loop_;
};

// Time stands still until advance(): then due timers fire in deadline order
// (ties in arming order), each seeing now_ms() at its own deadline. A timer
// armed by a callback fires in the same advance() if it falls due within it.
class FakeClock final : public Clock {
public:
    explicit FakeClock(uint64_t start_ms = 1'000'000) : now_(start_ms) {}
    ~FakeClock() override;
    uint64_t now_ms() const override { return now_; }
    std::unique_ptr<Timer> timer(std::function<void()> fire) override;

    void advance(uint64_t ms);
    size_t pending_timers() const { return queue_.size(); }
    // The delay until the next due timer (UINT64_MAX: none).
    uint64_t next_due_in() const;

private:
    class FakeTimer;
    friend class FakeTimer;
    using Key = std::pair<uint64_t, uint64_t>;  // deadline, arming sequence

    uint64_t now_;
    uint64_t sequence_ = 0;
    std::map<Key, FakeTimer*> queue_;
};

}  // namespace rampart::resilience
