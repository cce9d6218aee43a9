// The decision loop every outbound request from this node to a peer goes
// through (follower → leader forwarding, membership relays to the leader,
// join requests to seeds). The caller says how to pick
// the peer and how to send one attempt; the loop decides everything else:
//
//   1. before each attempt, the target is looked up afresh (the leader may
//      have changed) and its circuit breaker consulted: an open breaker
//      fails the request fast, with the time until its next trial;
//   2. each attempt is bounded by backoff.budget_ms() (a timeout);
//   3. the outcome is classified by retry.classify, counted per peer, and
//      reported to the peer's breaker and retry budget;
//   4. retry.should_retry decides whether to try again (a write is
//      idempotent only with an Idempotency-Key: one without is never
//      re-sent, unless the peer said it did not act on it, see
//      PeerOutcome::not_applied); the failed peer's retry budget may still
//      refuse;
//   5. the wait is backoff.delay_ms(retry, rand01), or the peer's
//      Retry-After when longer, bounded by the policy's longest delay.
//
// Every timer goes through the Clock, so the whole loop runs on a FakeClock
// in tests; rand01 comes from a seeded generator the tests can fix. Each
// request holds the policy generation it started with; a reload changes
// the numbers for new requests. Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "resilience/circuit_breaker.h"
#include "resilience/clock.h"
#include "resilience/retry_budget.h"

namespace rampart::metrics {
class Metric;
class Registry;
}  // namespace rampart::metrics

namespace rampart::policy {
class Generation;
class PolicyHost;
}  // namespace rampart::policy

namespace rampart::resilience {

// What one attempt came back with.
struct PeerOutcome {
    int status = 0;               // the answer's HTTP status; 0 when none arrived
    std::string error;            // "" (an answer arrived), "timeout", "tls", or another transport error
    uint64_t retry_after_ms = 0;  // the answer's Retry-After; 0 when absent
    // The peer refused before acting on the request (a node that is no
    // longer the leader answers a forwarded or relayed request 503 with
    // X-Rampart-Not-Applied): sending it again cannot apply it twice, so it
    // is retried as an idempotent request would be. Not held against the
    // peer's breaker (it answered, correctly); it spends retry budget.
    bool not_applied = false;
};

enum class RetryEnd {
    Answered,         // the last attempt is final: a success, or a failure the policy does not retry
    BudgetExhausted,  // the policy would retry, but the failed peer's retry budget is spent
    BreakerOpen,      // the target's breaker is open: nothing was sent for this attempt
    Cancelled,        // the caller stopped wanting it (Request::wanted)
};
const char* retry_end_name(RetryEnd end);

struct RetryResult {
    RetryEnd end = RetryEnd::Answered;
    std::string retry_class;      // the last attempt's class; "" if none was made
    std::string peer;             // the last attempt's peer, or the open breaker's
    int attempts = 0;             // attempts made (sent, or failed for want of a peer)
    uint64_t retry_after_ms = 0;  // BreakerOpen: until the breaker admits a trial
};

// The numbers the retry policy exports as data (retry.budget, retry.breaker).
struct PeerRetryLimits {
    RetryBudgetSettings budget;
    BreakerSettings breaker;
};
// Read from a generation; a missing table keeps the defaults, a bad field
// keeps its default and is counted as a bad result of the retry policy.
PeerRetryLimits peer_retry_limits(const policy::Generation& g);

class PeerRetrier {
public:
    using Done = std::function<void(PeerOutcome)>;
    using Abort = std::function<void()>;

    struct Request {
        bool idempotent = false;  // GET/HEAD, or a write with an Idempotency-Key
        // The peer for the next attempt, looked up before each one; "" when
        // none is known now: that attempt fails as a network_error
        // ("no_peer") that touches no peer's budget or breaker.
        std::function<std::string()> target;
        // Send one attempt to `peer` and call `done` once with its outcome
        // (it may be called inside send). The returned Abort, called when the
        // attempt runs out of time or the request is cancelled, must stop
        // it; `done` is ignored afterwards.
        std::function<Abort(const std::string& peer, Done done)> send;
        // Called once at the end, unless cancel() or the retrier's end
        // comes first.
        std::function<void(const RetryResult&)> finish;
        // Optional: asked before each attempt; false ends it as Cancelled.
        std::function<bool()> wanted;
        // Above 0: at most this many attempts, whatever retry.lua says. A
        // caller that paces its own retries (the join loop) sends one.
        int max_attempts = 0;
        // False: the peer's retry budget and breaker are neither consulted
        // nor fed. For a caller with its own backoff (the join loop): a
        // breaker opened while a seed was down would hide it for a whole
        // cool-down after it came back. Outcomes are still counted.
        bool guarded = true;
    };

    struct Settings {
        uint64_t seed = 0;                      // for rand01; 0: from std::random_device
        std::function<double()> rand01;         // overrides the seeded generator (tests)
        metrics::Registry* registry = nullptr;  // the metrics below, when set
    };

    PeerRetrier(Clock& clock, const policy::PolicyHost& policies, Settings settings);
    // Requests still running are dropped: no finish, no abort.
    ~PeerRetrier();
    PeerRetrier(const PeerRetrier&) = delete;
    PeerRetrier& operator=(const PeerRetrier&) = delete;

    // Starts the first attempt now; returns an id for cancel().
    uint64_t start(Request request);
    // Aborts the attempt in flight and forgets the request (no finish).
    void cancel(uint64_t id);
    size_t in_flight() const { return calls_.size(); }

    // Per-peer state, for tests and status pages.
    BreakerState breaker_state(const std::string& peer) const;
    double budget_tokens(const std::string& peer) const;

    // The Retry-After a peer's answer asked for, in ms (delta-seconds only;
    // 0 when absent or not a number).
    static uint64_t parse_retry_after(const std::string* header);

private:
    struct Call;
    struct Peer {
        RetryBudget budget;
        CircuitBreaker breaker;
        std::unique_ptr<Timer> half_open;  // moves the state gauge when the cool-down ends
    };

    Peer& peer(const std::string& name, const PeerRetryLimits& limits);
    void attempt(uint64_t id);
    void outcome(uint64_t id, uint64_t serial, const PeerOutcome& o);
    void timed_out(uint64_t id);
    void judge(uint64_t id, const PeerOutcome& o);
    void finish(uint64_t id, RetryEnd end, uint64_t retry_after_ms = 0);
    void show_breaker(const std::string& name, Peer& p);
    double rand01();

    Clock& clock_;
    const policy::PolicyHost& policies_;
    std::function<double()> rand01_override_;
    std::mt19937_64 rng_;
    std::map<std::string, Peer> peers_;
    std::map<uint64_t, std::unique_ptr<Call>> calls_;
    uint64_t next_id_ = 1;
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // `done` callbacks outliving us see it expire

    metrics::Metric* requests_ = nullptr;          // rampart_peer_request_total{peer,status}
    metrics::Metric* backoff_ = nullptr;           // rampart_peer_backoff_seconds
    metrics::Metric* budget_exhausted_ = nullptr;  // rampart_retry_budget_exhausted_total{peer}
    metrics::Metric* breaker_state_ = nullptr;     // rampart_peer_breaker_state{peer}
    metrics::Metric* breaker_rejected_ = nullptr;  // rampart_peer_breaker_rejected_total{peer}
};

// The seed's buckets for rampart_peer_backoff_seconds (anna phase 1.11).
inline constexpr double kPeerBackoffBuckets[] = {0.1, 0.2, 0.5, 1.0, 2.0, 5.0};

}  // namespace rampart::resilience
