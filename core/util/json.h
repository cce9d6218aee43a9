// Minimal JSON string escaping for hot paths (log lines, error bodies),
// where building a cJSON tree per line would cost more than the line.
#pragma once

#include <string>
#include <string_view>

namespace rampart::util {

// Append `s` to `out` as the inside of a JSON string (no quotes).
// Control characters and every byte >= 0x7f become \u00XX, so the output
// is plain ASCII and a hostile path cannot break a log line (non-ASCII text
// shows as its bytes, e.g. "é" as "\u00c3\u00a9").
inline void json_escape_append(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c >= 0x7f) {
                    out += "\\u00";
                    out += kHex[c >> 4];
                    out += kHex[c & 0xf];
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
}

inline void json_string_append(std::string& out, std::string_view s) {
    out += '"';
    json_escape_append(out, s);
    out += '"';
}

}  // namespace rampart::util
