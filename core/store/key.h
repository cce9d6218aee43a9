// KV key rules (brief, issue 5): at most 512 bytes of valid UTF-8, no NUL,
// no ".." path segment. The HTTP layer checks them before proposing, and
// apply checks them again so that a foreign or old entry can never put an
// invalid key into the state.
#pragma once

#include <string>
#include <string_view>

namespace rampart::store {

// Empty when `key` is acceptable, else why not (for a 400). A prefix
// (recurse, keys, delete-tree) may be empty; a single key may not.
std::string check_key(std::string_view key, bool allow_empty);

// Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
bool valid_utf8(std::string_view s);

}  // namespace rampart::store
