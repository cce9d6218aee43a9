// etc/peers.yml: the bootstrap peers and the peer port's TLS material.
//
//   allow_insecure_peers: false
//   tls:
//     ca_cert: var/certs/ca.pem
//     server_cert: var/certs/node_1.pem
//     server_key: var/certs/node_1.key
//     client_cert: var/certs/node_1.pem   # optional, defaults to server_cert
//     client_key: var/certs/node_1.key    # optional, defaults to server_key
//   peers:
//     - {node_id: node_2, address: 127.0.0.1, port: 7711}
//
// Reloaded on SIGHUP. Every problem is reported as "file:line:column:
// key: message" (exit 78 at start; at reload the old file stays in force).
#pragma once

#include <string>
#include <vector>

namespace rampart::peer {

struct PeerEntry {
    std::string node_id;  // 1-63 of A-Z a-z 0-9 _ -
    std::string address;  // an IP literal (v4, or v6 without brackets)
    int port = 0;         // 1..65535
    // "address:port", "[v6]:port" for IPv6.
    std::string endpoint() const;
};

struct PeerTls {
    std::string ca_cert, server_cert, server_key, client_cert, client_key;
};

struct PeersFile {
    bool allow_insecure_peers = false;
    PeerTls tls;
    std::vector<PeerEntry> peers;  // duplicates removed, file order kept
};

struct PeersLoad {
    bool ok() const { return errors.empty(); }
    PeersFile file;
    std::vector<std::string> errors;    // "file:line:col: key: message"
    std::vector<std::string> warnings;  // duplicates removed, and the like
};

inline constexpr size_t kMaxPeers = 1024;

// Parse `text` (named `file` in messages).
PeersLoad parse_peers(const std::string& text, const std::string& file);
// Read and parse `path`; a missing or unreadable file is an error.
PeersLoad load_peers(const std::string& path);

}  // namespace rampart::peer
