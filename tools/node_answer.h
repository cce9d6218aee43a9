// What rampartctl's kv and txn commands share: reading the node's answer
// (the reason of a refusal, a header), a key as it travels in a path, and
// the tables they print.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http_client.h"
#include "table_output.h"

namespace rampartctl {

// "HTTP 400: <the node's error text>" (its {"error": …} field when the body
// is the brief's error JSON, else the body itself, trimmed).
std::string node_error(const HttpResult& r);

// The first header named `name` (case-insensitive), or "".
std::string header_value(const HttpResult& r, std::string_view name);

// A KV key for /v1/kv/<key>: every byte but unreserved characters and '/'
// percent-encoded, so '?', '#', '%' and spaces stay part of the key.
std::string key_path(std::string_view key);

// Decimal without sign, spaces or overflow (what --cas and --flags take).
bool parse_u64(std::string_view text, uint64_t* out);

}  // namespace rampartctl
