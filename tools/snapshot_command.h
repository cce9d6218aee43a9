// rampartctl snapshot save FILE | restore FILE | inspect FILE
// (docs/operations.md, "Snapshots"). save and restore talk to the node
// (GET/PUT /v1/snapshot, admin token); inspect reads the file offline.
#pragma once

#include <string>
#include <vector>

namespace rampartctl {

struct NodeAccess {
    std::string addr;
    std::string token;
    bool json = false;
};

// args[0] == "snapshot". Returns the exit status (0, 1, 2 usage).
int snapshot_command(const std::vector<std::string>& args, const NodeAccess& node);

}  // namespace rampartctl
