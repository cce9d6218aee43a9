// Typed calls to the four shipped policies, with the seeds' defaults in C++
// as the fallbacks. Every function returns the policy's answer when it has
// one inside the contract (docs/policies.md), otherwise the default below,
// and counts the fallback on the generation's counters. These are what the
// daemon and the plugins call per request; none of them throws.
#pragma once

#include <string>
#include <string_view>

#include "policy/generation.h"
#include "policy/value.h"

namespace rampart::policy {

// One outbound request's result, for retry.classify.
struct RequestOutcome {
    int status = 0;     // HTTP status; 0 when no response arrived
    std::string error;  // "" (a response arrived), "timeout", "tls", or any other transport error
};

namespace defaults {

inline constexpr int kMaxAttempts = 10;
inline constexpr double kRequestBudgetMs = 2500;

std::string classify(const RequestOutcome& outcome);
bool should_retry(std::string_view retry_class, int attempt, bool method_is_idempotent);
double delay_ms(int attempt, double rand01);
std::string recovery_action(std::string_view task, int failures, double window_s);
double recovery_backoff_ms(int attempt, double rand01);
// The three seed rules, normalized as the host stores them.
const PolicyValue& ratelimit_rules();

}  // namespace defaults

// retry.classify: one of retry_classes().
std::string classify(const Generation& g, const RequestOutcome& outcome);
// retry.should_retry: attempt = attempts made so far (1 after the first failure).
bool should_retry(const Generation& g, std::string_view retry_class, int attempt, bool method_is_idempotent);
// backoff.delay_ms: the wait before retry `attempt`; rand01 uniform in [0, 1].
double backoff_delay_ms(const Generation& g, int attempt, double rand01);
// backoff.budget_ms (captured at load): how long one attempt may take.
double request_budget_ms(const Generation& g);
// recovery.action: "immediate", "backoff" or "circuit_breaker".
std::string recovery_action(const Generation& g, std::string_view task, int failures, double window_s);
// recovery.backoff_ms: the wait before restart `attempt`.
double recovery_backoff_ms(const Generation& g, int attempt, double rand01);
// ratelimit.rules (captured and validated at load), or the defaults when
// no ratelimit policy is loaded. Valid while `g` is held.
const PolicyValue& ratelimit_rules(const Generation& g);
std::string ratelimit_rules_json(const Generation& g);

}  // namespace rampart::policy
