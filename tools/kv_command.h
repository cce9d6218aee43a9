// rampartctl kv get|put|delete|list: Consul's /v1/kv through the node's API
// (docs/store.md, "rampartctl kv and txn"). Values print as they are for
// people (`get`), tables for listings, the node's JSON with --json.
#pragma once

#include <string>
#include <vector>

#include "acl_command.h"  // NodeTarget

namespace rampartctl {

// args[0] == "kv". Returns the exit status: 0 done, 1 failure (the node
// refused, no such key, a CAS that did not hold, no answer), 2 usage (bad
// options, an invalid key or number).
int kv_command(const std::vector<std::string>& args, NodeTarget target);

}  // namespace rampartctl
