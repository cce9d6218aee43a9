#include "reload.h"

namespace rampart {

ReloadPlan plan_reload(const config::Config& running, const config::Config& loaded) {
    ReloadPlan plan;
    for (const std::string& key : config::changed_keys(running, loaded)) {
        (config::is_reloadable(key) ? plan.applied : plan.needs_restart).push_back(key);
    }
    plan.next = loaded;
    // Identity, addresses, TLS material and credentials stay as they were
    // at start; test_reload checks this list against the schema's flags.
    plan.next.node = running.node;
    plan.next.api.listen = running.api.listen;
    plan.next.api.tls = running.api.tls;
    plan.next.peer = running.peer;
    plan.next.cluster.join_token = running.cluster.join_token;
    plan.next.cluster.role = running.cluster.role;
    plan.next.auth = running.auth;
    return plan;
}

std::string join(const std::vector<std::string>& items, const char* sep) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) out += sep;
        out += item;
    }
    return out;
}

}  // namespace rampart
