// Listen/peer addresses: "1.2.3.4:7700" or "[::1]:7700" (literals only;
// a hostname would make start-up depend on DNS).
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>

namespace rampart::net {

struct Address {
    sockaddr_storage storage{};
    std::string host;  // without brackets
    int port = 0;
    bool ipv6 = false;
    const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// Parse `text`; on failure returns false and sets *error to why.
bool parse_address(std::string_view text, Address* out, std::string* error);
// "host:port", or "[host]:port" for IPv6.
std::string format_address(const sockaddr* sa);
bool is_loopback(const Address& addr);

}  // namespace rampart::net
