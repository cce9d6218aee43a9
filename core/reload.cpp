#include "reload.h"

namespace rampart {

ReloadPlan plan_reload(const config::Config& running, const config::Config& loaded) {
    ReloadPlan plan;
    plan.next = loaded;
    for (const std::string& key : config::changed_keys(running, loaded)) {
        (config::is_reloadable(key) ? plan.applied : plan.needs_restart).push_back(key);
    }
    // Keys that need a restart keep their running values: identity,
    // addresses, TLS material, credentials. The schema decides which.
    for (const config::KeySpec& spec : config::schema()) {
        if (!spec.reloadable) config::set_value(plan.next, spec, config::get_value(running, spec));
    }
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
