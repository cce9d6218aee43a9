// Unit tests for the configuration loader (core/config): schema, YAML
// tree, environment overrides, diagnostics and hostile input.
// C++ headers first: cmocka defines macros (fail, ...) that would clash.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "config/config.h"
#include "config/yaml_tree.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart::config;

namespace {

LoadResult load(const std::string& yaml, const Environment& env = {}) { return load_string(yaml, "t.yml", env); }

// The one error of `result`, formatted as the daemon prints it.
std::string only_error(const LoadResult& result) {
    if (result.errors.size() != 1) {
        for (const auto& d : result.errors) print_message("  got: %s\n", d.to_string().c_str());
        fail_msg("expected exactly one error, got %zu", result.errors.size());
    }
    assert_null(result.config.get());
    return result.errors[0].to_string();
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

std::string all_text(const LoadResult& result) {
    std::string out;
    for (const auto& d : result.errors) out += d.to_string() + "\n";
    for (const auto& d : result.warnings) out += d.to_string() + "\n";
    return out;
}

std::string read_source_file(const std::string& relative) {
    std::ifstream in(std::string(RAMPART_SOURCE_ROOT) + "/" + relative);
    assert_true(in.good());
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// ---- defaults and valid files ----

void test_defaults(void**) {
    LoadResult r = load_defaults({});
    assert_true(r.ok());
    const Config& c = *r.config;
    assert_string_equal(c.node.id.c_str(), "node_1");
    assert_string_equal(c.node.data_dir.c_str(), "/var/lib/rampart");
    assert_string_equal(c.node.pid_file.c_str(), "");
    assert_string_equal(c.api.listen.c_str(), "127.0.0.1:7700");
    assert_int_equal(c.api.max_body_bytes, 65536);
    assert_int_equal(c.api.max_header_bytes, 8192);
    assert_int_equal(c.api.max_uri_bytes, 8192);
    assert_int_equal(c.api.request_timeout_ms, 5000);
    assert_int_equal(c.api.idle_timeout_ms, 60000);
    assert_int_equal(c.api.max_connections, 1024);
    assert_int_equal(c.api.max_pipelined, 32);
    assert_int_equal(c.api.shutdown_timeout_ms, 10000);
    assert_false(c.api.tls.require_client_cert);
    assert_string_equal(c.peer.listen.c_str(), "127.0.0.1:7701");
    assert_string_equal(c.peer.peers_file.c_str(), "etc/peers.yml");
    assert_string_equal(c.peer.pins_file.c_str(), "etc/pinned_certs.json");
    assert_true(c.cluster.seeds.empty());
    assert_string_equal(c.cluster.role.c_str(), "voter");
    assert_string_equal(c.log.level.c_str(), "info");
    assert_string_equal(c.log.format.c_str(), "json");
    assert_int_equal(c.log.sampling, 100);
    assert_string_equal(c.plugins.dir.c_str(), "build/plugins");
    assert_true(c.plugins.load.empty());
    assert_string_equal(c.policies.dir.c_str(), "policies");
    assert_false(c.auth.enabled);
    assert_int_equal(c.ratelimit.auth_failures_per_min, 10);
    assert_int_equal(c.ratelimit.auth_failures_block_min, 60);
    assert_int_equal(c.ratelimit.requests_per_min, 100);
    assert_int_equal(c.ratelimit.unauth_per_min, 30);
    assert_string_equal(c.source_file.c_str(), "");
    assert_int_equal(kExitConfig, 78);
}

void test_empty_and_comment_only_files(void**) {
    for (const char* text : {"", "\n", "# nothing\n", "---\n", "---\n...\n", "~\n"}) {
        LoadResult r = load(text);
        assert_true(r.ok());
        assert_string_equal(r.config->source_file.c_str(), "t.yml");
        assert_true(changed_keys(*load_defaults({}).config, *r.config).empty());
    }
}

void test_full_valid_file(void**) {
    LoadResult r = load(
        "node: {id: edge-7, data_dir: /data, pid_file: /run/r.pid, min_free_bytes: 0,"
        " audit_max_bytes: 4096, audit_keep: 0}\n"
        "api:\n"
        "  listen: \"[::1]:0\"\n"
        "  advertise: \"[2001:db8::1]:7700\"\n"
        "  max_body_bytes: \"131072\"\n"  // quoted numbers are read as numbers
        "  max_header_bytes: 1024\n  max_uri_bytes: 256\n  request_timeout_ms: 100\n"
        "  idle_timeout_ms: 3600000\n  max_connections: 1\n  max_pipelined: 1024\n  shutdown_timeout_ms: 0\n"
        "  tls:\n    cert: c.pem\n    key: k.pem\n    ca: ca.pem\n    require_client_cert: yes\n"
        "peer: {listen: 0.0.0.0:7801, peers_file: p.yml, pins_file: pins.json, insecure_warning_ms: 5000}\n"
        "cluster:\n  seeds:\n    - 10.0.0.2:7701\n    - \"[fe80::1]:7701\"\n  join_token: s3cret\n  role: spare\n"
        "  discovery_srv: rampart.example.com.\n  dns_server: 10.0.0.53:53\n"
        "  max_store_bytes: 4096\n  election_timeout_ms: 2000\n  heartbeat_ms: 400\n  snapshot_threshold: 16\n  "
        "snapshot_trailing: 0\n  snapshot_write_timeout_ms: 1000\n  snapshot_retention: 1\n"
        "  follower_writes: redirect\n"
        "  auto_promote: false\n  remove_dead_after_ms: 5000\n"
        "log: {level: debug, format: console, sampling: 1}\n"
        "plugins: {dir: /usr/lib/rampart, load: [transport_tls, metrics]}\n"
        "policies: {dir: /etc/rampart/policies}\n"
        "auth: {enabled: true, bootstrap_token: tok}\n"
        "ratelimit: {auth_failures_per_min: 5, auth_failures_block_min: 0, requests_per_min: 1000000,"
        " unauth_per_min: 7, max_tracked_keys: 16, allow_cidrs: [10.0.0.0/8]}\n");
    assert_true(r.ok());
    const Config& c = *r.config;
    assert_string_equal(c.node.id.c_str(), "edge-7");
    assert_string_equal(c.node.pid_file.c_str(), "/run/r.pid");
    assert_int_equal(c.node.min_free_bytes, 0);
    assert_int_equal(c.node.audit_max_bytes, 4096);
    assert_int_equal(c.node.audit_keep, 0);
    assert_int_equal(c.cluster.snapshot_retention, 1);
    assert_int_equal(c.cluster.snapshot_write_timeout_ms, 1000);
    assert_int_equal(c.cluster.election_timeout_ms, 2000);
    assert_int_equal(c.cluster.heartbeat_ms, 400);
    assert_string_equal(c.api.listen.c_str(), "[::1]:0");
    assert_string_equal(c.api.advertise.c_str(), "[2001:db8::1]:7700");
    assert_int_equal(c.api.max_body_bytes, 131072);
    assert_int_equal(c.api.shutdown_timeout_ms, 0);
    assert_string_equal(c.api.tls.ca.c_str(), "ca.pem");
    assert_true(c.api.tls.require_client_cert);
    assert_int_equal(c.cluster.seeds.size(), 2);
    assert_string_equal(c.cluster.seeds[1].c_str(), "[fe80::1]:7701");
    assert_string_equal(c.cluster.join_token.c_str(), "s3cret");
    assert_string_equal(c.cluster.role.c_str(), "spare");
    assert_string_equal(c.cluster.discovery_srv.c_str(), "rampart.example.com.");
    assert_string_equal(c.cluster.dns_server.c_str(), "10.0.0.53:53");
    assert_int_equal(c.cluster.max_store_bytes, 4096);
    assert_int_equal(c.cluster.snapshot_threshold, 16);
    assert_string_equal(c.cluster.follower_writes.c_str(), "redirect");
    assert_false(c.cluster.auto_promote);
    assert_int_equal(c.cluster.remove_dead_after_ms, 5000);
    assert_string_equal(c.log.format.c_str(), "console");
    assert_string_equal(c.plugins.load[1].c_str(), "metrics");
    assert_true(c.auth.enabled);
    assert_int_equal(c.ratelimit.requests_per_min, 1000000);
    assert_true(r.warnings.empty());
    // Every key differs from its default except none: all were set.
    assert_int_equal(changed_keys(*load_defaults({}).config, c).size(), schema().size());
}

void test_example_file_is_valid(void**) {
    LoadResult r = load_file(std::string(RAMPART_SOURCE_ROOT) + "/etc/rampart.yml", {});
    if (!r.ok()) fail_msg("%s", all_text(r).c_str());
    assert_string_equal(r.config->node.id.c_str(), "node_1");
    assert_string_equal(r.config->node.data_dir.c_str(), "var/node_1");
    // Every other key is at its default.
    auto changed = changed_keys(*load_defaults({}).config, *r.config);
    assert_int_equal(changed.size(), 1);
    assert_string_equal(changed[0].c_str(), "node.data_dir");
}

// ---- the schema ----

void test_schema_is_consistent(void**) {
    std::set<std::string> paths;
    Config config;
    for (const KeySpec& spec : schema()) {
        assert_true(paths.insert(spec.path).second);
        assert_ptr_equal(find_key(spec.path), &spec);
        assert_true(spec.description != nullptr && spec.description[0] != '\0');
        Value value;
        std::string why;
        if (!parse_value(spec, spec.default_value, &value, &why)) fail_msg("%s: %s", spec.path, why.c_str());
        set_value(config, spec, value);
        assert_true(get_value(config, spec) == value);  // the field table maps each path
        assert_true(env_name(spec.path).rfind("RAMPART_", 0) == 0);
    }
    assert_string_equal(env_name("node.data_dir").c_str(), "RAMPART_NODE_DATA_DIR");
    assert_string_equal(env_name("api.tls.cert").c_str(), "RAMPART_API_TLS_CERT");
    assert_null(find_key("api.tls"));
    assert_true(find_key("cluster.join_token")->secret);
    assert_true(find_key("auth.bootstrap_token")->secret);
}

void test_reloadable_keys(void**) {
    const std::set<std::string> reloadable = {"log.level",
                                              "log.format",
                                              "log.sampling",
                                              "api.max_body_bytes",
                                              "api.max_header_bytes",
                                              "api.max_uri_bytes",
                                              "api.request_timeout_ms",
                                              "api.idle_timeout_ms",
                                              "api.max_connections",
                                              "api.max_pipelined",
                                              "api.shutdown_timeout_ms",
                                              "ratelimit.auth_failures_per_min",
                                              "ratelimit.auth_failures_block_min",
                                              "ratelimit.requests_per_min",
                                              "ratelimit.unauth_per_min",
                                              "ratelimit.max_tracked_keys",
                                              "ratelimit.allow_cidrs",
                                              "policies.dir",
                                              "cluster.seeds",
                                              "cluster.follower_writes",
                                              "api.advertise",
                                              "cluster.auto_promote",
                                              "cluster.remove_dead_after_ms",
                                              "node.min_free_bytes"};
    for (const KeySpec& spec : schema()) assert_int_equal(is_reloadable(spec.path), reloadable.count(spec.path));
    assert_false(is_reloadable("no.such_key"));
}

void test_changed_keys(void**) {
    Config before = *load_defaults({}).config;
    LoadResult r = load("log: {level: debug}\napi: {listen: 127.0.0.1:9000}\ncluster: {seeds: [1.2.3.4:5]}\n");
    assert_true(r.ok());
    auto changed = changed_keys(before, *r.config);
    assert_int_equal(changed.size(), 3);  // in schema order
    assert_string_equal(changed[0].c_str(), "api.listen");
    assert_string_equal(changed[1].c_str(), "cluster.seeds");
    assert_string_equal(changed[2].c_str(), "log.level");
    assert_false(is_reloadable(changed[0]));
    assert_true(is_reloadable(changed[1]) && is_reloadable(changed[2]));
    assert_true(changed_keys(before, before).empty());
}

// Each key must be in the reference doc (path and variable) and in the
// example file, so that adding a key without documenting it fails here.
void test_docs_and_example_cover_schema(void**) {
    std::string docs = read_source_file("docs/configuration.md");
    YamlDocument example = parse_yaml(read_source_file("etc/rampart.yml"));
    assert_true(example.errors.empty());
    for (const KeySpec& spec : schema()) {
        if (!contains(docs, std::string("`") + spec.path + "`")) fail_msg("docs lack `%s`", spec.path);
        if (!contains(docs, env_name(spec.path))) fail_msg("docs lack %s", env_name(spec.path).c_str());
        const YamlNode* node = &example.root;
        std::string_view rest = spec.path;
        while (node != nullptr && !rest.empty()) {
            std::string_view segment = rest.substr(0, rest.find('.'));
            rest.remove_prefix(std::min(rest.size(), segment.size() + 1));
            const YamlNode* found = nullptr;
            for (const auto& entry : node->entries) {
                if (entry.key == segment) found = &entry.value;
            }
            node = found;
        }
        if (node == nullptr) fail_msg("etc/rampart.yml lacks %s", spec.path);
    }
}

// ---- each kind of bad input, with its exact position ----

void test_unknown_section(void**) {
    assert_string_equal(only_error(load("node: {}\napis:\n  listen: 1.2.3.4:1\n")).c_str(),
                        "t.yml:2:1: apis: unknown section \"apis\"; allowed: node, api, peer, cluster, log, "
                        "plugins, policies, auth, ratelimit, or a plugin named in plugins.load");
}

// A section named after a loaded plugin passes through for the plugin
// host to check against the plugin's own schema.
void test_plugin_section_passes_through(void**) {
    Environment env{{"RAMPART_MOCK_GOOD_GREETING", "hi"}, {"RAMPART_MOCK_GOOD_TAGS", "a,b"}};
    LoadResult r =
        load_string("plugins:\n  load: [mock_good]\nmock_good:\n  limit: 5\n  names: [x, y]\n", "t.yml", env);
    assert_true(r.ok());
    const auto& section = r.config->plugin_sections.at("mock_good");
    assert_string_equal(section.at("limit").values.at(0).c_str(), "5");
    assert_string_equal(section.at("limit").origin.c_str(), "t.yml:4:10");
    assert_true(section.at("names").is_list);
    assert_int_equal(section.at("names").values.size(), 2);
    assert_string_equal(section.at("greeting").values.at(0).c_str(), "hi");
    assert_true(section.at("tags").from_env);
    assert_string_equal(section.at("greeting").origin.c_str(), "environment RAMPART_MOCK_GOOD_GREETING");
}

void test_plugin_section_needs_the_plugin_loaded(void**) {
    LoadResult r = load_string("mock_good:\n  limit: 5\n", "t.yml", {});
    assert_false(r.ok());
    assert_non_null(strstr(r.errors.at(0).to_string().c_str(), "t.yml:1:1: mock_good: unknown section"));
}

void test_plugin_section_must_be_flat(void**) {
    LoadResult r = load_string("plugins:\n  load: [mock_good]\nmock_good:\n  deep: {a: 1}\n", "t.yml", {});
    assert_false(r.ok());
    assert_non_null(strstr(r.errors.at(0).to_string().c_str(), "mock_good.deep: plugin settings are scalars or lists"));
}

void test_unknown_key_lists_allowed(void**) {
    assert_string_equal(
        only_error(load("api:\n  listn: 1.2.3.4:1\n")).c_str(),
        "t.yml:2:3: api.listn: unknown key \"listn\" in section \"api\"; allowed: listen, "
        "advertise, max_body_bytes, max_header_bytes, max_uri_bytes, request_timeout_ms, idle_timeout_ms, "
        "max_connections, max_pipelined, shutdown_timeout_ms, tls");
    // Dotted names are not a shorthand for nesting.
    assert_true(
        contains(only_error(load("api:\n  tls.cert: a\n")), "t.yml:2:3: api.tls.cert: unknown key \"tls.cert\""));
    assert_true(contains(only_error(load("api.tls: {cert: a}\n")), "t.yml:1:1: api.tls: unknown section"));
    assert_true(contains(only_error(load("\"\": 1\n")), "t.yml:1:1: unknown section \"\""));
    assert_string_equal(only_error(load("api:\n  tls:\n    crt: a\n")).c_str(),
                        "t.yml:3:5: api.tls.crt: unknown key \"crt\" in section \"api.tls\"; allowed: cert, "
                        "key, ca, require_client_cert");
}

void test_wrong_types(void**) {
    assert_string_equal(only_error(load("api:\n  max_body_bytes: {a: 1}\n")).c_str(),
                        "t.yml:2:19: api.max_body_bytes: expected an integer, got a mapping");
    assert_string_equal(only_error(load("api:\n  max_body_bytes: abc\n")).c_str(),
                        "t.yml:2:19: api.max_body_bytes: expected an integer, got \"abc\"");
    assert_string_equal(only_error(load("api:\n  max_body_bytes: 1.5\n")).c_str(),
                        "t.yml:2:19: api.max_body_bytes: expected an integer, got \"1.5\"");
    assert_string_equal(only_error(load("api:\n  max_body_bytes:\n")).c_str(),
                        "t.yml:2:3: api.max_body_bytes: expected an integer, got an empty value");
    assert_string_equal(only_error(load("node:\n  id: [a]\n")).c_str(),
                        "t.yml:2:7: node.id: expected a string, got a list");
    assert_string_equal(only_error(load("auth: {enabled: maybe}\n")).c_str(),
                        "t.yml:1:17: auth.enabled: expected true or false (also yes/no, 1/0), got \"maybe\"");
    assert_string_equal(only_error(load("plugins:\n  load: metrics\n")).c_str(),
                        "t.yml:2:9: plugins.load: expected a list (e.g. [a, b]), got a scalar");
    assert_string_equal(only_error(load("log: 3\n")).c_str(),
                        "t.yml:1:6: log: expected a mapping of keys, got a scalar");
    assert_string_equal(only_error(load("api:\n  tls: yes\n")).c_str(),
                        "t.yml:2:8: api.tls: expected a mapping of keys, got a scalar");
    assert_string_equal(only_error(load("- a\n")).c_str(),
                        "t.yml:1:1: the top level must be a mapping of sections (e.g. \"api:\"), not a list");
    // Only plain decimal integers.
    for (const char* text : {"+5", "0x10", "1_000", "1e3", "5 "}) {
        std::string yaml = std::string("api: {max_pipelined: \"") + text + "\"}\n";
        assert_true(contains(only_error(load(yaml)), "expected an integer"));
    }
}

void test_out_of_range(void**) {
    assert_string_equal(only_error(load("api:\n  max_body_bytes: 100\n")).c_str(),
                        "t.yml:2:19: api.max_body_bytes: 100 is out of range; must be 1024..67108864");
    assert_string_equal(only_error(load("log: {sampling: -1}\n")).c_str(),
                        "t.yml:1:17: log.sampling: -1 is out of range; must be 1..1000000");
    assert_string_equal(
        only_error(load("api: {max_connections: 99999999999999999999}\n")).c_str(),
        "t.yml:1:24: api.max_connections: \"99999999999999999999\" is out of range; must be 1..1000000");
    assert_string_equal(only_error(load("node: {id: \"\"}\n")).c_str(),
                        "t.yml:1:12: node.id: must be 1 to 63 characters of A-Z a-z 0-9 _ -");
    assert_true(contains(only_error(load("node: {id: " + std::string(64, 'a') + "}\n")), "1 to 63"));
    assert_true(contains(only_error(load("node: {id: a/b}\n")), "1 to 63"));
    assert_string_equal(only_error(load("node: {data_dir: \"\"}\n")).c_str(),
                        "t.yml:1:18: node.data_dir: must not be empty");
    assert_true(contains(only_error(load("node: {pid_file: " + std::string(5000, 'p') + "}\n")),
                         "must be at most 4096 characters long"));
    std::string many = "cluster:\n  seeds:\n";
    for (int i = 0; i < 65; ++i) many += "    - 10.0.0." + std::to_string(i) + ":7701\n";
    assert_string_equal(only_error(load(many)).c_str(),
                        "t.yml:3:5: cluster.seeds: at most 64 items are allowed, got 65");
}

void test_bad_enum(void**) {
    assert_string_equal(only_error(load("log:\n  level: loud\n")).c_str(),
                        "t.yml:2:10: log.level: \"loud\" is not one of: debug, info, warn, error");
    assert_string_equal(only_error(load("cluster: {role: leader}\n")).c_str(),
                        "t.yml:1:17: cluster.role: \"leader\" is not one of: voter, standby, spare");
    assert_string_equal(only_error(load("log: {format: {}}\n")).c_str(),
                        "t.yml:1:15: log.format: expected one of json, console, got a mapping");
}

void test_bad_addresses(void**) {
    assert_string_equal(only_error(load("api:\n  listen: localhost:7700\n")).c_str(),
                        "t.yml:2:11: api.listen: not an IPv4 address literal; host names are not allowed "
                        "(expected \"a.b.c.d:port\" or \"[v6]:port\", e.g. \"127.0.0.1:7700\")");
    assert_true(contains(only_error(load("api: {listen: 127.0.0.1}\n")), "api.listen: not an address"));
    assert_true(contains(only_error(load("api: {listen: \"127.0.0.1:65536\"}\n")), "port must be a number"));
    assert_true(contains(only_error(load("api: {listen: \"127.0.0.1:\"}\n")), "port must be a number"));
    assert_true(contains(only_error(load("api: {listen: \"::1:7700\"}\n")), "not an address"));
    assert_true(contains(only_error(load("api: {listen: \"[::g]:7700\"}\n")), "not an IPv6 address literal"));
    assert_true(contains(only_error(load("api: {listen: \"[127.0.0.1]:7700\"}\n")), "not an IPv6"));
    assert_string_equal(only_error(load("cluster:\n  seeds: [10.0.0.1:1, db.local:7701]\n")).c_str(),
                        "t.yml:2:23: cluster.seeds: not an IPv4 address literal; host names are not allowed "
                        "(expected \"a.b.c.d:port\" or \"[v6]:port\", e.g. \"127.0.0.1:7700\")");
    assert_true(load("api: {listen: \"0.0.0.0:0\"}\npeer: {listen: \"[::]:65535\"}\n").ok());
    // A seed may name its node: the name its certificate carries.
    assert_true(load("cluster:\n  seeds: [node_2@10.0.0.2:7701]\n").ok());
    assert_false(load("cluster:\n  seeds: [\"no/de@10.0.0.2:7701\"]\n").ok());
}

// cluster.discovery_srv is a domain name; cluster.dns_server an IPv4
// address (the libc resolver takes no other custom server). Both may be "".
void test_discovery_settings(void**) {
    assert_true(load("cluster: {discovery_srv: \"\", dns_server: \"\"}\n").ok());
    assert_true(load("cluster: {discovery_srv: rampart.example.com., dns_server: 127.0.0.1:5353}\n").ok());
    assert_true(load("cluster: {discovery_srv: _x-1.example}\n").ok());
    std::string label64(64, 'a');
    std::string long_name;
    for (int i = 0; i < 5; i++) long_name += std::string(60, 'a') + ".";
    struct {
        std::string yaml;
        const char* why;
    } bad[] = {
        {"cluster: {discovery_srv: bad..example}\n", "no empty labels"},
        {"cluster: {discovery_srv: .example}\n", "no empty labels"},
        {"cluster: {discovery_srv: \".\"}\n", "no empty labels"},
        {"cluster: {discovery_srv: \"a b\"}\n", "only A-Z a-z 0-9 - _ and dots"},
        {"cluster: {discovery_srv: " + label64 + ".example}\n", "at most 63 characters"},
        {"cluster: {discovery_srv: " + long_name + "x}\n", "at most 253 characters"},
        {"cluster: {dns_server: \"[::1]:53\"}\n", "IPv6 DNS server is not supported"},
        {"cluster: {dns_server: dns.local:53}\n", "host names are not allowed"},
        {"cluster: {dns_server: 127.0.0.1}\n", "not an address"},
    };
    for (const auto& b : bad) {
        std::string error = only_error(load(b.yaml));
        if (!contains(error, b.why)) fail_msg("%s: got \"%s\"", b.yaml.c_str(), error.c_str());
    }
}

void test_duplicate_keys(void**) {
    assert_string_equal(only_error(load("api:\n  listen: 127.0.0.1:1\n  listen: 127.0.0.1:2\n")).c_str(),
                        "t.yml:3:3: api.listen: duplicate key \"listen\" (first defined at line 2)");
    assert_string_equal(only_error(load("log: {}\napi: {}\nlog: {level: debug}\n")).c_str(),
                        "t.yml:3:1: log: duplicate key \"log\" (first defined at line 1)");
}

void test_yaml_syntax_errors(void**) {
    assert_string_equal(only_error(load("api:\n  listen: \"127.0.0.1:1\n")).c_str(),
                        "t.yml:3:1: YAML syntax error: found unexpected end of stream (while scanning a quoted "
                        "scalar at line 2, column 11)");
    assert_string_equal(only_error(load("api:\n\tlisten: 127.0.0.1:1\n")).c_str(),
                        "t.yml:2:1: YAML syntax error: found character that cannot start any token (while "
                        "scanning for the next token at line 2, column 1); tabs cannot indent YAML, use spaces");
    assert_true(contains(only_error(load("log: {level: debug\n")), "t.yml:2:1: YAML syntax error"));
    assert_string_equal(only_error(load("log: {}\n---\napi: {}\n")).c_str(),
                        "t.yml:2:1: only one YAML document is allowed (found a second \"---\")");
}

void test_refused_yaml_features(void**) {
    assert_string_equal(only_error(load("log: &l {level: debug}\n")).c_str(),
                        "t.yml:1:6: log: anchors (&name) are not supported");
    assert_string_equal(only_error(load("log:\n  level: *x\n")).c_str(),
                        "t.yml:2:10: log.level: aliases (*name) are not supported");
    assert_string_equal(only_error(load("api:\n  max_body_bytes: !!int 2048\n")).c_str(),
                        "t.yml:2:19: api.max_body_bytes: tags (!name) are not supported; write plain values");
    assert_true(contains(only_error(load("? [a]\n: b\n")), "t.yml:1:3: mapping keys must be plain strings"));
}

void test_control_characters_rejected(void**) {
    assert_string_equal(only_error(load("node:\n  data_dir: \"/var/\\x1b[31m\"\n")).c_str(),
                        "t.yml:2:13: node.data_dir: contains a control character (0x1b)");
    assert_string_equal(only_error(load("node: {data_dir: \"a\\0b\"}\n")).c_str(),
                        "t.yml:1:18: node.data_dir: contains a control character (0x00)");
    assert_true(contains(only_error(load("plugins: {load: [\"a\\tb\"]}\n")), "control character (0x09)"));
    // Hostile key names come back escaped, never raw.
    std::string text = all_text(load("api:\n  \"\\e]0;x\\a\": 1\n"));
    assert_true(contains(text, "unknown key \"\\x1b]0;x\\x07\""));
}

void test_many_errors_at_once(void**) {
    LoadResult r = load(
        "api:\n"
        "  listn: 127.0.0.1:1\n"    // 2: unknown key
        "  max_body_bytes: lots\n"  // 3: not an integer
        "  max_pipelined: 5000\n"   // 4: out of range
        "log:\n"
        "  level: chatty\n"         // 6: bad enum
        "  level: debug\n"          // 7: duplicate
        "peer: {listen: host:1}\n"  // 8: host name
        "extra: 1\n");              // 9: unknown section
    assert_null(r.config.get());
    assert_int_equal(r.errors.size(), 7);
    const char* expected[] = {
        "t.yml:2:3: api.listn:",  "t.yml:3:19: api.max_body_bytes:", "t.yml:4:18: api.max_pipelined:",
        "t.yml:6:10: log.level:", "t.yml:7:3: log.level: duplicate", "t.yml:8:16: peer.listen:",
        "t.yml:9:1: extra:"};
    for (size_t i = 0; i < 7; ++i) assert_true(r.errors[i].to_string().rfind(expected[i], 0) == 0);
    LoadResult with_env = load("extra: 1\n", {{"RAMPART_LOG_SAMPLING", "0"}});
    assert_int_equal(with_env.errors.size(), 2);
    assert_string_equal(with_env.errors[1].to_string().c_str(),
                        "environment: RAMPART_LOG_SAMPLING: 0 is out of range; must be 1..1000000");
}

void test_error_count_is_bounded(void**) {
    std::string text = "log:\n";
    for (int i = 0; i < 500; ++i) text += "  k" + std::to_string(i) + ": 1\n";
    LoadResult r = load(text);
    assert_int_equal(r.errors.size(), kMaxYamlErrors + 1);
    assert_string_equal(r.errors.back().message.c_str(), "too many errors; stopped reporting");
}

void test_cross_key_rules(void**) {
    assert_string_equal(only_error(load("api:\n  tls: {cert: c.pem}\n")).c_str(),
                        "t.yml:2:15: api.tls.cert: api.tls.cert is set but api.tls.key is empty; set both or "
                        "neither");
    assert_true(contains(only_error(load("api: {tls: {cert: c, key: k, require_client_cert: true}}\n")),
                         "api.tls.require_client_cert: needs api.tls.cert, api.tls.key and api.tls.ca"));
    assert_string_equal(only_error(load("", {{"RAMPART_PEER_LISTEN", "127.0.0.1:7700"}})).c_str(),
                        "environment: RAMPART_PEER_LISTEN: api.listen and peer.listen must differ (both are "
                        "127.0.0.1:7700)");
    // Port 0 on both is fine: each gets its own free port.
    assert_true(load("api: {listen: \"127.0.0.1:0\"}\npeer: {listen: \"127.0.0.1:0\"}\n").ok());
    // Heartbeats slower than half the election timeout let followers call
    // elections between them.
    assert_string_equal(only_error(load("cluster:\n  election_timeout_ms: 300\n  heartbeat_ms: 200\n")).c_str(),
                        "t.yml:3:17: cluster.heartbeat_ms: must be at most half of cluster.election_timeout_ms "
                        "(200 > 300 / 2): followers would call elections between heartbeats");
    assert_true(load("cluster: {election_timeout_ms: 2000, heartbeat_ms: 1000}\n").ok());
    assert_true(contains(only_error(load("cluster: {heartbeat_ms: 5}\n")), "cluster.heartbeat_ms"));
}

// ---- environment ----

void test_env_precedence(void**) {
    const std::string file = "log: {level: warn, sampling: 7}\napi: {max_connections: 10}\n";
    LoadResult r = load(file, {{"RAMPART_LOG_LEVEL", "error"}, {"RAMPART_NODE_DATA_DIR", "/srv/r"}});
    assert_true(r.ok());
    assert_string_equal(r.config->log.level.c_str(), "error");       // env beats file
    assert_int_equal(r.config->log.sampling, 7);                     // file beats default
    assert_string_equal(r.config->node.data_dir.c_str(), "/srv/r");  // env beats default
    assert_string_equal(r.config->log.format.c_str(), "json");       // default
    LoadResult d = load_defaults({{"RAMPART_API_TLS_CERT", "c.pem"}, {"RAMPART_API_TLS_KEY", "k.pem"}});
    assert_true(d.ok());
    assert_string_equal(d.config->api.tls.cert.c_str(), "c.pem");
}

void test_env_value_syntax(void**) {
    LoadResult r = load_defaults({{"RAMPART_CLUSTER_SEEDS", "10.0.0.1:7701, [::1]:7701"},
                                  {"RAMPART_PLUGINS_LOAD", ""},
                                  {"RAMPART_AUTH_ENABLED", "yes"},
                                  {"RAMPART_API_TLS_REQUIRE_CLIENT_CERT", "0"},
                                  {"RAMPART_RATELIMIT_AUTH_FAILURES_PER_MIN", "3"}});
    assert_true(r.ok());
    assert_int_equal(r.config->cluster.seeds.size(), 2);
    assert_string_equal(r.config->cluster.seeds[1].c_str(), "[::1]:7701");
    assert_true(r.config->plugins.load.empty());
    assert_true(r.config->auth.enabled);
    assert_int_equal(r.config->ratelimit.auth_failures_per_min, 3);
    for (const char* yes : {"true", "1", "yes"})
        assert_true(load_defaults({{"RAMPART_AUTH_ENABLED", yes}}).config->auth.enabled);
    for (const char* no : {"false", "0", "no"})
        assert_false(load_defaults({{"RAMPART_AUTH_ENABLED", no}}).config->auth.enabled);
}

void test_env_bad_values(void**) {
    assert_string_equal(only_error(load_defaults({{"RAMPART_API_MAX_BODY_BYTES", "1.5"}})).c_str(),
                        "environment: RAMPART_API_MAX_BODY_BYTES: expected an integer, got \"1.5\"");
    assert_string_equal(only_error(load_defaults({{"RAMPART_LOG_FORMAT", "xml"}})).c_str(),
                        "environment: RAMPART_LOG_FORMAT: \"xml\" is not one of: json, console");
    assert_string_equal(only_error(load_defaults({{"RAMPART_AUTH_ENABLED", "on"}})).c_str(),
                        "environment: RAMPART_AUTH_ENABLED: expected true or false (also yes/no, 1/0), got \"on\"");
    assert_string_equal(only_error(load_defaults({{"RAMPART_CLUSTER_SEEDS", "10.0.0.1:1,,10.0.0.2:1"}})).c_str(),
                        "environment: RAMPART_CLUSTER_SEEDS: list items must not be empty");
    assert_string_equal(only_error(load_defaults({{"RAMPART_API_LISTEN", "example.com:80"}})).c_str(),
                        "environment: RAMPART_API_LISTEN: not an IPv4 address literal; host names are not "
                        "allowed (expected \"a.b.c.d:port\" or \"[v6]:port\", e.g. \"127.0.0.1:7700\")");
    assert_true(contains(only_error(load_defaults({{"RAMPART_API_MAX_PIPELINED", ""}})), "expected an integer"));
    LoadResult r = load_defaults({{"RAMPART_LOG_LEVEL", "x"}});
    const Diagnostic& d = r.errors.at(0);
    assert_string_equal(d.file.c_str(), "environment");
    assert_string_equal(d.key.c_str(), "RAMPART_LOG_LEVEL");
    assert_int_equal(d.line, 0);
}

void test_env_unknown_variables(void**) {
    LoadResult r = load_defaults({{"RAMPART_API_LISTN", "1"},
                                  {"RAMPART_HTTP_ADDR", "http://127.0.0.1:7700"},
                                  {"RAMPART_HTTP_TOKEN", "t"},
                                  {"RAMPART_CACERT", "ca.pem"},
                                  {"RAMPART_SOMETHING_ELSE", "1"},
                                  {"PATH", "/bin"}});
    assert_true(r.ok());
    assert_int_equal(r.warnings.size(), 1);
    std::string w = r.warnings[0].to_string();
    assert_true(contains(w,
                         "environment: RAMPART_API_LISTN: not a configuration variable: section \"api\" has "
                         "no key \"listn\"; ignored (known: RAMPART_API_LISTEN, "));
    assert_true(contains(w, "RAMPART_API_TLS_REQUIRE_CLIENT_CERT)"));
}

void test_process_environment(void**) {
    setenv("RAMPART_TEST_ONLY_VAR", "v=1", 1);
    setenv("NOT_RAMPART_VAR", "x", 1);
    Environment env = process_environment();
    assert_string_equal(env.at("RAMPART_TEST_ONLY_VAR").c_str(), "v=1");
    assert_int_equal(env.count("NOT_RAMPART_VAR"), 0);
    unsetenv("RAMPART_TEST_ONLY_VAR");
    unsetenv("NOT_RAMPART_VAR");
}

// ---- lists, nesting, secrets ----

void test_lists(void**) {
    LoadResult r = load("cluster:\n  seeds:\n    - 10.0.0.1:7701\n    - 10.0.0.2:7701\nplugins:\n  load: [a, b-c]\n");
    assert_true(r.ok());
    assert_int_equal(r.config->cluster.seeds.size(), 2);
    assert_int_equal(r.config->plugins.load.size(), 2);
    assert_true(load("plugins:\n  load:\n").config->plugins.load.empty());
    LoadResult bad = load("plugins:\n  load:\n    - ok\n    - {x: 1}\n    - ../evil\n    - \"\"\n");
    assert_int_equal(bad.errors.size(), 3);
    assert_string_equal(bad.errors[0].to_string().c_str(),
                        "t.yml:4:7: plugins.load: list items must be strings, got a mapping");
    assert_string_equal(bad.errors[1].to_string().c_str(),
                        "t.yml:5:7: plugins.load: must be 1 to 63 characters of A-Z a-z 0-9 _ -");
    assert_string_equal(bad.errors[2].to_string().c_str(), "t.yml:6:7: plugins.load: list items must not be empty");
}

void test_nested_tls(void**) {
    LoadResult r = load(
        "api:\n  tls:\n    cert: /etc/c.pem\n    key: /etc/k.pem\n    ca: /etc/ca.pem\n"
        "    require_client_cert: true\n");
    assert_true(r.ok());
    assert_string_equal(r.config->api.tls.key.c_str(), "/etc/k.pem");
    assert_true(r.config->api.tls.require_client_cert);
    assert_true(load("api:\n  tls:\n").ok());
    assert_string_equal(only_error(load("api:\n  tls:\n    cert: [a]\n")).c_str(),
                        "t.yml:3:11: api.tls.cert: expected a string, got a list");
}

void test_secrets_never_printed(void**) {
    const std::string secret = "hunter2-SECRET";
    std::string text = all_text(
        load("cluster:\n  join_token: \"" + secret + "\\x01\"\n  role: x\n",
             {{"RAMPART_AUTH_BOOTSTRAP_TOKEN", secret + "\x02"}, {"RAMPART_CLUSTER_JOIN_TOKEN", secret + "\n"}}));
    assert_true(contains(text, "t.yml:2:15: cluster.join_token: contains a control character (0x01)"));
    assert_true(contains(text, "environment: RAMPART_AUTH_BOOTSTRAP_TOKEN: contains a control character (0x02)"));
    assert_false(contains(text, "hunter2"));
    text = all_text(load("cluster: {join_token: [" + secret + "]}\nauth: {bootstrap_token: {" + secret + ": 1}}\n"));
    assert_true(contains(text, "cluster.join_token: expected a string, got a list"));
    assert_false(contains(text, "hunter2"));
    text = all_text(load_defaults({{"RAMPART_AUTH_BOOTSTRAP_TOKEN", std::string(2000, 'S')}}));
    assert_true(contains(text, "must be at most 1024 characters long"));
    assert_false(contains(text, "SSSS"));
    LoadResult ok = load_defaults({{"RAMPART_CLUSTER_JOIN_TOKEN", secret}});
    assert_true(ok.ok());
    assert_string_equal(format_value(*ok.config, *find_key("cluster.join_token")).c_str(), "(secret)");
    assert_string_equal(format_value(*ok.config, *find_key("auth.bootstrap_token")).c_str(), "");
    assert_string_equal(format_value(*ok.config, *find_key("log.sampling")).c_str(), "100");
}

// ---- files ----

void test_load_file(void**) {
    char dir[] = "/tmp/rampart_cfg_XXXXXX";
    assert_non_null(mkdtemp(dir));
    std::string path = std::string(dir) + "/r.yml";
    std::ofstream(path) << "log:\n  level: loud\n";
    LoadResult r = load_file(path, {});
    assert_string_equal(only_error(r).c_str(), (path + ":2:10: log.level: \"loud\" is not one of: debug, info, "
                                                       "warn, error")
                                                   .c_str());
    std::ofstream(path, std::ios::trunc) << "log: {level: warn}\n";
    r = load_file(path, {});
    assert_true(r.ok());
    assert_string_equal(r.config->source_file.c_str(), path.c_str());

    std::string missing = std::string(dir) + "/missing.yml";
    assert_string_equal(only_error(load_file(missing, {})).c_str(),
                        (missing + ": cannot open: No such file or directory").c_str());
    assert_string_equal(only_error(load_file(dir, {})).c_str(), (std::string(dir) + ": not a regular file").c_str());
    std::string big = std::string(dir) + "/big.yml";
    std::ofstream(big) << "# " << std::string(kMaxYamlBytes, 'x') << "\n";
    assert_true(contains(only_error(load_file(big, {})), "larger than the limit of 1048576 bytes"));
    unlink(big.c_str());
    unlink(path.c_str());
    rmdir(dir);
}

void test_diagnostic_format(void**) {
    assert_string_equal((Diagnostic{"f.yml", 3, 7, "api.listen", "bad"}).to_string().c_str(),
                        "f.yml:3:7: api.listen: bad");
    assert_string_equal((Diagnostic{"f.yml", 3, 0, "k", "m"}).to_string().c_str(), "f.yml:3: k: m");
    assert_string_equal((Diagnostic{"environment", 0, 0, "RAMPART_X", "m"}).to_string().c_str(),
                        "environment: RAMPART_X: m");
    assert_string_equal((Diagnostic{"f.yml", 0, 0, "", "m"}).to_string().c_str(), "f.yml: m");
}

// ---- hostile input: a clean error, never a crash ----

void test_deep_nesting(void**) {
    std::string flow = "log: " + std::string(100000, '[') + "\n";
    LoadResult r = load(flow);
    assert_null(r.config.get());
    assert_true(contains(all_text(r), "t.yml:1:37: log: nesting is deeper than 32 levels"));
    std::string block = "log:\n";
    for (int i = 0; i < 40; ++i) block += std::string(2 * i + 2, ' ') + "k" + std::to_string(i) + ":\n";
    assert_true(contains(all_text(load(block)), "nesting is deeper than 32 levels"));
}

void test_oversized_input(void**) {
    std::string big = "# " + std::string(2 * 1024 * 1024, 'x') + "\n";
    assert_string_equal(only_error(load(big)).c_str(),
                        "t.yml: the file is 2097155 bytes; the limit is 1048576 (1 MiB)");
}

void test_billion_laughs(void**) {
    std::string yaml = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
    for (char c = 'b'; c <= 'i'; ++c) {
        std::string prev(1, static_cast<char>(c - 1));
        yaml += std::string(1, c) + ": &" + c + " [*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + "]\n";
    }
    assert_string_equal(only_error(load(yaml)).c_str(), "t.yml:1:4: a: anchors (&name) are not supported");
}

void test_garbage_and_truncation(void**) {
    const std::string nul_inside("log:\n  level: de\0bug\n", 20);
    assert_string_equal(only_error(load(nul_inside)).c_str(),
                        "t.yml:2:12: invalid YAML input: control characters are not allowed (byte 0x00)");
    std::string garbage;
    uint32_t state = 12345;
    for (int i = 0; i < 4096; ++i) {
        state = state * 1103515245u + 12345u;
        garbage += static_cast<char>(state >> 24);
    }
    assert_false(load(garbage).ok());
    assert_false(load(std::string("\xff\xfe\x00\x01\x02", 5)).ok());  // UTF-16 cut mid-character
    assert_false(load(std::string("\0\0\0\0", 4)).ok());
    // Every prefix of a real file loads or fails cleanly.
    std::string full = read_source_file("etc/rampart.yml");
    for (size_t cut = 0; cut < full.size(); cut += 7) {
        LoadResult r = load(full.substr(0, cut));
        assert_true(r.ok() || !r.errors.empty());
        for (const auto& d : r.errors) assert_false(d.to_string().empty());
    }
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty_and_comment_only_files),
        cmocka_unit_test(test_full_valid_file),
        cmocka_unit_test(test_example_file_is_valid),
        cmocka_unit_test(test_schema_is_consistent),
        cmocka_unit_test(test_reloadable_keys),
        cmocka_unit_test(test_changed_keys),
        cmocka_unit_test(test_docs_and_example_cover_schema),
        cmocka_unit_test(test_unknown_section),
        cmocka_unit_test(test_plugin_section_passes_through),
        cmocka_unit_test(test_plugin_section_needs_the_plugin_loaded),
        cmocka_unit_test(test_plugin_section_must_be_flat),
        cmocka_unit_test(test_unknown_key_lists_allowed),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_bad_enum),
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_discovery_settings),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_yaml_syntax_errors),
        cmocka_unit_test(test_refused_yaml_features),
        cmocka_unit_test(test_control_characters_rejected),
        cmocka_unit_test(test_many_errors_at_once),
        cmocka_unit_test(test_error_count_is_bounded),
        cmocka_unit_test(test_cross_key_rules),
        cmocka_unit_test(test_env_precedence),
        cmocka_unit_test(test_env_value_syntax),
        cmocka_unit_test(test_env_bad_values),
        cmocka_unit_test(test_env_unknown_variables),
        cmocka_unit_test(test_process_environment),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_nested_tls),
        cmocka_unit_test(test_secrets_never_printed),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_diagnostic_format),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_oversized_input),
        cmocka_unit_test(test_billion_laughs),
        cmocka_unit_test(test_garbage_and_truncation),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
