// rampartctl acl token create|list|read|delete: API tokens kept in the
// replicated state, through /v1/acl/token… (docs/operations.md, "API tokens").
#pragma once

#include <string>
#include <vector>

namespace rampartctl {

struct NodeTarget {
    std::string addr;   // host:port of the node's API
    std::string token;  // an admin token
    bool json = false;
    int timeout_ms = 5000;
};

// args[0] == "acl". Returns the process exit status (0, 1, 2 usage).
int acl_command(const std::vector<std::string>& args, const NodeTarget& target);

}  // namespace rampartctl
