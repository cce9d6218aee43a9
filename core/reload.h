// What a SIGHUP does with a newly loaded configuration: which keys apply
// now and which wait for a restart.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace rampart {

struct ReloadPlan {
    config::Config next;                     // the config to run with now
    std::vector<std::string> applied;        // reloadable keys that changed
    std::vector<std::string> needs_restart;  // changed keys kept at their running value
};

// `loaded` must be valid. Non-reloadable keys keep their running values.
ReloadPlan plan_reload(const config::Config& running, const config::Config& loaded);

std::string join(const std::vector<std::string>& items, const char* sep = ", ");

}  // namespace rampart
