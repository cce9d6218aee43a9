// A libuv timer for the membership objects (joiner, leader's manager): it
// lives on the heap because uv_close() finishes on a later loop turn, after
// its owner may be gone. close() (or the destructor) stops it for good.
#pragma once

#include <uv.h>

#include <memory>

namespace rampart::cluster {

class MembershipTimer {
public:
    MembershipTimer(uv_loop_t* loop, void* data) : timer_(std::make_unique<uv_timer_t>()) {
        uv_timer_init(loop, timer_.get());
        timer_->data = data;
    }
    ~MembershipTimer() { close(); }
    MembershipTimer(const MembershipTimer&) = delete;
    MembershipTimer& operator=(const MembershipTimer&) = delete;

    void start(uv_timer_cb cb, uint64_t timeout_ms, uint64_t repeat_ms) {
        if (timer_) uv_timer_start(timer_.get(), cb, timeout_ms, repeat_ms);
    }
    void close() {
        if (!timer_) return;
        uv_timer_stop(timer_.get());
        uv_close(reinterpret_cast<uv_handle_t*>(timer_.release()),
                 [](uv_handle_t* h) { std::unique_ptr<uv_timer_t> gone(reinterpret_cast<uv_timer_t*>(h)); });
    }

private:
    std::unique_ptr<uv_timer_t> timer_;
};

}  // namespace rampart::cluster
