// rampartctl cluster status|leader|peers: the node's view of the cluster
// (docs/cluster.md, "Cluster status"); join-token|join|leave|
// transfer-leadership: changing it ("Changing the cluster"). Tables for people, the node's JSON
// with --json. Exit 0 on an answer (`leader`: only when there is a leader),
// 1 on failure, 2 on usage.
#pragma once

#include <string>
#include <vector>

namespace rampartctl {

struct ClusterTarget {
    std::string addr;   // host:port of the node's API
    std::string token;  // a read token (`status`); `leader` and `peers` need none
    bool json = false;
    int timeout_ms = 5000;
};

// args[0] == "cluster". Returns the process exit status.
int cluster_command(const std::vector<std::string>& args, const ClusterTarget& target);

}  // namespace rampartctl
