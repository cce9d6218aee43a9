// The leader's clock for TTL checks (store/services.h): when the earliest
// TTL deadline of a passing or warning check has passed by this node's wall
// clock and this node leads, propose one noop carrying that clock, so the
// check turns critical at that entry even when nothing else is written.
// One tick in flight at a time; a follower looks again within a second, so
// a new leader takes over the duty.
//
// Under the supervisor (issue 7) it is the task "ttl_checks": a tick the
// leader could not commit (a full disk, an I/O error, no memory) stops the
// ticker and is reported as a failure, and recovery.lua decides when it
// ticks again (immediate, backoff, or a breaker that an operator sees in
// `rampartctl breaker list`); a committed tick is a success. Losing the
// leadership is not a failure: that is the next leader's duty.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

namespace rampart::resilience {
class Supervisor;
}

namespace rampart::store {

class Store;

class CheckTicker {
public:
    CheckTicker(uv_loop_t* loop, Store& store);
    CheckTicker(const CheckTicker&) = delete;
    CheckTicker& operator=(const CheckTicker&) = delete;

    // The catalog may have changed (an apply, a restore): re-read its
    // earliest deadline. Cheap when it did not move.
    void rearm();
    // Stop for good (the store is closing); the handle closes on the loop.
    void close();
    // Run as the supervisor's task "ttl_checks" from now on (the
    // supervisor outlives the ticker, or close() comes first).
    bool supervise(resilience::Supervisor& supervisor, std::string* error);

private:
    static void cb_timer(uv_timer_t* timer);
    void fire();
    void arm(uint64_t deadline_ms, uint64_t now_ms);
    void tick_done(int status);

    Store& store_;
    uv_timer_t timer_{};
    bool closed_ = false;
    bool in_flight_ = false;
    uint64_t armed_for_ = 0;  // the deadline the timer was set for
    resilience::Supervisor* supervisor_ = nullptr;
    uint64_t task_ = 0;
    bool halted_ = false;  // a failed tick stopped it until the supervisor restarts it
};

// Wall-clock milliseconds since the epoch: the leader's clock in entries.
uint64_t wall_clock_ms();

}  // namespace rampart::store
