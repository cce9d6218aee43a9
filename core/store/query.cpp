#include "store/query.h"

#include <charconv>

namespace rampart::store {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool parse_u64(std::string_view text, uint64_t* out) {
    if (text.empty()) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
    return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

bool percent_decode(std::string_view in, bool plus_is_space, std::string* out) {
    out->clear();
    out->reserve(in.size());
    for (size_t i = 0; i < in.size(); i++) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return false;
            int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) return false;
            out->push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out->push_back(' ');
        } else {
            out->push_back(c);
        }
    }
    return true;
}

bool Query::parse(std::string_view query, std::string* error) {
    params_.clear();
    while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view part = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (part.empty()) continue;
        size_t eq = part.find('=');
        std::string name, value;
        bool ok = percent_decode(part.substr(0, eq), true, &name);
        if (ok && eq != std::string_view::npos) ok = percent_decode(part.substr(eq + 1), true, &value);
        if (!ok) {
            *error = "malformed percent-encoding in the query string";
            return false;
        }
        params_.emplace_back(std::move(name), std::move(value));
    }
    return true;
}

const std::string* Query::get(std::string_view name) const {
    for (const auto& [k, v] : params_) {
        if (k == name) return &v;
    }
    return nullptr;
}

std::optional<uint64_t> Query::number(std::string_view name, std::string* error) const {
    const std::string* v = get(name);
    if (v == nullptr) return std::nullopt;
    uint64_t n = 0;
    if (!parse_u64(*v, &n)) {
        *error = "?" + std::string(name) + "= must be an unsigned integer";
        return std::nullopt;
    }
    return n;
}

bool parse_duration_ms(std::string_view text, uint64_t* ms) {
    size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') digits++;
    uint64_t n = 0;
    if (!parse_u64(text.substr(0, digits), &n) || n > (uint64_t{1} << 40)) return false;
    std::string_view unit = text.substr(digits);
    uint64_t scale = 0;
    if (unit.empty() || unit == "s") {
        scale = 1000;
    } else if (unit == "ms") {
        scale = 1;
    } else if (unit == "m") {
        scale = 60000;
    } else if (unit == "h") {
        scale = 3600000;
    } else {
        return false;
    }
    *ms = n * scale;
    return true;
}

}  // namespace rampart::store
