// Small string helpers shared by the HTTP parser and the peer clients.
#pragma once

#include <strings.h>

#include <string_view>

namespace rampart::util {

// ASCII case-insensitive equality (HTTP field names, tokens).
inline bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace rampart::util
