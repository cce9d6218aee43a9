// The leader's clock for TTL checks (store/services.h): when the earliest
// TTL deadline of a passing or warning check has passed by this node's wall
// clock and this node leads, propose one noop carrying that clock, so the
// check turns critical at that entry even when nothing else is written.
// One tick in flight at a time; a follower (or a failed tick) looks again
// within a second, so a new leader takes over the duty.
#pragma once

#include <uv.h>

#include <cstdint>

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

private:
    static void cb_timer(uv_timer_t* timer);
    void fire();
    void arm(uint64_t deadline_ms, uint64_t now_ms);

    Store& store_;
    uv_timer_t timer_{};
    bool closed_ = false;
    bool in_flight_ = false;
    uint64_t armed_for_ = 0;  // the deadline the timer was set for
};

// Wall-clock milliseconds since the epoch: the leader's clock in entries.
uint64_t wall_clock_ms();

}  // namespace rampart::store
