#include "store/key.h"

#include "store/command.h"

namespace rampart::store {

bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        size_t extra = 0;
        uint32_t cp = 0;
        uint32_t min = 0;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (i + extra >= s.size()) return false;  // truncated sequence
        for (size_t k = 1; k <= extra; k++) {
            auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += extra + 1;
    }
    return true;
}

namespace {

// ".." as a whole segment lets a key look like a path escape to tools that
// map keys onto files (rampartctl, backups); "a..b" is fine.
bool has_dotdot_segment(std::string_view key) {
    size_t start = 0;
    while (start <= key.size()) {
        size_t end = key.find('/', start);
        if (end == std::string_view::npos) end = key.size();
        if (key.substr(start, end - start) == "..") return true;
        start = end + 1;
    }
    return false;
}

}  // namespace

std::string check_key(std::string_view key, bool allow_empty) {
    if (key.empty()) return allow_empty ? std::string() : "missing key name";
    if (key.size() > Limits::kKey) return "key longer than " + std::to_string(Limits::kKey) + " bytes";
    if (key.find('\0') != std::string_view::npos) return "key contains a NUL byte";
    if (!valid_utf8(key)) return "key is not valid UTF-8";
    if (has_dotdot_segment(key)) return "key contains a \"..\" segment";
    return {};
}

}  // namespace rampart::store
