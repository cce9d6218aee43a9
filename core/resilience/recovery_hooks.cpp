#include "resilience/recovery_hooks.h"

#include <cmath>

#include "policy/shipped.h"

namespace rampart::resilience {

namespace {

// policy.fn(args) when it answers one of `allowed`; otherwise the default
// (the first allowed answer), counted as a policy error.
std::string one_of(const policy::Generation& g, std::string_view fn, std::initializer_list<policy::PolicyValue> args,
                   std::initializer_list<const char*> allowed) {
    const char* fallback = *allowed.begin();
    policy::PolicyValue v = g.call("recovery", fn, args, fallback);
    for (const char* a : allowed) {
        if (v.as_string() == a) return a;
    }
    g.reject("recovery", std::string(fn) + " returned \"" + v.as_string() + "\", not a known answer");
    return fallback;
}

bool positive_finite(const policy::PolicyValue& v) {
    return v.is_number() && std::isfinite(v.as_number()) && v.as_number() > 0;
}

}  // namespace

std::string PolicyRecoveryRules::action(std::string_view task, int failures, double window_s) {
    return policy::recovery_action(*host_.current(), task, failures, window_s);
}

double PolicyRecoveryRules::backoff_ms(int attempt, double rand01) {
    return policy::recovery_backoff_ms(*host_.current(), attempt, rand01);
}

double PolicyRecoveryRules::cooldown_ms(std::string_view task, int times_opened) {
    auto g = host_.current();
    policy::PolicyValue v = g->call("recovery", "cooldown_ms", {task, times_opened}, recovery_defaults::kCooldownMs);
    if (positive_finite(v)) return v.as_number();
    g->reject("recovery", "cooldown_ms returned a delay that is not positive");
    return recovery_defaults::kCooldownMs;
}

// recovery.tasks[task].window_s, else tasks.default.window_s, else 60.
double PolicyRecoveryRules::window_s(std::string_view task) {
    auto g = host_.current();
    const policy::PolicyValue& tasks = g->data("recovery", "tasks");
    for (std::string_view key : {task, std::string_view("default")}) {
        const policy::PolicyValue& w = tasks[key]["window_s"];
        if (positive_finite(w)) return w.as_number();
    }
    return recovery_defaults::kWindowS;
}

PluginFailure on_plugin_failure(const policy::Generation& g, std::string_view plugin, std::string_view task) {
    return one_of(g, "on_plugin_failure", {plugin, task}, {"disable", "fail_closed"}) == "fail_closed"
               ? PluginFailure::FailClosed
               : PluginFailure::Disable;
}

QuorumLoss on_quorum_loss(const policy::Generation& g) {
    return one_of(g, "on_quorum_loss", {}, {"refuse", "serve_stale"}) == "serve_stale" ? QuorumLoss::ServeStale
                                                                                       : QuorumLoss::Refuse;
}

DiskFull on_disk_full(const policy::Generation& g) {
    return one_of(g, "on_disk_full", {}, {"transfer", "stay"}) == "stay" ? DiskFull::Stay : DiskFull::Transfer;
}

double on_pin_mismatch(const policy::Generation& g, std::string_view peer) {
    policy::PolicyValue v = g.call("recovery", "on_pin_mismatch", {peer}, recovery_defaults::kPinMismatchHoldS);
    if (v.is_number() && std::isfinite(v.as_number()) && v.as_number() >= 0) return v.as_number();
    g.reject("recovery", "on_pin_mismatch returned a negative hold");
    return recovery_defaults::kPinMismatchHoldS;
}

const char* plugin_failure_name(PluginFailure f) { return f == PluginFailure::FailClosed ? "fail_closed" : "disable"; }

}  // namespace rampart::resilience
