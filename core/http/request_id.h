// X-Request-Id: keep a client's id when it is sane, otherwise make one.
#pragma once

#include <string>
#include <string_view>

namespace rampart::http {

inline constexpr size_t kMaxRequestIdLength = 128;

// 1..128 characters of [A-Za-z0-9._:-]: safe to echo and to log.
bool is_sane_request_id(std::string_view id);

// 16 hex digits, unique within the process and unpredictable across
// processes (a random per-process key mixed with a counter).
std::string generate_request_id();

}  // namespace rampart::http
