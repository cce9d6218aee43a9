#include "resilience/clock.h"

#include <uv.h>

#include <limits>

namespace rampart::resilience {

namespace {

// The uv_timer_t lives on the heap until libuv has closed it: a Timer may be
// destroyed from inside its own callback or just before the loop ends.
class LoopTimer final : public Timer {
public:
    LoopTimer(uv_loop_t* loop, std::function<void()> fire) : handle_(new Handle) {
        uv_timer_init(loop, &handle_->timer);
        handle_->timer.data = handle_;
        handle_->fire = std::move(fire);
    }
    ~LoopTimer() override {
        uv_timer_stop(&handle_->timer);
        handle_->fire = nullptr;
        uv_close(
            reinterpret_cast<uv_handle_t*>(&handle_->timer),
            // The close callback owns the handle: libuv is done with it only now.
            [](uv_handle_t* h) { delete static_cast<Handle*>(h->data); });  // NOLINT(cppcoreguidelines-owning-memory)
    }
    void start(uint64_t delay_ms) override {
        uv_timer_start(
            &handle_->timer,
            [](uv_timer_t* t) {
                auto* h = static_cast<Handle*>(t->data);
                if (h->fire) h->fire();
            },
            delay_ms, 0);
    }
    void stop() override { uv_timer_stop(&handle_->timer); }
    bool pending() const override { return uv_is_active(reinterpret_cast<const uv_handle_t*>(&handle_->timer)); }

private:
    struct Handle {
        uv_timer_t timer;
        std::function<void()> fire;
    };
    Handle* handle_;
};

}  // namespace

uint64_t LoopClock::now_ms() const { return uv_now(loop_); }

std::unique_ptr<Timer> LoopClock::timer(std::function<void()> fire) {
    return std::make_unique<LoopTimer>(loop_, std::move(fire));
}

class FakeClock::FakeTimer final : public Timer {
public:
    FakeTimer(FakeClock* clock, std::function<void()> fire) : clock_(clock), fire_(std::move(fire)) {}
    ~FakeTimer() override { stop(); }
    void start(uint64_t delay_ms) override {
        stop();
        if (!clock_) return;
        key_ = {clock_->now_ + delay_ms, clock_->sequence_++};
        clock_->queue_[key_] = this;
        armed_ = true;
    }
    void stop() override {
        if (armed_ && clock_) clock_->queue_.erase(key_);
        armed_ = false;
    }
    bool pending() const override { return armed_; }

    void fire() {
        armed_ = false;
        fire_();
    }
    void orphan() {
        armed_ = false;
        clock_ = nullptr;
    }

private:
    FakeClock* clock_;
    std::function<void()> fire_;
    Key key_{};
    bool armed_ = false;
};

FakeClock::~FakeClock() {
    for (auto& [key, timer] : queue_) timer->orphan();
}

std::unique_ptr<Timer> FakeClock::timer(std::function<void()> fire) {
    return std::make_unique<FakeTimer>(this, std::move(fire));
}

void FakeClock::advance(uint64_t ms) {
    const uint64_t until = now_ + ms;
    while (!queue_.empty() && queue_.begin()->first.first <= until) {
        auto due = queue_.begin();
        FakeTimer* timer = due->second;
        now_ = due->first.first;
        queue_.erase(due);
        timer->fire();  // may re-arm, stop others or destroy itself
    }
    now_ = until;
}

uint64_t FakeClock::next_due_in() const {
    if (queue_.empty()) return std::numeric_limits<uint64_t>::max();
    return queue_.begin()->first.first - now_;
}

}  // namespace rampart::resilience
