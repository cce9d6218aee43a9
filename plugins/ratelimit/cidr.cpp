#include "cidr.h"

#include <arpa/inet.h>

#include <cstring>

namespace ratelimit {
namespace {

// Longest textual IPv6 address with an embedded IPv4 part is 45 chars.
constexpr size_t kMaxAddressText = 63;

// Strict dotted quad: exactly four decimal parts 0..255, no leading zeros
// (inet_aton's octal and short forms are refused), nothing else.
bool parse_v4(std::string_view s, uint32_t* out) {
    uint32_t value = 0;
    int parts = 0;
    size_t i = 0;
    while (parts < 4) {
        if (i >= s.size() || s[i] < '0' || s[i] > '9') return false;
        uint32_t part = 0;
        size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            part = part * 10 + static_cast<uint32_t>(s[i] - '0');
            if (part > 255 || i - start >= 3) return false;
            ++i;
        }
        if (i - start > 1 && s[start] == '0') return false;
        value = (value << 8) | part;
        ++parts;
        if (parts < 4) {
            if (i >= s.size() || s[i] != '.') return false;
            ++i;
        }
    }
    if (i != s.size()) return false;
    *out = value;
    return true;
}

uint64_t load_be64(const unsigned char* p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
    return v;
}

bool parse_v6(std::string_view s, Address* out) {
    if (s.empty() || s.size() > kMaxAddressText) return false;
    char buf[kMaxAddressText + 1];
    std::memcpy(buf, s.data(), s.size());
    buf[s.size()] = '\0';
    if (std::strlen(buf) != s.size()) return false;  // embedded NUL
    unsigned char bytes[16];
    if (inet_pton(AF_INET6, buf, bytes) != 1) return false;
    uint64_t hi = load_be64(bytes), lo = load_be64(bytes + 8);
    if (hi == 0 && (lo >> 32) == 0xffffu) {  // ::ffff:a.b.c.d
        out->family = 4;
        out->v4 = static_cast<uint32_t>(lo);
        return true;
    }
    out->family = 6;
    out->hi = hi;
    out->lo = lo;
    return true;
}

}  // namespace

bool parse_address(std::string_view text, Address* out) {
    *out = Address{};
    if (text.empty() || text.size() > kMaxAddressText) return false;
    if (text.find(':') == std::string_view::npos) {
        uint32_t v4;
        if (!parse_v4(text, &v4)) return false;
        out->family = 4;
        out->v4 = v4;
        return true;
    }
    size_t zone = text.find('%');
    if (zone != std::string_view::npos) text = text.substr(0, zone);
    Address a;
    if (!parse_v6(text, &a)) return false;
    *out = a;
    return true;
}

bool parse_cidr(std::string_view text, Cidr* out, std::string* error) {
    *out = Cidr{};
    auto fail = [&](const char* why) {
        if (error != nullptr) *error = why;
        return false;
    };
    if (text.empty()) return fail("empty");
    if (text.size() > kMaxAddressText + 4) return fail("too long");
    std::string_view addr_text = text;
    int prefix = -1;
    size_t slash = text.find('/');
    if (slash != std::string_view::npos) {
        addr_text = text.substr(0, slash);
        std::string_view bits = text.substr(slash + 1);
        if (bits.empty() || bits.size() > 3) return fail("prefix length must be 0..32 (IPv4) or 0..128 (IPv6)");
        prefix = 0;
        for (char c : bits) {
            if (c < '0' || c > '9') return fail("prefix length must be a decimal number");
            prefix = prefix * 10 + (c - '0');
        }
    }
    if (addr_text.find('%') != std::string_view::npos) return fail("zones are not allowed in a network");
    Address a;
    bool v4_text = addr_text.find(':') == std::string_view::npos;
    if (v4_text) {
        if (!parse_v4(addr_text, &a.v4)) return fail("not an IPv4 or IPv6 address");
        a.family = 4;
    } else if (!parse_v6(addr_text, &a)) {
        return fail("not an IPv4 or IPv6 address");
    } else if (a.family == 4) {
        // ::ffff:a.b.c.d/n: the IPv4 network it maps, when n covers the prefix.
        if (prefix >= 0 && prefix < 96) return fail("an IPv4-mapped network needs a prefix of 96..128");
        if (prefix >= 0) prefix -= 96;
    }
    int max = a.family == 4 ? 32 : 128;
    if (prefix < 0) prefix = max;
    if (prefix > max) return fail(a.family == 4 ? "prefix length must be 0..32" : "prefix length must be 0..128");
    out->family = a.family;
    out->prefix = static_cast<uint8_t>(prefix);
    if (a.family == 4) {
        out->mask4 = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
        out->v4 = a.v4 & out->mask4;
    } else {
        out->mask_hi = prefix == 0 ? 0 : prefix >= 64 ? ~uint64_t{0} : ~uint64_t{0} << (64 - prefix);
        out->mask_lo = prefix <= 64 ? 0 : prefix == 128 ? ~uint64_t{0} : ~uint64_t{0} << (128 - prefix);
        out->hi = a.hi & out->mask_hi;
        out->lo = a.lo & out->mask_lo;
    }
    return true;
}

}  // namespace ratelimit
