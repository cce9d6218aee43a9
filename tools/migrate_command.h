// rampartctl migrate-state [DIR]: the daemon's v1 -> v2 migration of
// DIR/state.json, by hand (stop the daemon first). DIR defaults to
// $RAMPART_NODE_DATA_DIR, else /var/lib/rampart. Events go to
// DIR/audit.jsonl as the daemon's do.
#pragma once

#include <string>
#include <vector>

namespace rampartctl {

// args[0] == "migrate-state". Exit 0 migrated or already v2, 1 failed
// (rolled back), 2 usage.
int migrate_command(const std::vector<std::string>& args, bool json);

}  // namespace rampartctl
