// "<node_id>@<host:port>": how a member's peer address is written in the
// engine's replicated configuration and in cluster.seeds. Carrying the node
// id there binds each Raft id to the certificate identity that owns it on
// every node, from the configuration alone (docs/cluster.md, "Identity").
// Addresses written by earlier builds have no "<node_id>@": their node ids
// come from etc/peers.yml.
#pragma once

#include <string>
#include <string_view>

namespace rampart::cluster {

struct MemberAddress {
    std::string node_id;  // "" when the address names none
    std::string address;  // host:port
};

inline MemberAddress split_member_address(std::string_view s) {
    size_t at = s.find('@');
    if (at == std::string_view::npos) return {"", std::string(s)};
    return {std::string(s.substr(0, at)), std::string(s.substr(at + 1))};
}

inline std::string member_address(std::string_view node_id, std::string_view address) {
    return std::string(node_id) + "@" + std::string(address);
}

}  // namespace rampart::cluster
