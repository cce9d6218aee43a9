#include "policy/shipped.h"

#include <algorithm>
#include <cmath>

#include "policy/specs.h"

namespace rampart::policy {

namespace defaults {

namespace {

double clamp01(double r) { return std::isnan(r) ? 0.5 : std::clamp(r, 0.0, 1.0); }

}  // namespace

// These mirror policies/*.lua exactly; test_policy checks them against each
// other over a grid of inputs.
std::string classify(const RequestOutcome& o) {
    if (o.error == "timeout") return "timeout";
    if (o.error == "tls") return "tls_error";
    if (!o.error.empty()) return "network_error";
    if (o.status >= 200 && o.status <= 399) return "success";
    if (o.status >= 400 && o.status <= 499) return "http_4xx";
    if (o.status >= 500 && o.status <= 599) return "http_5xx";
    return "network_error";
}

bool should_retry(std::string_view c, int attempt, bool idempotent) {
    bool retryable = c == "network_error" || c == "http_5xx" || c == "timeout";
    return retryable && idempotent && attempt < kMaxAttempts;
}

double delay_ms(int attempt, double rand01) {
    int n = std::max(attempt, 1);
    double delay = std::min(100.0 * std::pow(2.0, n - 1), 5000.0);
    return std::floor(delay * (1 + 0.20 * (2 * clamp01(rand01) - 1)) + 0.5);
}

std::string recovery_action(std::string_view task, int failures, double window_s) {
    if (failures <= 1) return "immediate";
    if (task != "consensus" && failures >= 5 && window_s <= 60) return "circuit_breaker";
    return "backoff";
}

double recovery_backoff_ms(int attempt, double rand01) {
    int n = std::max(attempt, 1);
    double delay = std::min(100.0 * std::pow(2.0, n - 1), 30000.0);
    delay *= 1 + 0.25 * (2 * clamp01(rand01) - 1);
    return std::floor(std::clamp(delay, 100.0, 30000.0) + 0.5);
}

const PolicyValue& ratelimit_rules() {
    static const PolicyValue rules = [] {
        auto rule = [](const char* name, const char* auth, const char* key, int limit, int retry_after) {
            return PolicyValue::object({
                {"name", name},
                {"match", PolicyValue::object({{"auth", auth}, {"route_class", "any"}})},
                {"key", key},
                {"limit", limit},
                {"window_s", 60},
                {"burst", limit},
                {"retry_after_s", retry_after},
                {"shadow", false},
                {"allow_cidrs", PolicyValue(PolicyTable{})},
            });
        };
        PolicyTable af = rule("auth_failures", "failed", "ip", 10, 60).as_table();
        af.fields.emplace_back("block",
                               PolicyValue::object({{"threshold", 50}, {"window_s", 600}, {"duration_s", 3600}}));
        PolicyValue v =
            PolicyValue::array({PolicyValue(std::move(af)), rule("authenticated", "authenticated", "identity", 100, 0),
                                rule("unauthenticated", "unauthenticated", "ip", 30, 0)});
        validate_ratelimit_rules(&v);
        return v;
    }();
    return rules;
}

}  // namespace defaults

namespace {

bool finite_nonnegative(const PolicyValue& v) { return std::isfinite(v.as_number()) && v.as_number() >= 0; }

}  // namespace

std::string classify(const Generation& g, const RequestOutcome& o) {
    std::string fallback = defaults::classify(o);
    PolicyValue outcome = PolicyValue::object({{"status", o.status}, {"error", o.error}});
    PolicyValue v = g.call("retry", "classify", {outcome}, fallback);
    const auto& classes = retry_classes();
    if (std::find(classes.begin(), classes.end(), v.as_string()) != classes.end()) return v.as_string();
    g.reject("retry", "classify returned \"" + v.as_string() + "\", not a retry class");
    return fallback;
}

bool should_retry(const Generation& g, std::string_view c, int attempt, bool idempotent) {
    bool fallback = defaults::should_retry(c, attempt, idempotent);
    return g.call("retry", "should_retry", {c, attempt, idempotent}, fallback).as_bool(fallback);
}

double backoff_delay_ms(const Generation& g, int attempt, double rand01) {
    double fallback = defaults::delay_ms(attempt, rand01);
    PolicyValue v = g.call("backoff", "delay_ms", {attempt, rand01}, fallback);
    if (finite_nonnegative(v)) return v.as_number();
    g.reject("backoff", "delay_ms returned a negative delay");
    return fallback;
}

double request_budget_ms(const Generation& g) {
    const PolicyValue& v = g.data("backoff", "budget_ms");
    return v.is_number() ? v.as_number() : defaults::kRequestBudgetMs;
}

std::string recovery_action(const Generation& g, std::string_view task, int failures, double window_s) {
    std::string fallback = defaults::recovery_action(task, failures, window_s);
    PolicyValue v = g.call("recovery", "action", {task, failures, window_s}, fallback);
    const auto& actions = recovery_actions();
    if (std::find(actions.begin(), actions.end(), v.as_string()) != actions.end()) return v.as_string();
    g.reject("recovery", "action returned \"" + v.as_string() + "\", not a recovery action");
    return fallback;
}

double recovery_backoff_ms(const Generation& g, int attempt, double rand01) {
    double fallback = defaults::recovery_backoff_ms(attempt, rand01);
    PolicyValue v = g.call("recovery", "backoff_ms", {attempt, rand01}, fallback);
    if (finite_nonnegative(v)) return v.as_number();
    g.reject("recovery", "backoff_ms returned a negative delay");
    return fallback;
}

const PolicyValue& ratelimit_rules(const Generation& g) {
    const PolicyValue& v = g.data("ratelimit", "rules");
    return v.is_table() ? v : defaults::ratelimit_rules();
}

std::string ratelimit_rules_json(const Generation& g) { return ratelimit_rules(g).to_json(); }

}  // namespace rampart::policy
