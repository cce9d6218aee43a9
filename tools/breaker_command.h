// rampartctl breaker list|reset TASK: the node's supervised tasks and their
// circuit breakers (docs/operations.md, "Circuit breakers"). A table for
// people, the node's JSON with --json. Exit 0 on success, 1 on failure
// (an unknown task included), 2 on usage.
#pragma once

#include <string>
#include <vector>

namespace rampartctl {

struct BreakerTarget {
    std::string addr;   // host:port of the node's API
    std::string token;  // read token for `list`, admin token for `reset`
    bool json = false;
    int timeout_ms = 5000;
};

// args[0] == "breaker". Returns the process exit status.
int breaker_command(const std::vector<std::string>& args, const BreakerTarget& target);

}  // namespace rampartctl
