// The operator's view of the supervisor (docs/operations.md, "Circuit
// breakers"), answered by the node itself (never forwarded):
//
//   GET  /v1/agent/breakers               read token: every supervised task
//   POST /v1/agent/breakers/<task>/reset  admin token: close its breaker and
//                                         restart it now
#pragma once

#include <string>

#include "resilience/supervisor.h"

namespace rampart::http {
class Router;
}

namespace rampart::resilience {

inline constexpr const char* kBreakersPath = "/v1/agent/breakers";

void install_breaker_routes(http::Router& router, Supervisor& supervisor);

// One task as a JSON object (the list's items and the reset's answer).
std::string task_status_json(const TaskStatus& s);

}  // namespace rampart::resilience
