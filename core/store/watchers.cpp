#include "store/watchers.h"

#include <utility>
#include <vector>

namespace rampart::store {

Watchers::Watchers(uv_loop_t* loop) : loop_(loop) {
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
}

void Watchers::add(uint64_t index, uint64_t wait_ms, std::function<void()> done) {
    if (closed_) {
        done();
        return;
    }
    uint64_t id = next_id_++;
    Watch& w = watches_[id];
    w.done = std::move(done);
    w.by_index = by_index_.emplace(index, id);
    w.by_deadline = by_deadline_.emplace(uv_now(loop_) + wait_ms, id);
    arm();
}

void Watchers::wake(uint64_t id) {
    auto it = watches_.find(id);
    by_index_.erase(it->second.by_index);
    by_deadline_.erase(it->second.by_deadline);
    ready_.push_back(std::move(it->second.done));
    watches_.erase(it);
}

void Watchers::notify(uint64_t index) {
    size_t before = ready_.size();
    while (!by_index_.empty() && by_index_.begin()->first < index) wake(by_index_.begin()->second);
    if (ready_.size() != before) arm();
}

void Watchers::wake_all() {
    while (!by_index_.empty()) wake(by_index_.begin()->second);
    arm();
}

void Watchers::close() {
    if (closed_) return;
    wake_all();
    closed_ = true;
    // Answer the woken now: the loop is winding down.
    std::vector<std::function<void()>> ready;
    ready.swap(ready_);
    for (auto& done : ready) done();
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

// One timer for all watchers: due at once when some are woken, else at
// the earliest deadline.
void Watchers::arm() {
    if (closed_) return;
    if (!ready_.empty()) {
        uv_timer_start(&timer_, cb_timer, 0, 0);
    } else if (!by_deadline_.empty()) {
        uint64_t now = uv_now(loop_);
        uint64_t due = by_deadline_.begin()->first;
        uv_timer_start(&timer_, cb_timer, due > now ? due - now : 0, 0);
    } else {
        uv_timer_stop(&timer_);
    }
}

void Watchers::cb_timer(uv_timer_t* timer) { static_cast<Watchers*>(timer->data)->run_due(); }

void Watchers::run_due() {
    uint64_t now = uv_now(loop_);
    while (!by_deadline_.empty() && by_deadline_.begin()->first <= now) wake(by_deadline_.begin()->second);
    std::vector<std::function<void()>> ready;
    ready.swap(ready_);
    for (auto& done : ready) done();
    arm();
}

}  // namespace rampart::store
