// Helpers shared by rampartctl's commands: a request whose answer is JSON,
// JSON fields as text, and tables for people.
#pragma once

#include <cjson/cJSON.h>

#include <memory>
#include <string>
#include <vector>

namespace rampartctl {

using JsonPtr = std::unique_ptr<cJSON, void (*)(cJSON*)>;

// One request to the node at `addr`: the parsed body of a 200 (its text in
// *raw, for --json), or nullptr after saying why on stderr.
JsonPtr request_json(const std::string& addr, const std::string& token, int timeout_ms, const char* method,
                     const std::string& path, std::string* raw);

// A field of a JSON object as text: strings as they are, numbers as
// integers, booleans as true/false; "-" for null or absent (unknown).
std::string json_text(const cJSON* obj, const char* name);

// Columns padded to their widest cell, two spaces apart.
void print_table(const std::vector<std::vector<std::string>>& rows);

}  // namespace rampartctl
