// rampart configuration: the typed Config, its schema, and the loader.
//
// The schema (schema.cpp) is the authority for every key: type, default,
// bounds, whether SIGHUP may change it, and a one-line description.
// Loading validates the whole tree and reports every problem at once;
// nothing is applied unless everything is valid.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace rampart::config {

// Exit status for an invalid configuration (sysexits.h EX_CONFIG).
inline constexpr int kExitConfig = 78;

struct TlsFiles {
    std::string cert;
    std::string key;
    std::string ca;
    bool require_client_cert = false;
};

struct Config {
    struct Node {
        std::string id;
        std::string data_dir;
        std::string pid_file;         // empty: no pid file
        int64_t min_free_bytes = 0;   // disk-space watchdog floor (0 = off)
        int64_t audit_max_bytes = 0;  // audit.jsonl rotates before passing this
        int64_t audit_keep = 0;       // rotated audit files kept
    } node;
    struct Api {
        std::string listen;
        std::string advertise;  // "" = listen as bound
        int64_t max_body_bytes = 0;
        int64_t max_header_bytes = 0;
        int64_t max_uri_bytes = 0;
        int64_t request_timeout_ms = 0;
        int64_t idle_timeout_ms = 0;
        int64_t max_connections = 0;
        int64_t max_pipelined = 0;
        int64_t shutdown_timeout_ms = 0;
        TlsFiles tls;
    } api;
    struct Peer {
        std::string listen;
        std::string peers_file;
        std::string pins_file;
        int64_t insecure_warning_ms = 0;
    } peer;
    struct Cluster {
        std::vector<std::string> seeds;
        std::string discovery_srv;  // SRV domain ("" = off)
        std::string dns_server;     // "a.b.c.d:port" ("" = the system resolver)
        std::string join_token;
        std::string role;                       // voter | standby | spare
        int64_t max_store_bytes = 0;            // replicated state cap (same on every member)
        int64_t election_timeout_ms = 0;        // Raft election timeout
        int64_t heartbeat_ms = 0;               // Raft heartbeat interval (<= election / 2)
        int64_t snapshot_threshold = 0;         // log entries between snapshots
        int64_t snapshot_trailing = 0;          // entries kept after a snapshot
        int64_t snapshot_write_timeout_ms = 0;  // an own snapshot write still running then has failed
        int64_t snapshot_retention = 0;         // engine snapshots kept (start prunes older ones)
        bool auto_promote = true;               // promote caught-up joined voters (membership_manager.h)
        int64_t remove_dead_after_ms = 0;       // remove silent members after this long (0 = never)
        std::string follower_writes;            // forward | redirect
    } cluster;
    struct Log {
        std::string level;     // debug | info | warn | error
        std::string format;    // json | console
        int64_t sampling = 0;  // log 1 in N high-volume requests at info
    } log;
    struct Plugins {
        std::string dir;
        std::vector<std::string> load;
    } plugins;
    struct Policies {
        std::string dir;
    } policies;
    struct Auth {
        bool enabled = false;
        std::string bootstrap_token;
    } auth;
    struct RateLimit {
        int64_t auth_failures_per_min = 0;
        int64_t auth_failures_block_min = 0;
        int64_t requests_per_min = 0;
        int64_t unauth_per_min = 0;
        int64_t max_tracked_keys = 0;
        std::vector<std::string> allow_cidrs;
    } ratelimit;

    std::string source_file;  // the YAML file this came from ("" = defaults only)

    // Sections named after a plugin in plugins.load, passed through as
    // text; the plugin host checks them against the plugin's own schema.
    struct PluginSetting {
        std::vector<std::string> values;  // one for a scalar, any for a list
        bool is_list = false;
        bool from_env = false;  // "a,b" from the environment: split for list keys
        std::string origin;     // "file:line:column" or "environment RAMPART_X_Y"
    };
    using PluginSection = std::map<std::string, PluginSetting, std::less<>>;
    std::map<std::string, PluginSection, std::less<>> plugin_sections;

    // Dotted paths the file or the environment set (the rest are defaults),
    // so a plugin can tell "set to the default" from "not set".
    std::vector<std::string> explicit_keys;
    bool is_explicit(std::string_view path) const {
        for (const auto& k : explicit_keys) {
            if (k == path) return true;
        }
        return false;
    }
};

enum class ValueType { String, Int, Bool, Enum, StringList, Address };

// One key of the schema. `path` is "section.key" or "section.sub.key".
struct KeySpec {
    const char* path;
    ValueType type;
    const char* default_value;  // textual, parsed like an environment value
    int64_t min;                // Int: inclusive bounds; String: max length in `max`
    int64_t max;
    const char* enum_values;  // Enum: "a|b|c"
    bool reloadable;          // SIGHUP may change it without a restart
    bool secret;              // never printed (tokens)
    const char* description;
};

std::span<const KeySpec> schema();

// "node.data_dir" -> "RAMPART_NODE_DATA_DIR"
std::string env_name(std::string_view path);

// A list as the environment writes it: "a, b,c" -> {a, b, c}; "" -> {}.
// Empty items are kept so that a check can report them.
std::vector<std::string> split_list(std::string_view text);

// A problem found while loading. `line`/`column` are 1-based; 0 when the
// problem has no position (e.g. it came from the environment).
struct Diagnostic {
    std::string file;  // the YAML file, or "environment"
    int line = 0;
    int column = 0;
    std::string key;  // dotted path, or the environment variable name
    std::string message;
    // "file:line:column: key: message" (position omitted when 0)
    std::string to_string() const;
};

struct LoadResult {
    std::unique_ptr<Config> config;  // set only when errors is empty
    std::vector<Diagnostic> errors;
    std::vector<Diagnostic> warnings;
    bool ok() const { return errors.empty() && config != nullptr; }
};

using Environment = std::map<std::string, std::string>;

// The RAMPART_* variables of this process.
Environment process_environment();

// Parse `yaml` (named `file` in diagnostics), apply schema defaults, the
// file's values, then `env` overrides, and validate everything.
LoadResult load_string(std::string_view yaml, const std::string& file, const Environment& env);
// Same for a file on disk; an unreadable file is one error naming it.
LoadResult load_file(const std::string& path, const Environment& env);
// Defaults plus environment only (no file).
LoadResult load_defaults(const Environment& env);

// Dotted paths whose values differ between two configs, in schema order.
std::vector<std::string> changed_keys(const Config& before, const Config& after);
bool is_reloadable(std::string_view path);

// ---- Typed access by dotted path (added with the loader) ----
// The plugin host's config access and the reload logging use these, so
// nothing outside schema.cpp needs to know which field a path maps to.

// One key's value: String, Enum and Address keys hold a std::string.
using Value = std::variant<std::string, int64_t, bool, std::vector<std::string>>;

// The spec of a dotted path ("api.tls.cert"), or nullptr.
const KeySpec* find_key(std::string_view path);

// Parse `text` the way an environment variable is read (lists are
// comma-separated; bools true/false/1/0/yes/no) and check it against the
// key's type and bounds. On failure returns false and sets *why, which
// never contains the value of a secret key.
bool parse_value(const KeySpec& spec, std::string_view text, Value* out, std::string* why);
// Check an already typed value against the key's bounds (same *why rules).
bool check_value(const KeySpec& spec, const Value& value, std::string* why);
// Check one item of a StringList key (a seed must be an address, a plugin
// name a bare name).
bool check_list_item(const KeySpec& spec, std::string_view item, std::string* why);

Value get_value(const Config& config, const KeySpec& spec);
void set_value(Config& config, const KeySpec& spec, const Value& value);
// The value as text for logs ("a, b" for lists); secrets print as "(secret)"
// when set and "" when empty.
std::string format_value(const Config& config, const KeySpec& spec);

}  // namespace rampart::config
