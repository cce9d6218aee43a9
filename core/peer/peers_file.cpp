// The etc/peers.yml loader: the hardened YAML tree (config/yaml_tree.h),
// then every key checked; all problems are collected, in file order, and
// reported as "file:line:column: key: message" like the main config.
#include "peer/peers_file.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <tuple>
#include <unordered_map>

#include "config/yaml_tree.h"

namespace rampart::peer {
namespace {

using config::kMaxYamlErrors;
using config::quote_for_message;
using config::YamlEntry;
using config::YamlNode;

constexpr size_t kMaxPathBytes = 4096;
constexpr size_t kMaxNodeIdBytes = 63;

constexpr const char* kTopKeys[] = {"allow_insecure_peers", "tls", "peers"};
constexpr const char* kTlsKeys[] = {"ca_cert", "server_cert", "server_key", "client_cert", "client_key"};
constexpr const char* kPeerKeys[] = {"node_id", "address", "port"};
// Needed unless allow_insecure_peers is true; client_* default to server_*.
constexpr const char* kRequiredTlsKeys[] = {"ca_cert", "server_cert", "server_key"};

struct Diagnostic {
    int line = 0;  // 0: about the file as a whole
    int column = 0;
    std::string key;
    std::string message;
};

template <size_t N>
bool is_one_of(const std::string& key, const char* const (&names)[N]) {
    return std::find_if(std::begin(names), std::end(names), [&](const char* n) { return key == n; }) != std::end(names);
}

template <size_t N>
std::string joined(const char* const (&names)[N]) {
    std::string out;
    for (const char* name : names) out += (out.empty() ? "" : ", ") + std::string(name);
    return out;
}

const char* kind_name(const YamlNode& node) {
    switch (node.kind) {
        case YamlNode::Kind::Mapping: return "a mapping";
        case YamlNode::Kind::Sequence: return "a list";
        case YamlNode::Kind::Scalar: break;
    }
    return node.is_null() ? "an empty value" : "a scalar";
}

// What a bad value was: the text itself (escaped, cut short) for a
// scalar, its kind otherwise.
std::string shown(const YamlNode& node) {
    if (node.kind == YamlNode::Kind::Scalar && !node.is_null()) return quote_for_message(node.scalar);
    return kind_name(node);
}

bool is_node_id_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// An IPv4 or IPv6 literal ("::1" or "[::1]"), in canonical form
// (inet_ntop), so that two spellings of one address compare equal.
bool canonical_address(const std::string& text, std::string* out, std::string* why) {
    std::string host = text;
    bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
    if (bracketed) host = host.substr(1, host.size() - 2);
    unsigned char buf[16];
    char printed[INET6_ADDRSTRLEN] = {0};
    if (host.find(':') != std::string::npos || bracketed) {
        if (inet_pton(AF_INET6, host.c_str(), buf) == 1 && inet_ntop(AF_INET6, buf, printed, sizeof printed)) {
            *out = printed;
            return true;
        }
        *why = "expected an IPv4 or IPv6 address literal, got " + quote_for_message(text);
        // "127.0.0.1:7711" or "[::1]:7711": the port has its own key.
        if (text.find("]:") != std::string::npos || (!bracketed && std::count(text.begin(), text.end(), ':') == 1)) {
            *why += "; give the port in \"port\"";
        }
        return false;
    }
    if (inet_pton(AF_INET, host.c_str(), buf) == 1 && inet_ntop(AF_INET, buf, printed, sizeof printed)) {
        *out = printed;
        return true;
    }
    *why = "expected an IPv4 or IPv6 address literal, got " + quote_for_message(text) + "; host names are not allowed";
    return false;
}

class Loader {
public:
    explicit Loader(std::string file) : file_(std::move(file)) {}

    PeersLoad run(std::string_view text) {
        config::YamlDocument doc = config::parse_yaml(text);
        for (config::YamlError& e : doc.errors) add_error({e.line, e.column, e.key, std::move(e.message)});
        // After a syntax error the tree holds only what came before it, so
        // a key that seems missing may just not have been read.
        yaml_complete_ = doc.errors.empty();
        walk_top(doc.root);
        return finish();
    }

private:
    void walk_top(const YamlNode& root) {
        if (root.kind != YamlNode::Kind::Mapping) return;  // parse_yaml reported it
        const YamlEntry* tls = nullptr;
        bool insecure_seen = false;
        for (const YamlEntry& entry : root.entries) {
            if (entry.key == "allow_insecure_peers") {
                insecure_seen = read_bool(entry, entry.key, &out_.allow_insecure_peers);
            } else if (entry.key == "tls") {
                tls = &entry;
                read_tls(entry);
            } else if (entry.key == "peers") {
                read_peers(entry);
            } else {
                unknown_key(entry, "", kTopKeys);
            }
        }
        // An empty file configures nothing, and is valid as such.
        if (root.entries.empty() || !yaml_complete_) return;
        bool tls_given = tls != nullptr && tls->value.kind == YamlNode::Kind::Mapping && !tls->value.entries.empty();
        // A bad allow_insecure_peers was reported already; guessing either
        // way would only add noise.
        bool insecure_bad = !insecure_seen && has_key(root, "allow_insecure_peers");
        if (insecure_bad || (out_.allow_insecure_peers && !tls_given)) return;
        check_tls_complete(tls);
    }

    static bool has_key(const YamlNode& mapping, const char* key) {
        return std::any_of(mapping.entries.begin(), mapping.entries.end(),
                           [&](const YamlEntry& e) { return e.key == key; });
    }

    void check_tls_complete(const YamlEntry* tls) {
        const YamlNode* mapping = tls != nullptr && tls->value.kind == YamlNode::Kind::Mapping ? &tls->value : nullptr;
        if (tls != nullptr && mapping == nullptr && !tls->value.is_null()) return;  // wrong type, reported
        std::string why =
            out_.allow_insecure_peers ? "required in a tls section" : "required unless allow_insecure_peers is true";
        for (const char* key : kRequiredTlsKeys) {
            if (mapping != nullptr && has_key(*mapping, key)) continue;
            std::string path = std::string("tls.") + key;
            if (mapping != nullptr && !mapping->entries.empty()) {
                add_error({mapping->line, mapping->column, path, "missing; " + why});
            } else if (tls != nullptr) {
                add_error({tls->line, tls->column, path, "missing; " + why});
            } else {
                add_error({0, 0, path, "missing; " + why});
            }
        }
        if (mapping != nullptr && has_key(*mapping, "client_cert") != has_key(*mapping, "client_key")) {
            add_error({mapping->line, mapping->column, "tls",
                       "client_cert and client_key go together: give both, or neither to use "
                       "server_cert and server_key"});
        }
    }

    void read_tls(const YamlEntry& entry) {
        const YamlNode& node = entry.value;
        if (node.is_null()) return;
        if (node.kind != YamlNode::Kind::Mapping) {
            add_error({node.line, node.column, "tls",
                       "expected a mapping of " + joined(kTlsKeys) + ", got " + kind_name(node)});
            return;
        }
        PeerTls& tls = out_.tls;
        for (const YamlEntry& child : node.entries) {
            std::string path = "tls." + child.key;
            std::string* field = child.key == "ca_cert"       ? &tls.ca_cert
                                 : child.key == "server_cert" ? &tls.server_cert
                                 : child.key == "server_key"  ? &tls.server_key
                                 : child.key == "client_cert" ? &tls.client_cert
                                 : child.key == "client_key"  ? &tls.client_key
                                                              : nullptr;
            if (field == nullptr) {
                unknown_key(child, "tls", kTlsKeys);
            } else {
                read_path(child, path, field);
            }
        }
        if (tls.client_cert.empty()) tls.client_cert = tls.server_cert;
        if (tls.client_key.empty()) tls.client_key = tls.server_key;
    }

    void read_peers(const YamlEntry& entry) {
        const YamlNode& node = entry.value;
        if (node.is_null()) return;
        if (node.kind != YamlNode::Kind::Sequence) {
            add_error({node.line, node.column, "peers",
                       "expected a list of {node_id, address, port}, got " + std::string(kind_name(node))});
            return;
        }
        if (node.items.size() > kMaxPeers) {
            add_error({node.line, node.column, "peers",
                       "at most " + std::to_string(kMaxPeers) + " peers are allowed, got " +
                           std::to_string(node.items.size())});
        }
        // First one wins; a later entry with the same id or endpoint goes.
        // Hashed: a 1 MiB file can hold tens of thousands of entries.
        std::unordered_map<std::string, size_t> by_id, by_endpoint;  // -> index in out_.peers
        std::vector<size_t> file_index;                              // of each entry in out_.peers
        for (size_t i = 0; i < node.items.size(); ++i) {
            PeerEntry peer;
            const YamlNode& item = node.items[i];
            std::string path = "peers[" + std::to_string(i) + "]";
            if (!read_peer(item, path, &peer)) continue;
            std::string endpoint = peer.endpoint();
            auto id_it = by_id.find(peer.node_id);
            auto ep_it = by_endpoint.find(endpoint);
            if (id_it != by_id.end() || ep_it != by_endpoint.end()) {
                size_t kept = std::min(id_it != by_id.end() ? id_it->second : SIZE_MAX,
                                       ep_it != by_endpoint.end() ? ep_it->second : SIZE_MAX);
                const PeerEntry& first = out_.peers[kept];
                add_warning({item.line, item.column, path,
                             "duplicate of peers[" + std::to_string(file_index[kept]) + "] (" + first.node_id + " " +
                                 first.endpoint() + ") removed"});
                continue;
            }
            by_id.emplace(peer.node_id, out_.peers.size());
            by_endpoint.emplace(std::move(endpoint), out_.peers.size());
            file_index.push_back(i);
            out_.peers.push_back(std::move(peer));
        }
    }

    // False when the entry has a problem (reported here).
    bool read_peer(const YamlNode& item, const std::string& path, PeerEntry* peer) {
        if (item.kind != YamlNode::Kind::Mapping) {
            add_error({item.line, item.column, path,
                       "expected a mapping {node_id, address, port}, got " + std::string(kind_name(item))});
            return false;
        }
        bool ok = true;
        for (const YamlEntry& child : item.entries) {
            std::string child_path = path + "." + child.key;
            if (child.key == "node_id") {
                ok = read_node_id(child, child_path, &peer->node_id) && ok;
            } else if (child.key == "address") {
                ok = read_address(child, child_path, &peer->address) && ok;
            } else if (child.key == "port") {
                ok = read_port(child, child_path, &peer->port) && ok;
            } else {
                unknown_key(child, path, kPeerKeys);
                ok = false;
            }
        }
        for (const char* key : kPeerKeys) {
            if (has_key(item, key)) continue;
            ok = false;
            if (yaml_complete_) {
                add_error({item.line, item.column, path + "." + key, "missing; every peer needs " + joined(kPeerKeys)});
            }
        }
        return ok;
    }

    // A scalar, non-empty; otherwise reported (at the key for an empty
    // value, which has no useful position of its own).
    bool scalar_text(const YamlEntry& entry, const std::string& path, const std::string& expected) {
        const YamlNode& node = entry.value;
        if (node.kind == YamlNode::Kind::Scalar && !node.is_null()) return true;
        int line = node.is_null() ? entry.line : node.line;
        int column = node.is_null() ? entry.column : node.column;
        add_error({line, column, path, "expected " + expected + ", got " + kind_name(node)});
        return false;
    }

    bool read_bool(const YamlEntry& entry, const std::string& path, bool* out) {
        if (!scalar_text(entry, path, "true or false")) return false;
        const YamlNode& node = entry.value;
        if (node.scalar == "true" || node.scalar == "false") {
            *out = node.scalar == "true";
            return true;
        }
        add_error({node.line, node.column, path, "expected true or false, got " + shown(node)});
        return false;
    }

    bool read_path(const YamlEntry& entry, const std::string& path, std::string* out) {
        if (!scalar_text(entry, path, "a file path")) return false;
        const YamlNode& node = entry.value;
        std::string why;
        if (node.scalar.empty()) {
            why = "must not be empty";
        } else if (node.scalar.size() > kMaxPathBytes) {
            why = "must be at most " + std::to_string(kMaxPathBytes) + " bytes long, got " +
                  std::to_string(node.scalar.size());
        } else if (std::any_of(node.scalar.begin(), node.scalar.end(),
                               [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
            why = "contains a control character: " + quote_for_message(node.scalar);
        }
        if (!why.empty()) {
            add_error({node.line, node.column, path, why});
            return false;
        }
        *out = node.scalar;
        return true;
    }

    bool read_node_id(const YamlEntry& entry, const std::string& path, std::string* out) {
        if (!scalar_text(entry, path, "a node id")) return false;
        const YamlNode& node = entry.value;
        const std::string& text = node.scalar;
        if (text.empty() || text.size() > kMaxNodeIdBytes || !std::all_of(text.begin(), text.end(), is_node_id_char)) {
            add_error({node.line, node.column, path,
                       "a node id must be 1 to 63 characters of A-Z a-z 0-9 _ -, got " + quote_for_message(text)});
            return false;
        }
        *out = text;
        return true;
    }

    bool read_address(const YamlEntry& entry, const std::string& path, std::string* out) {
        if (!scalar_text(entry, path, "an IPv4 or IPv6 address literal")) return false;
        const YamlNode& node = entry.value;
        std::string why;
        if (canonical_address(node.scalar, out, &why)) return true;
        add_error({node.line, node.column, path, why});
        return false;
    }

    bool read_port(const YamlEntry& entry, const std::string& path, int* out) {
        const std::string expected = "an integer 1..65535";
        if (!scalar_text(entry, path, expected)) return false;
        const YamlNode& node = entry.value;
        const std::string& text = node.scalar;
        int value = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > 65535) {
            add_error({node.line, node.column, path, "expected " + expected + ", got " + shown(node)});
            return false;
        }
        *out = value;
        return true;
    }

    template <size_t N>
    void unknown_key(const YamlEntry& entry, const std::string& parent, const char* const (&allowed)[N]) {
        std::string path = parent.empty() ? entry.key : parent + "." + entry.key;
        std::string where = parent.empty() ? "at the top level" : "in \"" + parent + "\"";
        add_error({entry.line, entry.column, path,
                   "unknown key " + quote_for_message(entry.key) + " " + where + "; allowed: " + joined(allowed)});
    }

    void add_error(Diagnostic d) { add_capped(&errors_, std::move(d)); }
    void add_warning(Diagnostic d) { add_capped(&warnings_, std::move(d)); }

    static void add_capped(std::vector<Diagnostic>* list, Diagnostic d) {
        if (list->size() < kMaxYamlErrors) {
            list->push_back(std::move(d));
        } else if (list->size() == kMaxYamlErrors) {
            list->push_back({0, 0, "", "too many problems; stopped reporting"});
        }
    }

    std::string format(const Diagnostic& d) const {
        std::string out = file_;
        if (d.line > 0) out += ":" + std::to_string(d.line);
        if (d.line > 0 && d.column > 0) out += ":" + std::to_string(d.column);
        out += ": ";
        if (!d.key.empty()) out += d.key + ": ";
        return out + d.message;
    }

    // File order; problems without a position (the file as a whole, the
    // "too many" note) last.
    std::vector<std::string> sorted(std::vector<Diagnostic> list) const {
        std::stable_sort(list.begin(), list.end(), [](const Diagnostic& a, const Diagnostic& b) {
            auto rank = [](const Diagnostic& d) { return std::tuple(d.line > 0 ? 0 : 1, d.line, d.column); };
            return rank(a) < rank(b);
        });
        std::vector<std::string> out;
        out.reserve(list.size());
        for (const Diagnostic& d : list) out.push_back(format(d));
        return out;
    }

    PeersLoad finish() {
        PeersLoad result;
        result.errors = sorted(std::move(errors_));
        result.warnings = sorted(std::move(warnings_));
        // Half a file is never put in force.
        if (result.errors.empty()) result.file = std::move(out_);
        return result;
    }

    std::string file_;
    bool yaml_complete_ = true;
    PeersFile out_;
    std::vector<Diagnostic> errors_;
    std::vector<Diagnostic> warnings_;
};

// Nothing escapes: out of memory becomes an error.
template <typename Fn>
PeersLoad guarded(const std::string& file, Fn&& fn) {
    try {
        return fn();
    } catch (...) {
        PeersLoad result;
        result.errors.push_back(file + ": internal error while loading (out of memory?)");
        return result;
    }
}

}  // namespace

std::string PeerEntry::endpoint() const {
    std::string port_text = std::to_string(port);
    if (address.find(':') != std::string::npos) return "[" + address + "]:" + port_text;
    return address + ":" + port_text;
}

PeersLoad parse_peers(const std::string& text, const std::string& file) {
    return guarded(file, [&] { return Loader(file).run(text); });
}

PeersLoad load_peers(const std::string& path) {
    return guarded(path, [&] {
        std::string text, why;
        if (config::read_yaml_file(path, &text, &why)) return parse_peers(text, path);
        PeersLoad result;
        result.errors.push_back(path + ": " + why);
        return result;
    });
}

}  // namespace rampart::peer
