#include "resilience/plugin_failure_gate.h"

#include "http/exchange.h"
#include "log.h"
#include "metrics/registry.h"
#include "resilience/breaker_routes.h"
#include "resilience/recovery_hooks.h"

namespace rampart::resilience {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

metrics::Metric* recovery_decisions_metric(metrics::Registry* registry) {
    if (registry == nullptr) return nullptr;
    return registry->counter("rampart_recovery_decisions_total",
                             "Decisions of recovery.lua's hooks the node acted on, by hook and decision",
                             {"hook", "decision"});
}

PluginFailureGate::PluginFailureGate(const policy::PolicyHost& policies, metrics::Registry* registry)
    : policies_(policies), decisions_(recovery_decisions_metric(registry)) {}

void PluginFailureGate::breaker_changed(std::string_view plugin, const std::string& task, bool open) {
    if (!open) {
        if (closed_by_.erase(task) > 0) {
            log::info("plugin task recovered: the node serves requests again", {{"task", task}});
        }
        return;
    }
    PluginFailure decision = on_plugin_failure(*policies_.current(), plugin, task);
    if (decisions_) decisions_->add({"on_plugin_failure", plugin_failure_name(decision)}, 1);
    if (decision == PluginFailure::FailClosed) {
        closed_by_.insert(task);
        log::error("plugin task keeps failing: failing closed (API requests get 503 until its breaker closes)",
                   {{"plugin", plugin}, {"task", task}});
    } else {
        log::error("plugin task keeps failing: disabled until its breaker closes; the node keeps serving",
                   {{"plugin", plugin}, {"task", task}});
    }
}

bool PluginFailureGate::refuse(http::Exchange& ex) const {
    if (closed_by_.empty()) return false;
    std::string_view path = ex.request().path;
    // The operator must still be able to see and reset the breakers.
    if (!starts_with(path, "/v1/") || starts_with(path, kBreakersPath) || starts_with(path, "/v1/admin/")) return false;
    http::Response r = http::Response::error(
        503, "plugin_failed", "a plugin's work keeps failing and recovery.lua says fail closed: " + holders());
    r.headers.emplace_back("Retry-After", "10");
    ex.respond(std::move(r));
    return true;
}

std::string PluginFailureGate::holders() const {
    std::string out;
    for (const std::string& t : closed_by_) out += (out.empty() ? "" : ", ") + t;
    return out;
}

}  // namespace rampart::resilience
