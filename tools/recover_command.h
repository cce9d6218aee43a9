// rampartctl cluster recover: bring a cluster back after it lost its quorum
// for good (docs/cluster.md, "Failures and recovery"). Offline, on each
// survivor with its daemon stopped: the node's Raft configuration becomes
// this node plus the `--voter`s named, through the engine's recover call
// (rampart_raft_recover). The data (log and snapshots) stays as it is.
#pragma once

#include <string>
#include <vector>

namespace rampartctl {

// args[0] == "cluster", args[1] == "recover". Exit 0 recovered, 1 failed
// (nothing changed), 2 usage.
int recover_command(const std::vector<std::string>& args, bool json);

}  // namespace rampartctl
