// Source addresses and CIDR allow-lists for the ratelimit plugin.
//
// Addresses are parsed once per request into a fixed-size value. IPv4-mapped
// IPv6 addresses (::ffff:a.b.c.d) are treated as the IPv4 address they carry,
// so an allow-list entry 10.0.0.0/8 matches a dual-stack listener's
// ::ffff:10.1.2.3 too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ratelimit {

// One IPv4 or IPv6 address. `family` is 0 when the text was not an address.
struct Address {
    uint8_t family = 0;  // 0, 4 or 6
    uint32_t v4 = 0;     // host byte order
    uint64_t hi = 0;     // IPv6, host byte order: bits 127..64
    uint64_t lo = 0;     // IPv6: bits 63..0

    bool valid() const { return family != 0; }
};

// Parses "192.0.2.1" (four decimal parts, no leading zeros) or an IPv6
// address; a zone ("fe80::1%eth0") is ignored. Returns false (and leaves
// `out` invalid) for anything else, including empty or over-long text.
bool parse_address(std::string_view text, Address* out);

// A network: the address with its host bits cleared, and the prefix length.
struct Cidr {
    uint8_t family = 0;
    uint8_t prefix = 0;
    uint32_t v4 = 0, mask4 = 0;
    uint64_t hi = 0, lo = 0, mask_hi = 0, mask_lo = 0;

    bool contains(const Address& a) const {
        if (a.family != family) return false;
        if (family == 4) return (a.v4 & mask4) == v4;
        return (a.hi & mask_hi) == hi && (a.lo & mask_lo) == lo;
    }
};

// Parses "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128).
// Host bits set below the prefix are cleared ("10.1.2.3/8" is 10.0.0.0/8).
// Zones are refused here. On failure `error` says why.
bool parse_cidr(std::string_view text, Cidr* out, std::string* error);

// A short list of networks, matched linearly (allow-lists are small).
class CidrList {
public:
    void add(const Cidr& c) { nets_.push_back(c); }
    bool empty() const { return nets_.empty(); }
    size_t size() const { return nets_.size(); }
    bool contains(const Address& a) const {
        if (!a.valid()) return false;
        for (const Cidr& c : nets_) {
            if (c.contains(a)) return true;
        }
        return false;
    }

private:
    std::vector<Cidr> nets_;
};

}  // namespace ratelimit
