#include "store/disk_watchdog.h"

#include <algorithm>
#include <utility>

#include "cluster/raft_adapter.h"
#include "log.h"
#include "metrics/registry.h"
#include "store/store.h"

namespace rampart::store {

// ---- the decision -------------------------------------------------------------

uint64_t DiskGuard::resume_level(uint64_t floor) {
    constexpr uint64_t kMinMargin = uint64_t{1} << 20;
    return floor + std::max(floor / 8, kMinMargin);
}

DiskGuard::Decision DiskGuard::observe(uint64_t free_bytes, uint64_t floor, bool leader, uint64_t now_ms) {
    Decision d;
    if (!low_ && floor > 0 && free_bytes < floor) {
        low_ = true;
        transfer_pending_ = false;
        d.transition = Transition::Low;
    } else if (low_ && (floor == 0 || free_bytes >= resume_level(floor))) {
        low_ = false;
        d.transition = Transition::Recovered;
    }
    if (low_ && leader && (!transfer_pending_ || now_ms - last_transfer_ms_ >= kTransferRetryMs)) {
        d.transfer = true;
        transfer_pending_ = true;
        last_transfer_ms_ = now_ms;
    }
    // A follower that wins an election later must hand over at once.
    if (!leader) transfer_pending_ = false;
    return d;
}

// ---- the timer ----------------------------------------------------------------

// The timer and the statfs request outlive the watchdog when it is closed
// while a statfs runs on the thread pool: they free themselves once both are
// done.
struct DiskWatchdog::Handles {
    uv_timer_t timer{};
    uv_fs_t fs{};
    DiskWatchdog* owner = nullptr;
    bool fs_busy = false;
    bool timer_closed = false;

    void maybe_free() {
        if (timer_closed && !fs_busy) std::unique_ptr<Handles>(this).reset();
    }
};

DiskWatchdog::DiskWatchdog(uv_loop_t* loop, std::string dir, std::function<int64_t()> floor, Store& store,
                           metrics::Registry* registry, uint64_t interval_ms)
    : dir_(std::move(dir)),
      floor_(std::move(floor)),
      store_(store),
      interval_ms_(interval_ms),
      handles_(std::make_unique<Handles>().release()) {
    handles_->owner = this;
    uv_timer_init(loop, &handles_->timer);
    handles_->timer.data = handles_;
    if (registry != nullptr) {
        free_gauge_ = registry->gauge("rampart_disk_free_bytes",
                                      "Bytes available to the daemon on node.data_dir's file system", {});
        floor_gauge_ = registry->gauge("rampart_disk_min_free_bytes", "The free-space floor (node.min_free_bytes)", {});
        refused_gauge_ = registry->gauge("rampart_disk_writes_refused",
                                         "1 while writes are refused because free disk space is below the floor", {});
        transitions_ = registry->counter("rampart_disk_low_transitions_total",
                                         "Changes of the disk-space watchdog's state, by the state entered", {"state"});
    }
}

DiskWatchdog::~DiskWatchdog() { close(); }

void DiskWatchdog::start() {
    check();
    uv_timer_start(&handles_->timer, cb_timer, interval_ms_, interval_ms_);
}

void DiskWatchdog::close() {
    if (handles_ == nullptr) return;
    Handles* h = std::exchange(handles_, nullptr);
    h->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&h->timer), [](uv_handle_t* t) {
        auto* hs = static_cast<Handles*>(t->data);
        hs->timer_closed = true;
        hs->maybe_free();
    });
}

void DiskWatchdog::cb_timer(uv_timer_t* t) {
    auto* h = static_cast<Handles*>(t->data);
    if (h->owner != nullptr) h->owner->check();
}

void DiskWatchdog::check() {
    if (handles_ == nullptr || handles_->fs_busy) return;  // a slow disk: one check at a time
    handles_->fs.data = handles_;
    if (uv_fs_statfs(handles_->timer.loop, &handles_->fs, dir_.c_str(), cb_statfs) == 0) handles_->fs_busy = true;
}

void DiskWatchdog::cb_statfs(uv_fs_t* req) {
    auto* h = static_cast<Handles*>(req->data);
    h->fs_busy = false;
    bool ok = req->result == 0 && req->ptr != nullptr;
    uint64_t free_bytes = 0;
    if (ok) {
        const auto* st = static_cast<const uv_statfs_t*>(req->ptr);
        // f_bavail, not f_bfree: the blocks reserved for root are not ours
        // to count on, even when the daemon runs as root.
        free_bytes = st->f_bavail * st->f_bsize;
    }
    int err = static_cast<int>(req->result);
    uv_fs_req_cleanup(req);
    DiskWatchdog* self = h->owner;
    if (self == nullptr) {
        h->maybe_free();
        return;
    }
    if (!ok) {
        // Keep the last state: a failing statfs says nothing about space.
        if (!self->statfs_failing_)
            log::warn("disk watchdog: cannot read free space", {{"path", self->dir_}, {"error", uv_strerror(err)}});
        self->statfs_failing_ = true;
        return;
    }
    self->statfs_failing_ = false;
    self->observed(free_bytes);
}

void DiskWatchdog::observed(uint64_t free_bytes) {
    free_bytes_ = free_bytes;
    uint64_t floor = static_cast<uint64_t>(std::max<int64_t>(0, floor_()));
    DiskGuard::Decision d = guard_.observe(free_bytes, floor, store_.is_leader(), uv_now(handles_->timer.loop));
    if (free_gauge_ != nullptr) {
        free_gauge_->set({}, static_cast<double>(free_bytes));
        floor_gauge_->set({}, static_cast<double>(floor));
        refused_gauge_->set({}, guard_.low() ? 1 : 0);
    }
    auto fb = static_cast<long long>(free_bytes);
    auto fl = static_cast<long long>(floor);
    if (d.transition == DiskGuard::Transition::Low) {
        store_.refuse_writes(true);
        if (transitions_ != nullptr) transitions_->add({"low"}, 1);
        log::error("disk space below node.min_free_bytes: refusing writes (507) until space returns",
                   {{"path", dir_}, {"free_bytes", fb}, {"min_free_bytes", fl}});
    } else if (d.transition == DiskGuard::Transition::Recovered) {
        store_.refuse_writes(false);
        if (transitions_ != nullptr) transitions_->add({"ok"}, 1);
        log::info("disk space back above the floor: accepting writes again",
                  {{"path", dir_},
                   {"free_bytes", fb},
                   {"min_free_bytes", fl},
                   {"resume_bytes", static_cast<long long>(DiskGuard::resume_level(floor))}});
    }
    if (!d.transfer) return;
    if (transfer_ && !transfer_()) {
        if (d.transition == DiskGuard::Transition::Low)
            log::warn("disk space low: recovery.on_disk_full says stay: keeping leadership; refusing writes only",
                      {{"path", dir_}, {"free_bytes", fb}});
        return;
    }
    int rv = store_.transfer_leadership();
    if (rv == 0) {
        log::warn("disk space low: handing leadership to another voter", {{"path", dir_}, {"free_bytes", fb}});
    } else if (rv == RAMPART_RAFT_INVALID) {
        // One voter: nobody to hand over to, so the node only refuses.
        if (d.transition == DiskGuard::Transition::Low)
            log::warn("disk space low: no other voter to hand leadership to; refusing writes only",
                      {{"path", dir_}, {"free_bytes", fb}});
    } else {
        log::warn("disk space low: leadership transfer failed; will retry",
                  {{"path", dir_}, {"error", rampart_raft_status_name(rv)}});
    }
}

}  // namespace rampart::store
