// A retry budget per peer, after gRPC's retry throttling (gRFC A6): a
// bucket of `max_tokens`; every failed attempt spends one token, every
// success puts back `refill` (a fraction of one), and retries are allowed
// only while more than half the bucket is left. First attempts are never
// throttled, so a healthy peer refills the bucket through ordinary traffic,
// while a peer that keeps failing gets at most max_tokens/2 retries before
// every request to it is tried once only: an outage cannot turn into a
// retry storm that multiplies the load on a peer that is already down.
//
// No clock: the bucket moves with outcomes, not with time (gRPC's design),
// so an idle peer is not retried more after a quiet hour than after a busy
// minute. The numbers come from the retry policy (docs/policies.md).
#pragma once

namespace rampart::resilience {

struct RetryBudgetSettings {
    double max_tokens = 10;  // > 0
    double refill = 0.1;     // tokens a success puts back, in (0, max_tokens]
};

class RetryBudget {
public:
    explicit RetryBudget(RetryBudgetSettings settings = {}) : settings_(settings), tokens_(settings.max_tokens) {}

    void record_failure();
    void record_success();
    // Strictly more than half the bucket left.
    bool allows_retry() const { return tokens_ > settings_.max_tokens / 2; }
    double tokens() const { return tokens_; }

    // New numbers (a policy reload): the tokens stay, clamped to the new bucket.
    void configure(RetryBudgetSettings settings);
    const RetryBudgetSettings& settings() const { return settings_; }

private:
    RetryBudgetSettings settings_;
    double tokens_;
};

}  // namespace rampart::resilience
