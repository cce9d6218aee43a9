// The answer of a node that is no longer the leader to a request another
// node forwarded or relayed to it as the leader's: 503 not_leader, refused
// before anything was done with it. The X-Rampart-Not-Applied header says
// so to the sending node's retry loop, which may then send even a write
// without an Idempotency-Key again, to the leader it knows now
// (resilience::PeerOutcome::not_applied). Only on answers to peers: a
// client talking to a node directly never sees it.
#pragma once

#include <string_view>

#include "http/response.h"
#include "util/strings.h"

namespace rampart::cluster {

inline constexpr const char* kNotApplied = "X-Rampart-Not-Applied";

inline http::Response not_leader_any_more() {
    http::Response r = http::Response::error(503, "not_leader", "this node is not the leader any more; retry");
    r.headers.emplace_back("Retry-After", "1");
    r.headers.emplace_back(kNotApplied, "1");
    return r;
}

// Whether an answer's header marks it as refused before acting.
inline bool is_not_applied_header(std::string_view name, std::string_view value) {
    return util::iequals(name, kNotApplied) && value == "1";
}

}  // namespace rampart::cluster
