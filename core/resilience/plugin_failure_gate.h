// What the node does when a plugin's supervised work keeps failing and its
// circuit breaker opens: recovery.on_plugin_failure(plugin, task) decides,
// at that moment, between
//
//   "disable"      the work stays stopped (until the breaker's trial or an
//                  operator's reset); the node keeps serving; the alert is
//                  the error log line and rampart_task_breaker_open{task} = 1
//   "fail_closed"  the same, and until the breaker closes the node refuses
//                  API requests (503 plugin_failed, /ready 503 too), except
//                  the operator's routes (/v1/agent/breakers, /v1/admin/)
//
// Each decision is counted in rampart_recovery_decisions_total{hook,decision}.
#pragma once

#include <set>
#include <string>
#include <string_view>

#include "policy/policy_host.h"

namespace rampart::http {
class Exchange;
}
namespace rampart::metrics {
class Metric;
class Registry;
}  // namespace rampart::metrics

namespace rampart::resilience {

// The counter every recovery decision (recovery_hooks.h) is counted in.
metrics::Metric* recovery_decisions_metric(metrics::Registry* registry);

class PluginFailureGate {
public:
    PluginFailureGate(const policy::PolicyHost& policies, metrics::Registry* registry);

    // The supervisor's breaker listener, for a task owned by `plugin`.
    void breaker_changed(std::string_view plugin, const std::string& task, bool open);

    // True while some plugin task holds the node failed closed.
    bool closed() const { return !closed_by_.empty(); }
    // Answers the request with 503 and returns true when it must be refused.
    bool refuse(http::Exchange& ex) const;
    // The tasks holding it closed, comma-separated (for messages).
    std::string holders() const;

private:
    const policy::PolicyHost& policies_;
    metrics::Metric* decisions_ = nullptr;
    std::set<std::string> closed_by_;
};

}  // namespace rampart::resilience
