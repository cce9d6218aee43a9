#include "net/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace rampart::net {
namespace {

bool parse_port(std::string_view s, int* port) {
    if (s.empty() || s.size() > 5) return false;
    int value = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || ptr != s.data() + s.size() || value < 0 || value > 65535) return false;
    *port = value;
    return true;
}

}  // namespace

bool parse_address(std::string_view text, Address* out, std::string* error) {
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            *error = "expected \"[IPv6]:port\"";
            return false;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        out->ipv6 = true;
    } else {
        size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            *error = "expected \"host:port\"";
            return false;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            *error = "IPv6 addresses need brackets: \"[::1]:7700\"";
            return false;
        }
        out->ipv6 = false;
    }
    if (!parse_port(port, &out->port)) {
        *error = "port must be a number from 0 to 65535";
        return false;
    }
    out->host.assign(host);
    out->storage = {};
    if (out->ipv6) {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(static_cast<uint16_t>(out->port));
        if (inet_pton(AF_INET6, out->host.c_str(), &sin6->sin6_addr) != 1) {
            *error = "\"" + out->host + "\" is not an IPv6 address";
            return false;
        }
    } else {
        auto* sin = reinterpret_cast<sockaddr_in*>(&out->storage);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(static_cast<uint16_t>(out->port));
        if (inet_pton(AF_INET, out->host.c_str(), &sin->sin_addr) != 1) {
            *error = "\"" + out->host + "\" is not an IPv4 address (host names are not allowed)";
            return false;
        }
    }
    return true;
}

std::string format_address(const sockaddr* sa) {
    char buf[INET6_ADDRSTRLEN] = {0};
    if (sa->sa_family == AF_INET6) {
        auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
        inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
        return "[" + std::string(buf) + "]:" + std::to_string(ntohs(sin6->sin6_port));
    }
    if (sa->sa_family == AF_INET) {
        auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
        inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
        return std::string(buf) + ":" + std::to_string(ntohs(sin->sin_port));
    }
    return "unknown";
}

bool is_loopback(const Address& addr) {
    if (addr.ipv6) {
        auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&addr.storage);
        return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
    }
    auto* sin = reinterpret_cast<const sockaddr_in*>(&addr.storage);
    return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
}

}  // namespace rampart::net
