// rampartctl txn [FILE | -]: a Consul /v1/txn body (a JSON array of
// {"KV": {"Verb", "Key", "Value" (base64), "Flags", "Index"}}) sent to the
// node as it is; docs/store.md, "rampartctl kv and txn".
#pragma once

#include <string>
#include <vector>

#include "acl_command.h"  // NodeTarget

namespace rampartctl {

// args[0] == "txn". Exit status: 0 the transaction applied (or read), 1 it
// was rolled back (every failed operation is listed) or refused, or the file
// is unreadable or not a JSON array, 2 usage.
int txn_command(const std::vector<std::string>& args, NodeTarget target);

}  // namespace rampartctl
