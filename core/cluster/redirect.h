// Redirect mode (cluster.follower_writes: redirect): instead of forwarding
// a request that needs the leader (forwarder.h, needs_leader), a follower
// tells the client where the leader is, and the client sends it again
// there: 307 (method and body kept) with
//
//   Location: <scheme>://<leader's API address><original path and query>
//   X-Rampart-Leader: <leader's node id>
//
// The address and scheme are what the leader advertises (member_info.h).
// Without a known leader, or before the leader has advertised its API
// address, the answer is 503 with Retry-After: 1.
#pragma once

#include <string>

#include "cluster/member_info.h"
#include "http/parser.h"
#include "http/response.h"

namespace rampart::cluster {

inline constexpr const char* kLeaderHeader = "X-Rampart-Leader";

// `leader_node_id` is "" without a known leader; `leader` is its
// advertisement (nullptr if it has none yet).
http::Response redirect_to_leader(const http::Request& request, const std::string& leader_node_id,
                                  const MemberInfo* leader);

}  // namespace rampart::cluster
