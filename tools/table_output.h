// Output helpers shared by rampartctl's commands: JSON fields as text and
// tables for people.
#pragma once

#include <cjson/cJSON.h>

#include <string>
#include <vector>

namespace rampartctl {

// A field of a JSON object as text: strings as they are, numbers as
// integers, booleans as true/false; "-" for null or absent (unknown).
std::string json_text(const cJSON* obj, const char* name);

// Columns padded to their widest cell, two spaces apart.
void print_table(const std::vector<std::vector<std::string>>& rows);

}  // namespace rampartctl
