// Blocking reads (?index=N&wait=…): requests parked until the store's index
// passes N, a snapshot restore re-bases the state, their wait runs out, or
// the node shuts down. Callbacks never run inside the caller of notify():
// they are queued and run from the loop on the next turn, so the Raft
// engine's apply is never re-entered by a read.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>

namespace rampart::store {

class Watchers {
public:
    explicit Watchers(uv_loop_t* loop);
    Watchers(const Watchers&) = delete;
    Watchers& operator=(const Watchers&) = delete;

    // `done` runs once, on the loop, after the index passes `index` or
    // `wait_ms` elapses (whichever first).
    void add(uint64_t index, uint64_t wait_ms, std::function<void()> done);
    // The index is now `index`: wake every watcher waiting below it.
    void notify(uint64_t index);
    // Wake everyone (snapshot restore, shutdown).
    void wake_all();
    // Wake everyone and close the timer; add() then answers at once.
    void close();
    size_t size() const { return watches_.size(); }

private:
    struct Watch {
        std::function<void()> done;
        std::multimap<uint64_t, uint64_t>::iterator by_index;
        std::multimap<uint64_t, uint64_t>::iterator by_deadline;
    };

    void wake(uint64_t id);
    void arm();
    static void cb_timer(uv_timer_t* timer);
    void run_due();

    uv_loop_t* loop_;
    uv_timer_t timer_{};
    bool closed_ = false;
    uint64_t next_id_ = 1;
    std::unordered_map<uint64_t, Watch> watches_;
    std::multimap<uint64_t, uint64_t> by_index_;     // wait index -> id
    std::multimap<uint64_t, uint64_t> by_deadline_;  // loop ms -> id
    std::vector<std::function<void()>> ready_;       // woken, to run next turn
};

}  // namespace rampart::store
