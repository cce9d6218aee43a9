#include "cluster/join_loop.h"

#include "log.h"
#include "metrics/registry.h"

namespace rampart::cluster {

const char* result_name(JoinOutcome::Result result) {
    switch (result) {
        case JoinOutcome::Result::Joined: return "joined";
        case JoinOutcome::Result::Refused: return "refused";
        case JoinOutcome::Result::Retryable: return "retryable";
    }
    return "retryable";
}

JoinLoop::JoinLoop(resilience::Clock& clock, SeedSource seeds, AttemptFn attempt, BackoffFn backoff,
                   metrics::Registry* registry, Settings settings)
    : clock_(clock),
      source_(std::move(seeds)),
      attempt_(std::move(attempt)),
      backoff_(std::move(backoff)),
      settings_(settings),
      alive_(std::make_shared<bool>(true)) {
    if (registry != nullptr) {
        attempts_ = registry->counter(
            "rampart_join_attempts_total",
            "Attempts to join a cluster through a seed, by result (joined, refused, retryable)", {"result"});
    }
    retry_timer_ = clock_.timer([this] { begin_round(); });
    // The attempt's answer is overdue: count it as retryable and move on.
    attempt_timer_ = clock_.timer([this] {
        answered(attempt_id_,
                 JoinOutcome::retryable("no answer within " + std::to_string(settings_.attempt_timeout_ms) + " ms"));
    });
}

JoinLoop::~JoinLoop() { *alive_ = false; }

void JoinLoop::start() {
    if (state_ != State::Idle) return;
    state_ = State::Running;
    begin_round();
}

void JoinLoop::stop() {
    if (state_ == State::Running || state_ == State::Idle) state_ = State::Stopped;
    retry_timer_->stop();
    attempt_timer_->stop();
    attempt_in_flight_ = false;
    ++attempt_id_;  // an answer still on its way finds nothing to do
}

void JoinLoop::begin_round() {
    if (state_ != State::Running) return;
    ++round_;
    seeds_.clear();
    reasons_.clear();
    next_ = 0;
    std::shared_ptr<bool> alive = alive_;
    int round = round_;
    source_([this, alive, round](const SeedList& list) {
        if (!*alive || state_ != State::Running || round != round_) return;
        seeds_ready(list);
    });
}

void JoinLoop::seeds_ready(const SeedList& list) {
    seeds_ = list.seeds;
    if (!list.error.empty()) reasons_.push_back(list.error);
    std::string described = Discovery::describe(seeds_);
    if (described != previous_seeds_) {
        log::info("join: seeds discovered", {{"round", round_}, {"seeds", described}});
        previous_seeds_ = described;
    }
    if (seeds_.empty() && list.error.empty()) reasons_.push_back("no seeds");
    try_next();
}

void JoinLoop::try_next() {
    if (state_ != State::Running) return;
    if (next_ >= seeds_.size()) return end_round();
    const Seed seed = seeds_[next_];
    uint64_t id = ++attempt_id_;
    attempt_in_flight_ = true;
    attempt_timer_->start(settings_.attempt_timeout_ms);
    std::shared_ptr<bool> alive = alive_;
    attempt_(seed, [this, alive, id](const JoinOutcome& outcome) {
        if (*alive) answered(id, outcome);
    });
}

void JoinLoop::answered(uint64_t attempt_id, const JoinOutcome& outcome) {
    // Late (timed out already), duplicate, or after stop(): ignored.
    if (state_ != State::Running || !attempt_in_flight_ || attempt_id != attempt_id_) return;
    attempt_in_flight_ = false;
    attempt_timer_->stop();
    if (attempts_ != nullptr) attempts_->add({result_name(outcome.result)}, 1);
    const Seed& seed = seeds_[next_];
    switch (outcome.result) {
        case JoinOutcome::Result::Joined:
            through_ = seed;
            log::info("join: done", {{"round", round_}, {"seed", seed.address}, {"detail", outcome.detail}});
            return finish(State::Joined, outcome);
        case JoinOutcome::Result::Refused:
            through_ = seed;
            log::error(
                "join: refused for good; not retrying (fix the cause, then rampartctl cluster join or restart the "
                "node)",
                {{"round", round_}, {"seed", seed.address}, {"reason", outcome.detail}});
            return finish(State::Refused, outcome);
        case JoinOutcome::Result::Retryable:
            reasons_.push_back(seed.address + ": " + outcome.detail);
            ++next_;
            return try_next();
    }
}

void JoinLoop::end_round() {
    uint64_t delay = backoff_(round_);
    std::string reason;
    for (const std::string& r : reasons_) reason += (reason.empty() ? "" : "; ") + r;
    log::warn("join: round failed; retrying", {{"round", round_},
                                               {"seeds", static_cast<unsigned long>(seeds_.size())},
                                               {"reason", reason},
                                               {"retry_in_ms", static_cast<unsigned long>(delay)}});
    retry_timer_->start(delay);
}

void JoinLoop::finish(State state, const JoinOutcome& outcome) {
    state_ = state;
    retry_timer_->stop();
    if (on_finished_) on_finished_(outcome, through_);
}

}  // namespace rampart::cluster
