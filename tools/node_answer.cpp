#include "node_answer.h"

#include <cjson/cJSON.h>
#include <strings.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <memory>

namespace rampartctl {

std::string node_error(const HttpResult& r) {
    std::string why;
    std::unique_ptr<cJSON, void (*)(cJSON*)> err(cJSON_ParseWithLength(r.body.data(), r.body.size()), cJSON_Delete);
    const cJSON* text = err ? cJSON_GetObjectItemCaseSensitive(err.get(), "error") : nullptr;
    if (cJSON_IsString(text)) {
        why = text->valuestring;
    } else {
        why = r.body;
        while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
    }
    return "HTTP " + std::to_string(r.status) + (why.empty() ? "" : ": " + why);
}

std::string header_value(const HttpResult& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
        if (k.size() == name.size() && strncasecmp(k.data(), name.data(), name.size()) == 0) return v;
    return {};
}

std::string key_path(std::string_view key) {
    static const char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(key.size());
    for (unsigned char c : key) {
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                     c == '_' || c == '.' || c == '~' || c == '/';
        if (plain) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

bool parse_u64(std::string_view text, uint64_t* out) {
    if (text.empty()) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
    return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace rampartctl
