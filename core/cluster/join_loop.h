// The join loop: a node that should join a cluster keeps looking for it
// without ever holding up its own start-up.
//
// Each round asks the seed source for the current seeds (static seeds,
// SRV records re-resolved once their TTL has run out), then tries them in
// order with the attempt function until one answers:
//   joined            -> done; the loop stops;
//   refused for good  -> done; the loop stops and logs why (a bad join
//                        token is not retried: hammering a cluster with it
//                        helps nobody and fills its audit log);
//   retryable         -> the next seed; after the last one the round
//                        ends, one log line says why each seed failed, and
//                        the next round starts after backoff.delay_ms(round).
// An attempt that does not answer within attempt_timeout_ms counts as
// retryable. Every attempt is counted in rampart_join_attempts_total{result}.
//
// All timers come from a resilience::Clock, so tests drive the loop with a
// FakeClock. Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/discovery.h"
#include "resilience/clock.h"

namespace rampart::metrics {
class Metric;
class Registry;
}  // namespace rampart::metrics

namespace rampart::cluster {

struct JoinOutcome {
    enum class Result { Joined, Refused, Retryable };
    Result result = Result::Retryable;
    std::string detail;  // why, for the log: "connection refused", "join token rejected (401)", ...

    static JoinOutcome joined(std::string detail = {}) { return {Result::Joined, std::move(detail)}; }
    static JoinOutcome refused(std::string detail) { return {Result::Refused, std::move(detail)}; }
    static JoinOutcome retryable(std::string detail) { return {Result::Retryable, std::move(detail)}; }
};

// "joined", "refused", "retryable": the metric's result label.
const char* result_name(JoinOutcome::Result result);

class JoinLoop {
public:
    // Calls `done` exactly once, now or later, on the loop thread.
    using AttemptFn = std::function<void(const Seed& seed, std::function<void(JoinOutcome)> done)>;
    // Delivers the seeds of one round (Discovery::resolve).
    using SeedSource = std::function<void(std::function<void(const SeedList&)>)>;
    // The wait before round `round` + 1, in ms (backoff.delay_ms(round, rand01)).
    using BackoffFn = std::function<uint64_t(int round)>;
    enum class State { Idle, Running, Joined, Refused, Stopped };

    struct Settings {
        uint64_t attempt_timeout_ms = 10000;
    };

    JoinLoop(resilience::Clock& clock, SeedSource seeds, AttemptFn attempt, BackoffFn backoff,
             metrics::Registry* registry, Settings settings);
    JoinLoop(resilience::Clock& clock, SeedSource seeds, AttemptFn attempt, BackoffFn backoff,
             metrics::Registry* registry)
        : JoinLoop(clock, std::move(seeds), std::move(attempt), std::move(backoff), registry, Settings{}) {}
    ~JoinLoop();
    JoinLoop(const JoinLoop&) = delete;
    JoinLoop& operator=(const JoinLoop&) = delete;

    void start();
    // Shutdown: no further attempt starts, and answers still on their way
    // are ignored.
    void stop();
    // Runs once when the loop ends by itself (joined or refused for good).
    void on_finished(std::function<void(const JoinOutcome&, const Seed&)> fn) { on_finished_ = std::move(fn); }

    State state() const { return state_; }
    int rounds() const { return round_; }
    const std::vector<Seed>& last_seeds() const { return seeds_; }
    const Seed& joined_through() const { return through_; }

private:
    void begin_round();
    void seeds_ready(const SeedList& list);
    void try_next();
    void answered(uint64_t attempt_id, const JoinOutcome& outcome);
    void end_round();
    void finish(State state, const JoinOutcome& outcome);

    resilience::Clock& clock_;
    SeedSource source_;
    AttemptFn attempt_;
    BackoffFn backoff_;
    Settings settings_;
    metrics::Metric* attempts_ = nullptr;
    std::function<void(const JoinOutcome&, const Seed&)> on_finished_;
    std::unique_ptr<resilience::Timer> retry_timer_;
    std::unique_ptr<resilience::Timer> attempt_timer_;
    std::shared_ptr<bool> alive_;

    State state_ = State::Idle;
    int round_ = 0;
    std::vector<Seed> seeds_;     // this round's
    std::string previous_seeds_;  // the last list logged, to log changes only
    size_t next_ = 0;             // the seed to try next
    uint64_t attempt_id_ = 0;     // the attempt in flight (answers to older ones are ignored)
    bool attempt_in_flight_ = false;
    std::vector<std::string> reasons_;  // "address: why" for this round
    Seed through_;
};

}  // namespace rampart::cluster
