// The schema: every configuration key with its type, default, bounds,
// reload flag and description, plus the rules that check one value.
// docs/configuration.md and etc/rampart.yml mirror this table; the unit
// test fails when they drift apart.
#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iterator>
#include <type_traits>

#include "config/config.h"
#include "config/yaml_tree.h"

namespace rampart::config {
namespace {

using enum ValueType;

constexpr int64_t kPathMax = 4096;   // PATH_MAX: longer paths cannot be opened anyway
constexpr int64_t kTokenMax = 1024;  // generous for any token format we issue
constexpr int64_t kListMax = 64;     // seeds / plugins: bounded against hostile input

// clang-format off
constexpr KeySpec kSchema[] = {
    {"node.id", String, "node_1", 1, 63, nullptr, false, false,
     "Node name, also the DNS SAN of the node's certificate: 1-63 of A-Z a-z 0-9 _ -"},
    {"node.data_dir", String, "/var/lib/rampart", 1, kPathMax, nullptr, false, false,
     "Directory for the Raft log, snapshots, state.json and audit.jsonl"},
    {"node.pid_file", String, "", 0, kPathMax, nullptr, false, false,
     "Write the daemon's pid here at start (empty: no pid file)"},
    {"node.min_free_bytes", Int, "67108864", 0, 1099511627776, nullptr, true, false,
     "Free-space floor of data_dir's file system: below it writes get 507 and a leader hands over (0 = off)"},
    {"node.audit_max_bytes", Int, "10485760", 4096, 1073741824, nullptr, false, false,
     "audit.jsonl rotates to audit.jsonl.1 before it would pass this size"},
    {"node.audit_keep", Int, "5", 0, 100, nullptr, false, false,
     "Rotated audit files kept (audit.jsonl.1 .. .N); older ones are removed"},

    {"api.listen", Address, "127.0.0.1:7700", 0, 65535, nullptr, false, false,
     "HTTP API address: IPv4 \"a.b.c.d:port\" or \"[v6]:port\" (port 0 = any free port)"},
    {"api.advertise", Address, "", 0, 65535, nullptr, true, false,
     "API address other members send clients to (307 redirects); empty: api.listen as bound"},
    {"api.max_body_bytes", Int, "65536", 1024, 67108864, nullptr, true, false,
     "Largest request body; larger requests get 413"},
    {"api.max_header_bytes", Int, "8192", 1024, 1048576, nullptr, true, false,
     "Largest request header block; larger ones get 431"},
    {"api.max_uri_bytes", Int, "8192", 256, 1048576, nullptr, true, false,
     "Longest request target (path and query); longer ones get 414"},
    {"api.request_timeout_ms", Int, "5000", 100, 600000, nullptr, true, false,
     "Time to receive a whole request; slower clients get 408"},
    {"api.idle_timeout_ms", Int, "60000", 100, 3600000, nullptr, true, false,
     "Close keep-alive connections idle for this long"},
    {"api.max_connections", Int, "1024", 1, 1000000, nullptr, true, false,
     "Open client connections at most; further ones are refused"},
    {"api.max_pipelined", Int, "32", 1, 1024, nullptr, true, false,
     "Requests queued on one connection at most (HTTP pipelining)"},
    {"api.shutdown_timeout_ms", Int, "10000", 0, 600000, nullptr, true, false,
     "On SIGTERM, wait this long for requests in flight before closing"},
    {"api.tls.cert", String, "", 0, kPathMax, nullptr, false, false,
     "PEM certificate for HTTPS on the API (empty: plain HTTP)"},
    {"api.tls.key", String, "", 0, kPathMax, nullptr, false, false,
     "PEM private key of api.tls.cert; must be mode 0600 or 0400"},
    {"api.tls.ca", String, "", 0, kPathMax, nullptr, false, false,
     "PEM CA bundle that client certificates must chain to"},
    {"api.tls.require_client_cert", Bool, "false", 0, 1, nullptr, false, false,
     "Refuse API clients without a certificate from api.tls.ca"},

    {"peer.listen", Address, "127.0.0.1:7701", 0, 65535, nullptr, false, false,
     "Mutual-TLS peer address for Raft and node-to-node traffic"},
    {"peer.peers_file", String, "etc/peers.yml", 1, kPathMax, nullptr, false, false,
     "Bootstrap peers and peer TLS files (reloaded on SIGHUP by itself)"},
    {"peer.pins_file", String, "etc/pinned_certs.json", 1, kPathMax, nullptr, false, false,
     "Pinned peer certificate fingerprints (reloaded on SIGHUP by itself)"},
    {"peer.insecure_warning_ms", Int, "60000", 1000, 86400000, nullptr, false, false,
     "With allow_insecure_peers, repeat the insecure-mode warning this often"},

    {"cluster.seeds", StringList, "", 0, kListMax, nullptr, true, false,
     "Members to join through: node_id@host:port (or host:port of a peer in etc/peers.yml)"},
    {"cluster.discovery_srv", String, "", 0, 253, nullptr, false, false,
     "Domain whose DNS SRV records _rampart._tcp.<domain> list more seeds (empty: off); asked again after their TTL"},
    {"cluster.dns_server", String, "", 0, 0, nullptr, false, false,
     "DNS server for cluster.discovery_srv, IPv4 \"a.b.c.d:port\" (empty: the system resolver)"},
    {"cluster.join_token", String, "", 0, kTokenMax, nullptr, false, true,
     "Token to present when joining a cluster (secret: never logged)"},
    {"cluster.role", Enum, "voter", 0, 0, "voter|standby|spare", false, false,
     "Raft role: voter votes and counts for quorum; standby replicates without voting; spare neither"},
    {"cluster.max_store_bytes", Int, "67108864", 4096, 17179869184, nullptr, false, false,
     "Store size cap (key + value bytes); writes past it get 507. Must be equal on every member"},
    {"cluster.election_timeout_ms", Int, "500", 100, 60000, nullptr, false, false,
     "Raft election timeout: a follower that hears nothing from its leader for this long (randomised up to twice it) "
     "starts an election. Failover takes about 1.5 times it; raise it on slow or lossy links"},
    {"cluster.heartbeat_ms", Int, "50", 10, 30000, nullptr, false, false,
     "Raft heartbeat interval of a leader; at most half of cluster.election_timeout_ms"},
    {"cluster.snapshot_threshold", Int, "1024", 16, 1000000, nullptr, false, false,
     "Raft log entries between snapshots"},
    {"cluster.snapshot_trailing", Int, "128", 0, 1000000, nullptr, false, false,
     "Raft log entries kept after a snapshot (lets a lagging member catch up without one)"},
    {"cluster.snapshot_write_timeout_ms", Int, "30000", 1000, 3600000, nullptr, false, false,
     "A snapshot write of this node not finished after this long counts as failed (task \"snapshots\"): the "
     "engine retries a failed write (full disk, I/O error) on its own, silently"},
    {"cluster.snapshot_retention", Int, "2", 1, 1000, nullptr, false, false,
     "Engine snapshots kept in data_dir/raft; older ones are removed at start"},
    {"cluster.follower_writes", Enum, "forward", 0, 0, "forward|redirect", true, false,
     "A request that needs the leader, on a follower: forward it to the leader, or answer 307 to the leader's API"},
    {"cluster.auto_promote", Bool, "true", 0, 1, nullptr, true, false,
     "The leader promotes a joined voter from standby once it has caught up (false: it stays standby)"},
    {"cluster.remove_dead_after_ms", Int, "0", 0, 604800000, nullptr, true, false,
     "The leader removes a member silent this long, only while the rest keeps a quorum (0 = never)"},

    {"log.level", Enum, "info", 0, 0, "debug|info|warn|error", true, false,
     "Lowest level written"},
    {"log.format", Enum, "json", 0, 0, "json|console", true, false,
     "One JSON object per line, or human-readable console lines"},
    {"log.sampling", Int, "100", 1, 1000000, nullptr, true, false,
     "Log 1 in N requests to high-volume routes at info (errors are never sampled)"},

    {"plugins.dir", String, "build/plugins", 1, kPathMax, nullptr, false, false,
     "Directory holding the plugin .so files"},
    {"plugins.load", StringList, "", 0, kListMax, nullptr, false, false,
     "Plugins to load, by name without .so (e.g. transport_tls, metrics)"},

    {"policies.dir", String, "policies", 1, kPathMax, nullptr, true, false,
     "Directory of the Lua policies (retry, backoff, ratelimit, recovery)"},

    {"auth.enabled", Bool, "false", 0, 1, nullptr, false, false,
     "Require a bearer token on /v1/ routes (except /v1/status/)"},
    {"auth.bootstrap_token", String, "", 0, kTokenMax, nullptr, false, true,
     "Initial admin token (secret: never logged; empty: one is generated when auth is on)"},

    {"ratelimit.auth_failures_per_min", Int, "10", 1, 1000000, nullptr, true, false,
     "Failed authentications per source IP per minute before 429"},
    {"ratelimit.auth_failures_block_min", Int, "60", 0, 100000, nullptr, true, false,
     "Minutes a source stays blocked after repeated auth failures"},
    {"ratelimit.requests_per_min", Int, "100", 1, 1000000, nullptr, true, false,
     "Authenticated requests per identity per minute"},
    {"ratelimit.unauth_per_min", Int, "30", 1, 1000000, nullptr, true, false,
     "Unauthenticated requests (health checks etc.) per source IP per minute"},
    {"ratelimit.max_tracked_keys", Int, "100000", 16, 10000000, nullptr, true, false,
     "Addresses and identities tracked at most (least recently seen evicted first)"},
    {"ratelimit.allow_cidrs", StringList, "", 0, kListMax, nullptr, true, false,
     "Networks never rate limited, e.g. [127.0.0.0/8, \"::1/128\"] (checked by the ratelimit plugin)"},
};
// clang-format on

// Some strings have a shape beyond their length. Kept out of KeySpec so
// the public struct stays as it is; keyed by path, looked up rarely.
enum class Shape { Any, Name, Address, OptionalAddress, Domain, DnsServer };

Shape shape_of(const KeySpec& spec) {
    std::string_view path = spec.path;
    if (path == "node.id" || path == "plugins.load") return Shape::Name;  // no '/', no ".."
    if (path == "api.advertise") return Shape::OptionalAddress;           // empty: api.listen as bound
    if (path == "cluster.seeds" || spec.type == Address) return Shape::Address;
    if (path == "cluster.discovery_srv") return Shape::Domain;
    if (path == "cluster.dns_server") return Shape::DnsServer;
    return Shape::Any;
}

bool is_name_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

std::string range_text(int64_t min, int64_t max) { return std::to_string(min) + ".." + std::to_string(max); }

// Control characters in paths or names end up in logs and terminals.
bool check_plain_text(std::string_view text, std::string* why) {
    for (unsigned char c : text) {
        if (c < 0x20 || c == 0x7f) {
            char hex[8];
            snprintf(hex, sizeof hex, "0x%02x", c);
            *why = std::string("contains a control character (") + hex + ")";
            return false;
        }
    }
    return true;
}

bool check_name(std::string_view text, std::string* why) {
    bool ok = !text.empty() && text.size() <= 63 && std::all_of(text.begin(), text.end(), is_name_char);
    if (!ok) *why = "must be 1 to 63 characters of A-Z a-z 0-9 _ -";
    return ok;
}

bool parse_port(std::string_view text, int* port) {
    if (text.empty() || text.size() > 5) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *port);
    return ec == std::errc() && end == text.data() + text.size() && *port >= 0 && *port <= 65535;
}

bool check_address(std::string_view text, std::string* why) {
    const std::string hint = " (expected \"a.b.c.d:port\" or \"[v6]:port\", e.g. \"127.0.0.1:7700\")";
    bool v6 = !text.empty() && text.front() == '[';
    size_t colon = v6 ? text.find("]:") : text.rfind(':');
    if (colon == std::string_view::npos || (!v6 && text.find(':') != colon)) {
        *why = "not an address" + hint;
        return false;
    }
    std::string host(text.substr(v6 ? 1 : 0, v6 ? colon - 1 : colon));
    std::string_view port_text = text.substr(colon + (v6 ? 2 : 1));
    int port = 0;
    if (!parse_port(port_text, &port)) {
        *why = "port must be a number from 0 to 65535" + hint;
        return false;
    }
    unsigned char buf[16];
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host.c_str(), buf) != 1) {
        *why = v6 ? "not an IPv6 address literal" + hint
                  : "not an IPv4 address literal; host names are not allowed" + hint;
        return false;
    }
    return true;
}

// A DNS name for SRV discovery ("" = off): dot-separated labels of
// A-Z a-z 0-9 - _ (SRV owner names carry underscores), 1-63 each, 253 in
// all, one trailing dot allowed.
bool check_domain(std::string_view text, std::string* why) {
    if (text.empty()) return true;
    if (text.back() == '.') text.remove_suffix(1);
    size_t label = 0;
    for (char c : text) {
        if (c == '.') {
            if (label == 0) break;
            label = 0;
        } else if (!is_name_char(c)) {
            *why = "a domain name holds only A-Z a-z 0-9 - _ and dots (e.g. \"rampart.example.com\")";
            return false;
        } else if (++label > 63) {
            *why = "each label of a domain name is at most 63 characters";
            return false;
        }
    }
    if (label == 0 || text.size() > 253) {
        *why = text.size() > 253 ? "a domain name is at most 253 characters"
                                 : "a domain name has no empty labels (\"..\", a leading dot, or only \".\")";
        return false;
    }
    return true;
}

// "" (the system resolver) or an IPv4 address:port: the libc resolver
// takes a custom server only as IPv4.
bool check_dns_server(std::string_view text, std::string* why) {
    if (text.empty()) return true;
    if (text.front() == '[') {
        *why = "an IPv6 DNS server is not supported here; give an IPv4 \"a.b.c.d:port\" or leave it empty";
        return false;
    }
    return check_address(text, why);
}

bool check_string(const KeySpec& spec, std::string_view text, std::string* why) {
    if (!check_plain_text(text, why)) return false;
    switch (shape_of(spec)) {
        case Shape::Name: return check_name(text, why);
        case Shape::Address: return check_address(text, why);
        case Shape::Domain: return check_domain(text, why);
        case Shape::DnsServer: return check_dns_server(text, why);
        case Shape::OptionalAddress: return text.empty() || check_address(text, why);
        case Shape::Any: break;
    }
    if (static_cast<int64_t>(text.size()) < spec.min || static_cast<int64_t>(text.size()) > spec.max) {
        *why = text.empty()   ? std::string("must not be empty")
               : spec.min > 0 ? "must be " + range_text(spec.min, spec.max) + " characters long"
                              : "must be at most " + std::to_string(spec.max) + " characters long";
        return false;
    }
    return true;
}

// Secrets are never quoted back; everything else is, escaped and cut
// short so that a hostile value cannot flood or corrupt the output.
std::string shown(const KeySpec& spec, std::string_view text) {
    return spec.secret ? "the value" : quote_for_message(text);
}

std::string enum_list(const KeySpec& spec) {
    std::string out = spec.enum_values;
    for (size_t at = out.find('|'); at != std::string::npos; at = out.find('|', at)) out.replace(at, 1, ", ");
    return out;
}

bool parse_int(const KeySpec& spec, std::string_view text, Value* out, std::string* why) {
    int64_t number = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (ec == std::errc::result_out_of_range) {
        *why = shown(spec, text) + " is out of range; must be " + range_text(spec.min, spec.max);
        return false;
    }
    if (ec != std::errc() || end != text.data() + text.size()) {
        *why = "expected an integer, got " + shown(spec, text);
        return false;
    }
    *out = number;
    return true;
}

bool parse_bool(const KeySpec& spec, std::string_view text, Value* out, std::string* why) {
    if (text == "true" || text == "yes" || text == "1") {
        *out = true;
    } else if (text == "false" || text == "no" || text == "0") {
        *out = false;
    } else {
        *why = "expected true or false (also yes/no, 1/0), got " + shown(spec, text);
        return false;
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Where each path lives in Config. The macro spells the member once, so
// the path string cannot drift from the field it names.
using FieldRef = std::variant<std::string*, int64_t*, bool*, std::vector<std::string>*>;
struct Field {
    std::string_view path;
    FieldRef (*ref)(Config&);
};
#define RAMPART_FIELD(member)                                     \
    {                                                             \
#member, [](Config & c) -> FieldRef { return &c.member; } \
    }
constexpr Field kFields[] = {
    RAMPART_FIELD(node.id),
    RAMPART_FIELD(node.data_dir),
    RAMPART_FIELD(node.pid_file),
    RAMPART_FIELD(node.min_free_bytes),
    RAMPART_FIELD(node.audit_max_bytes),
    RAMPART_FIELD(node.audit_keep),
    RAMPART_FIELD(api.listen),
    RAMPART_FIELD(api.advertise),
    RAMPART_FIELD(api.max_body_bytes),
    RAMPART_FIELD(api.max_header_bytes),
    RAMPART_FIELD(api.max_uri_bytes),
    RAMPART_FIELD(api.request_timeout_ms),
    RAMPART_FIELD(api.idle_timeout_ms),
    RAMPART_FIELD(api.max_connections),
    RAMPART_FIELD(api.max_pipelined),
    RAMPART_FIELD(api.shutdown_timeout_ms),
    RAMPART_FIELD(api.tls.cert),
    RAMPART_FIELD(api.tls.key),
    RAMPART_FIELD(api.tls.ca),
    RAMPART_FIELD(api.tls.require_client_cert),
    RAMPART_FIELD(peer.listen),
    RAMPART_FIELD(peer.peers_file),
    RAMPART_FIELD(peer.pins_file),
    RAMPART_FIELD(peer.insecure_warning_ms),
    RAMPART_FIELD(cluster.seeds),
    RAMPART_FIELD(cluster.discovery_srv),
    RAMPART_FIELD(cluster.dns_server),
    RAMPART_FIELD(cluster.join_token),
    RAMPART_FIELD(cluster.role),
    RAMPART_FIELD(cluster.max_store_bytes),
    RAMPART_FIELD(cluster.election_timeout_ms),
    RAMPART_FIELD(cluster.heartbeat_ms),
    RAMPART_FIELD(cluster.snapshot_threshold),
    RAMPART_FIELD(cluster.snapshot_trailing),
    RAMPART_FIELD(cluster.snapshot_write_timeout_ms),
    RAMPART_FIELD(cluster.snapshot_retention),
    RAMPART_FIELD(cluster.follower_writes),
    RAMPART_FIELD(cluster.auto_promote),
    RAMPART_FIELD(cluster.remove_dead_after_ms),
    RAMPART_FIELD(log.level),
    RAMPART_FIELD(log.format),
    RAMPART_FIELD(log.sampling),
    RAMPART_FIELD(plugins.dir),
    RAMPART_FIELD(plugins.load),
    RAMPART_FIELD(policies.dir),
    RAMPART_FIELD(auth.enabled),
    RAMPART_FIELD(auth.bootstrap_token),
    RAMPART_FIELD(ratelimit.auth_failures_per_min),
    RAMPART_FIELD(ratelimit.auth_failures_block_min),
    RAMPART_FIELD(ratelimit.requests_per_min),
    RAMPART_FIELD(ratelimit.unauth_per_min),
    RAMPART_FIELD(ratelimit.max_tracked_keys),
    RAMPART_FIELD(ratelimit.allow_cidrs),
};
#undef RAMPART_FIELD
static_assert(std::size(kFields) == std::size(kSchema), "every schema key needs a Config field");

// Same order as kSchema (the unit test checks), so the index is enough.
FieldRef field_of(Config& config, const KeySpec& spec) {
    return kFields[static_cast<size_t>(&spec - kSchema)].ref(config);
}

}  // namespace

// "a, b,c" -> {a, b, c}; "" -> {}. Empty items are kept so that the
// check reports them instead of silently dropping a typo.
std::vector<std::string> split_list(std::string_view text) {
    std::vector<std::string> items;
    if (trim(text).empty()) return items;
    while (true) {
        size_t comma = text.find(',');
        items.emplace_back(trim(text.substr(0, comma)));
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return items;
}

Value get_value(const Config& config, const KeySpec& spec) {
    // Only read through the reference; the table is shared with set_value.
    return std::visit([](auto* field) -> Value { return *field; }, field_of(const_cast<Config&>(config), spec));
}

void set_value(Config& config, const KeySpec& spec, const Value& value) {
    std::visit(
        [&value](auto* field) {
            using T = std::remove_pointer_t<decltype(field)>;
            if (const T* typed = std::get_if<T>(&value)) *field = *typed;
        },
        field_of(config, spec));
}

std::string format_value(const Config& config, const KeySpec& spec) {
    Value value = get_value(config, spec);
    if (auto* text = std::get_if<std::string>(&value)) return spec.secret && !text->empty() ? "(secret)" : *text;
    if (auto* number = std::get_if<int64_t>(&value)) return std::to_string(*number);
    if (auto* flag = std::get_if<bool>(&value)) return *flag ? "true" : "false";
    std::string out;
    for (const std::string& item : std::get<std::vector<std::string>>(value)) out += (out.empty() ? "" : ", ") + item;
    return out;
}

std::span<const KeySpec> schema() { return kSchema; }

std::string env_name(std::string_view path) {
    std::string name = "RAMPART_";
    for (char c : path) {
        name += c == '.' ? '_' : (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    }
    return name;
}

const KeySpec* find_key(std::string_view path) {
    for (const KeySpec& spec : kSchema) {
        if (path == spec.path) return &spec;
    }
    return nullptr;
}

bool is_reloadable(std::string_view path) {
    const KeySpec* spec = find_key(path);
    return spec != nullptr && spec->reloadable;
}

bool check_list_item(const KeySpec& spec, std::string_view item, std::string* why) {
    if (item.empty()) {
        *why = "list items must not be empty";
        return false;
    }
    if (!check_plain_text(item, why)) return false;
    switch (shape_of(spec)) {
        case Shape::Name: return check_name(item, why);
        case Shape::OptionalAddress:
        case Shape::Address: {
            // A seed may name its node ("node_2@10.0.0.2:7701"): the name
            // its certificate must carry.
            size_t at = item.find('@');
            if (at != std::string_view::npos && !check_name(item.substr(0, at), why)) return false;
            return check_address(at == std::string_view::npos ? item : item.substr(at + 1), why);
        }
        case Shape::Domain:
        case Shape::DnsServer:
        case Shape::Any: break;
    }
    if (static_cast<int64_t>(item.size()) > kPathMax) {
        *why = "list items must be at most " + std::to_string(kPathMax) + " characters long";
        return false;
    }
    return true;
}

bool check_value(const KeySpec& spec, const Value& value, std::string* why) {
    switch (spec.type) {
        case String:
        case Address: return check_string(spec, std::get<std::string>(value), why);
        case Bool: return true;
        case Int: {
            int64_t n = std::get<int64_t>(value);
            if (n >= spec.min && n <= spec.max) return true;
            *why = (spec.secret ? std::string("the value") : std::to_string(n)) + " is out of range; must be " +
                   range_text(spec.min, spec.max);
            return false;
        }
        case Enum: {
            const std::string& text = std::get<std::string>(value);
            std::string_view allowed = spec.enum_values;
            for (size_t start = 0; start <= allowed.size();) {
                size_t bar = std::min(allowed.find('|', start), allowed.size());
                if (allowed.substr(start, bar - start) == text) return true;
                start = bar + 1;
            }
            *why = shown(spec, text) + " is not one of: " + enum_list(spec);
            return false;
        }
        case StringList: {
            const auto& items = std::get<std::vector<std::string>>(value);
            if (static_cast<int64_t>(items.size()) > spec.max) {
                *why =
                    "at most " + std::to_string(spec.max) + " items are allowed, got " + std::to_string(items.size());
                return false;
            }
            for (const std::string& item : items) {
                if (!check_list_item(spec, item, why)) return false;
            }
            return true;
        }
    }
    return false;
}

bool parse_value(const KeySpec& spec, std::string_view text, Value* out, std::string* why) {
    Value value;
    bool parsed = true;
    switch (spec.type) {
        case Int: parsed = parse_int(spec, text, &value, why); break;
        case Bool: parsed = parse_bool(spec, text, &value, why); break;
        case StringList: value = split_list(text); break;
        case String:
        case Enum:
        case Address: value = std::string(text); break;
    }
    if (!parsed || !check_value(spec, value, why)) return false;
    *out = std::move(value);
    return true;
}

}  // namespace rampart::config
