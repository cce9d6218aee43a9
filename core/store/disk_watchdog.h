// The disk-space watchdog (issue 5, "Engine"): libraft 0.22.1 keeps a leader
// that can no longer persist, retries failed segment writes forever and lets
// unwritten entries pile up in RAM. So the node checks the free space of
// node.data_dir's file system itself, and below a floor (node.min_free_bytes)
// it refuses writes with 507 before they reach the engine, and a leader hands
// leadership to a voter that still has room. Above the floor plus a margin
// (hysteresis, so a file system hovering at the floor does not flap) writes
// resume.
//
// DiskGuard is the decision logic alone (unit-tested); DiskWatchdog runs it
// from a libuv timer, with the statfs call on the thread pool.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace rampart::metrics {
class Metric;
class Registry;
}  // namespace rampart::metrics

namespace rampart::store {

class Store;

class DiskGuard {
public:
    enum class Transition { None, Low, Recovered };
    struct Decision {
        Transition transition = Transition::None;
        bool transfer = false;  // this node leads and should hand over now
    };

    // Free space needed to leave the low state: the floor plus an eighth of
    // it, at least 1 MiB.
    static uint64_t resume_level(uint64_t floor);

    // One observation: `free_bytes` available under data_dir, the floor in
    // force (0 = watchdog off: never low), whether this node leads, and a
    // monotonic clock. While low, a leader is asked to transfer at once and
    // then again every `retry_ms` (a transfer can fail, or the node can win
    // an election again).
    Decision observe(uint64_t free_bytes, uint64_t floor, bool leader, uint64_t now_ms);

    bool low() const { return low_; }

    static constexpr uint64_t kTransferRetryMs = 5000;

private:
    bool low_ = false;
    bool transfer_pending_ = false;
    uint64_t last_transfer_ms_ = 0;
};

class DiskWatchdog {
public:
    static constexpr uint64_t kIntervalMs = 1000;

    // `floor` is read at every check, so a reloaded node.min_free_bytes takes
    // effect at the next one. `registry` may be null.
    DiskWatchdog(uv_loop_t* loop, std::string dir, std::function<int64_t()> floor, Store& store,
                 metrics::Registry* registry, uint64_t interval_ms = kIntervalMs);
    ~DiskWatchdog();
    DiskWatchdog(const DiskWatchdog&) = delete;
    DiskWatchdog& operator=(const DiskWatchdog&) = delete;

    // First check at once, then every interval.
    void start();
    // Stop checking; the object may be destroyed once the loop has run the
    // close callbacks (the handles are owned by a block that outlives it).
    void close();

    bool low() const { return guard_.low(); }
    uint64_t free_bytes() const { return free_bytes_; }
    // Asked before each leadership transfer the guard wants; false keeps
    // leadership (writes stay refused either way). Unset: always transfer.
    // The daemon asks recovery.on_disk_full.
    void set_transfer_decision(std::function<bool()> transfer) { transfer_ = std::move(transfer); }

private:
    struct Handles;
    static void cb_timer(uv_timer_t* t);
    static void cb_statfs(uv_fs_t* req);
    void check();
    void observed(uint64_t free_bytes);

    std::string dir_;
    std::function<int64_t()> floor_;
    std::function<bool()> transfer_;
    Store& store_;
    uint64_t interval_ms_;
    Handles* handles_;  // owned by itself: freed by its close callback
    DiskGuard guard_;
    uint64_t free_bytes_ = 0;
    bool statfs_failing_ = false;
    metrics::Metric* free_gauge_ = nullptr;
    metrics::Metric* floor_gauge_ = nullptr;
    metrics::Metric* refused_gauge_ = nullptr;
    metrics::Metric* transitions_ = nullptr;
};

}  // namespace rampart::store
