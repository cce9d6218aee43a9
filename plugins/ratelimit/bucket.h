// Token-bucket and sliding-window arithmetic. Pure functions of the state
// and a millisecond clock passed in, so tests drive time by hand.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace ratelimit {

// The shape of a bucket: it holds at most `capacity` tokens and gains
// `per_ms` tokens per millisecond (limit / window).
struct Rate {
    double capacity = 1;
    double per_ms = 0;

    static Rate of(double limit, double window_s, double burst) {
        return Rate{burst, window_s > 0 ? limit / (window_s * 1000.0) : 0};
    }
    bool operator==(const Rate&) const = default;
};

// A bucket's state. A new bucket starts full.
struct Bucket {
    double tokens = 0;
    uint64_t last_ms = 0;

    static Bucket full(const Rate& r, uint64_t now_ms) { return Bucket{r.capacity, now_ms}; }

    // Adds what accrued since last_ms (a clock that went backwards adds
    // nothing), capped at the capacity.
    void refill(const Rate& r, uint64_t now_ms) {
        if (now_ms > last_ms) {
            tokens = std::min(r.capacity, tokens + static_cast<double>(now_ms - last_ms) * r.per_ms);
            last_ms = now_ms;
        }
        if (tokens > r.capacity) tokens = r.capacity;
    }

    // Takes one token if there is one (call refill first).
    bool take() {
        if (tokens < 1.0) return false;
        tokens -= 1.0;
        return true;
    }

    // Milliseconds until the bucket holds `want` tokens (0 if it does).
    // A rate of zero never refills: a day stands in for "never".
    uint64_t ms_until(const Rate& r, double want) const {
        if (tokens >= want) return 0;
        if (r.per_ms <= 0) return 86400000;
        return static_cast<uint64_t>(std::ceil((want - tokens) / r.per_ms));
    }

    // The rule changed shape (a reload): bring the bucket up to date under
    // the old rate, then keep the fraction of the budget it had left, so a
    // client at half its budget is at half of the new one.
    void rescale(const Rate& old_rate, const Rate& new_rate, uint64_t now_ms) {
        refill(old_rate, now_ms);
        if (old_rate.capacity > 0) tokens = tokens * (new_rate.capacity / old_rate.capacity);
        tokens = std::clamp(tokens, 0.0, new_rate.capacity);
        if (now_ms > last_ms) last_ms = now_ms;
    }
};

// Events in the last `window` milliseconds, estimated the way Cloudflare's
// and nginx's sliding windows do: the current fixed window's count plus the
// previous window's count weighted by how much of it still overlaps. O(1)
// memory per key; exact while all events fall into one window.
struct SlidingCount {
    uint64_t start_ms = 0;  // start of the current fixed window
    uint32_t current = 0;
    uint32_t previous = 0;

    void advance(uint64_t window_ms, uint64_t now_ms) {
        if (window_ms == 0) window_ms = 1;
        if (current == 0 && previous == 0) {
            start_ms = now_ms;
            return;
        }
        if (now_ms < start_ms + window_ms) return;
        uint64_t windows = (now_ms - start_ms) / window_ms;
        previous = windows == 1 ? current : 0;
        current = 0;
        start_ms += windows * window_ms;
    }

    // Records one event; returns the estimate including it.
    double add(uint64_t window_ms, uint64_t now_ms) {
        advance(window_ms, now_ms);
        if (current < UINT32_MAX) ++current;
        return estimate(window_ms, now_ms);
    }

    double estimate(uint64_t window_ms, uint64_t now_ms) const {
        if (window_ms == 0) window_ms = 1;
        if (now_ms >= start_ms + 2 * window_ms) return 0;
        if (now_ms >= start_ms + window_ms) {
            // Not advanced yet: `current` is now the previous window.
            double into = static_cast<double>(now_ms - start_ms - window_ms) / static_cast<double>(window_ms);
            return current * (1.0 - into);
        }
        double into = now_ms > start_ms ? static_cast<double>(now_ms - start_ms) / static_cast<double>(window_ms) : 0;
        return current + previous * (1.0 - into);
    }

    bool idle(uint64_t window_ms, uint64_t now_ms) const { return estimate(window_ms, now_ms) <= 0; }
};

}  // namespace ratelimit
