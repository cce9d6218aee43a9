#include "store/check_ticker.h"

#include <algorithm>
#include <chrono>

#include "resilience/supervisor.h"
#include "store/store.h"

namespace rampart::store {
namespace {

// How often a node looks again while a deadline has passed but it cannot
// tick (a follower, a tick that failed): a new leader takes over within it.
constexpr uint64_t kRetryMs = 1000;

}  // namespace

uint64_t wall_clock_ms() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

CheckTicker::CheckTicker(uv_loop_t* loop, Store& store) : store_(store) {
    uv_timer_init(loop, &timer_);
    timer_.data = this;
    // Never what keeps the loop alive.
    uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
}

void CheckTicker::close() {
    if (closed_) return;
    closed_ = true;
    if (supervisor_ != nullptr) supervisor_->remove(task_);
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

bool CheckTicker::supervise(resilience::Supervisor& supervisor, std::string* error) {
    task_ = supervisor.add({"ttl_checks",
                            [this](std::string*) {
                                halted_ = false;
                                armed_for_ = 0;  // look afresh
                                rearm();
                                return true;
                            }},
                           error);
    if (task_ == 0) return false;
    supervisor_ = &supervisor;
    supervisor.start(task_);
    return true;
}

void CheckTicker::tick_done(int status) {
    in_flight_ = false;
    if (supervisor_ == nullptr || closed_) return;
    if (status == RAMPART_RAFT_OK) return supervisor_->succeeded(task_);
    // Not leading (any more), or closing: nothing failed here.
    if (status == RAMPART_RAFT_NOT_LEADER || status == RAMPART_RAFT_LEADERSHIP_LOST || status == RAMPART_RAFT_SHUTDOWN)
        return;
    halted_ = true;
    uv_timer_stop(&timer_);
    supervisor_->failed(task_, std::string("TTL check tick not committed: ") + rampart_raft_status_name(status));
}

void CheckTicker::rearm() {
    if (closed_ || halted_) return;
    uint64_t deadline = store_.state().version()->catalog.next_deadline_ms;
    if (deadline == armed_for_ && uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_))) return;
    arm(deadline, wall_clock_ms());
}

void CheckTicker::arm(uint64_t deadline_ms, uint64_t now_ms) {
    armed_for_ = deadline_ms;
    if (deadline_ms == kNoDeadline) {
        uv_timer_stop(&timer_);
        return;
    }
    uint64_t delay = deadline_ms > now_ms ? std::min(deadline_ms - now_ms, kRetryMs) : 0;
    uv_timer_start(&timer_, cb_timer, delay, 0);
}

void CheckTicker::cb_timer(uv_timer_t* timer) { static_cast<CheckTicker*>(timer->data)->fire(); }

void CheckTicker::fire() {
    if (closed_ || halted_) return;
    uint64_t deadline = store_.state().version()->catalog.next_deadline_ms;
    uint64_t now = wall_clock_ms();
    if (deadline == kNoDeadline) return arm(deadline, now);
    if (deadline > now) return arm(deadline, now);
    if (in_flight_ || !store_.is_leader()) {
        armed_for_ = deadline;
        uv_timer_start(&timer_, cb_timer, kRetryMs, 0);
        return;
    }
    Command tick;
    tick.meta.leader_ms = now;
    tick.body = Noop{};
    in_flight_ = true;
    armed_for_ = deadline;
    // The apply re-arms through Store::catalog_applied; this timer is the
    // retry should the tick fail.
    uv_timer_start(&timer_, cb_timer, kRetryMs, 0);
    store_.write(tick, [this](int status, uint64_t, std::unique_ptr<Result>) { tick_done(status); });
}

}  // namespace rampart::store
