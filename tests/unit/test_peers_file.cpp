// Unit tests for the etc/peers.yml loader (core/peer/peers_file): valid
// files, every error with its exact file:line:column, duplicates, hostile
// input and reading from disk.
// C++ headers first: cmocka defines macros (fail, ...) that would clash.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "config/yaml_tree.h"
#include "peer/peers_file.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart::peer;

namespace {

const char* const kTls =
    "tls:\n"
    "  ca_cert: var/certs/ca.pem\n"
    "  server_cert: var/certs/node_1.pem\n"
    "  server_key: var/certs/node_1.key\n";

PeersLoad parse(const std::string& yaml) { return parse_peers(yaml, "p.yml"); }

void dump(const PeersLoad& r) {
    for (const auto& e : r.errors) print_message("  error: %s\n", e.c_str());
    for (const auto& w : r.warnings) print_message("  warning: %s\n", w.c_str());
}

// The one error of `r`.
std::string only_error(const PeersLoad& r) {
    if (r.errors.size() != 1) {
        dump(r);
        fail_msg("expected exactly one error, got %zu", r.errors.size());
    }
    return r.errors[0];
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

void assert_ok(const PeersLoad& r) {
    if (!r.ok()) {
        dump(r);
        fail_msg("expected no errors, got %zu", r.errors.size());
    }
}

void assert_starts_with(const std::string& text, const std::string& prefix) {
    if (text.compare(0, prefix.size(), prefix) != 0)
        fail_msg("\"%s\" does not start with \"%s\"", text.c_str(), prefix.c_str());
}

// ---- valid files ----

void test_full_file(void**) {
    PeersLoad r = parse(
        "allow_insecure_peers: false\n"
        "tls:\n"
        "  ca_cert: var/certs/ca.pem\n"
        "  server_cert: var/certs/node_1.pem\n"
        "  server_key: var/certs/node_1.key\n"
        "  client_cert: var/certs/client.pem\n"
        "  client_key: var/certs/client.key\n"
        "peers:\n"
        "  - {node_id: node_2, address: 127.0.0.1, port: 7711}\n"
        "  - node_id: node-3_X\n"
        "    address: 10.0.0.3\n"
        "    port: 65535\n");
    assert_ok(r);
    assert_true(r.warnings.empty());
    const PeersFile& f = r.file;
    assert_false(f.allow_insecure_peers);
    assert_string_equal(f.tls.ca_cert.c_str(), "var/certs/ca.pem");
    assert_string_equal(f.tls.server_cert.c_str(), "var/certs/node_1.pem");
    assert_string_equal(f.tls.server_key.c_str(), "var/certs/node_1.key");
    assert_string_equal(f.tls.client_cert.c_str(), "var/certs/client.pem");
    assert_string_equal(f.tls.client_key.c_str(), "var/certs/client.key");
    assert_int_equal(f.peers.size(), 2);
    assert_string_equal(f.peers[0].node_id.c_str(), "node_2");
    assert_string_equal(f.peers[0].address.c_str(), "127.0.0.1");
    assert_int_equal(f.peers[0].port, 7711);
    assert_string_equal(f.peers[0].endpoint().c_str(), "127.0.0.1:7711");
    assert_string_equal(f.peers[1].node_id.c_str(), "node-3_X");
    assert_string_equal(f.peers[1].endpoint().c_str(), "10.0.0.3:65535");
}

void test_minimal_file(void**) {
    PeersLoad r = parse(std::string(kTls) + "peers:\n  - {node_id: a, address: 127.0.0.1, port: 1}\n");
    assert_ok(r);
    assert_false(r.file.allow_insecure_peers);
    assert_int_equal(r.file.peers.size(), 1);
    assert_int_equal(r.file.peers[0].port, 1);
    // TLS alone, no peers (a first node).
    PeersLoad alone = parse(kTls);
    assert_ok(alone);
    assert_true(alone.file.peers.empty());
    PeersLoad empty_list = parse(std::string(kTls) + "peers: []\n");
    assert_ok(empty_list);
    PeersLoad null_list = parse(std::string(kTls) + "peers:\n");
    assert_ok(null_list);
}

void test_empty_file(void**) {
    for (const char* text : {"", "\n", "# only a comment\n", "---\n", "---\n...\n", "~\n"}) {
        PeersLoad r = parse(text);
        assert_ok(r);
        assert_true(r.warnings.empty());
        assert_false(r.file.allow_insecure_peers);
        assert_true(r.file.peers.empty());
        assert_true(r.file.tls.ca_cert.empty());
        assert_true(r.file.tls.client_cert.empty());
    }
}

void test_insecure_without_tls(void**) {
    PeersLoad r = parse(
        "allow_insecure_peers: true\n"
        "peers:\n"
        "  - {node_id: n2, address: 127.0.0.1, port: 7711}\n");
    assert_ok(r);
    assert_true(r.file.allow_insecure_peers);
    assert_true(r.file.tls.ca_cert.empty());
    assert_int_equal(r.file.peers.size(), 1);
    // An empty tls section is the same as none.
    assert_ok(parse("allow_insecure_peers: true\ntls:\n"));
    assert_ok(parse("allow_insecure_peers: true\n"));
}

void test_ipv6_addresses(void**) {
    PeersLoad r = parse(std::string(kTls) +
                        "peers:\n"
                        "  - {node_id: a, address: '::1', port: 7711}\n"
                        "  - {node_id: b, address: '[fe80::1]', port: 7712}\n"
                        "  - {node_id: c, address: \"2001:DB8:0:0:0:0:0:1\", port: 7713}\n"
                        "  - node_id: d\n"
                        "    address: ::ffff:10.0.0.1\n"
                        "    port: 7714\n");
    assert_ok(r);
    assert_int_equal(r.file.peers.size(), 4);
    assert_string_equal(r.file.peers[0].address.c_str(), "::1");
    assert_string_equal(r.file.peers[0].endpoint().c_str(), "[::1]:7711");
    assert_string_equal(r.file.peers[1].address.c_str(), "fe80::1");  // stored without brackets
    assert_string_equal(r.file.peers[1].endpoint().c_str(), "[fe80::1]:7712");
    assert_string_equal(r.file.peers[2].address.c_str(), "2001:db8::1");  // canonical form
    assert_string_equal(r.file.peers[3].endpoint().c_str(), "[::ffff:10.0.0.1]:7714");
}

void test_client_defaults_to_server(void**) {
    PeersLoad r = parse(kTls);
    assert_ok(r);
    assert_string_equal(r.file.tls.client_cert.c_str(), "var/certs/node_1.pem");
    assert_string_equal(r.file.tls.client_key.c_str(), "var/certs/node_1.key");
}

void test_endpoint(void**) {
    PeerEntry v4{"a", "192.168.1.2", 80};
    assert_string_equal(v4.endpoint().c_str(), "192.168.1.2:80");
    PeerEntry v6{"b", "::1", 7701};
    assert_string_equal(v6.endpoint().c_str(), "[::1]:7701");
}

// ---- errors, each with its position ----

void test_unknown_keys(void**) {
    assert_string_equal(
        only_error(parse(std::string(kTls) + "peerz: []\n")).c_str(),
        "p.yml:5:1: peerz: unknown key \"peerz\" at the top level; allowed: allow_insecure_peers, tls, peers");
    assert_string_equal(only_error(parse("tls:\n"
                                         "  ca_cert: a\n"
                                         "  server_cert: b\n"
                                         "  server_key: c\n"
                                         "  client_crt: d\n"))
                            .c_str(),
                        "p.yml:5:3: tls.client_crt: unknown key \"client_crt\" in \"tls\"; allowed: ca_cert, "
                        "server_cert, server_key, client_cert, client_key");
    assert_string_equal(
        only_error(parse(std::string(kTls) + "peers:\n"
                                             "  - {node_id: a, address: 127.0.0.1, port: 1, weight: 3}\n"))
            .c_str(),
        "p.yml:6:47: peers[0].weight: unknown key \"weight\" in \"peers[0]\"; allowed: node_id, "
        "address, port");
    // A hostile key is quoted escaped.
    std::string e = only_error(parse(std::string(kTls) + "\"a\\x1b[31m\": 1\n"));
    assert_true(contains(e, "unknown key \"a\\x1b[31m\""));
}

void test_wrong_types(void**) {
    assert_string_equal(only_error(parse(std::string(kTls) + "allow_insecure_peers: yes\n")).c_str(),
                        "p.yml:5:23: allow_insecure_peers: expected true or false, got \"yes\"");
    assert_string_equal(only_error(parse(std::string(kTls) + "allow_insecure_peers: [true]\n")).c_str(),
                        "p.yml:5:23: allow_insecure_peers: expected true or false, got a list");
    // An empty value is reported at its key.
    assert_string_equal(only_error(parse(std::string(kTls) + "allow_insecure_peers:\n")).c_str(),
                        "p.yml:5:1: allow_insecure_peers: expected true or false, got an empty value");
    assert_string_equal(only_error(parse("allow_insecure_peers: true\ntls: [a, b]\n")).c_str(),
                        "p.yml:2:6: tls: expected a mapping of ca_cert, server_cert, server_key, client_cert, "
                        "client_key, got a list");
    assert_string_equal(only_error(parse(std::string(kTls) + "peers: node_2\n")).c_str(),
                        "p.yml:5:8: peers: expected a list of {node_id, address, port}, got a scalar");
    assert_string_equal(only_error(parse(std::string(kTls) + "peers:\n  - node_2\n")).c_str(),
                        "p.yml:6:5: peers[0]: expected a mapping {node_id, address, port}, got a scalar");
    assert_string_equal(only_error(parse("tls:\n"
                                         "  ca_cert: [a]\n"
                                         "  server_cert: b\n"
                                         "  server_key: c\n"))
                            .c_str(),
                        "p.yml:2:12: tls.ca_cert: expected a file path, got a list");
    assert_string_equal(only_error(parse("tls:\n"
                                         "  ca_cert: a\n"
                                         "  server_cert:\n"
                                         "  server_key: c\n"))
                            .c_str(),
                        "p.yml:3:3: tls.server_cert: expected a file path, got an empty value");
    assert_string_equal(only_error(parse(std::string(kTls) + "peers:\n"
                                                             "  - {node_id: {x: 1}, address: 127.0.0.1, port: 1}\n"))
                            .c_str(),
                        "p.yml:6:15: peers[0].node_id: expected a node id, got a mapping");
}

void test_bad_paths(void**) {
    assert_string_equal(only_error(parse("tls:\n"
                                         "  ca_cert: \"\"\n"
                                         "  server_cert: b\n"
                                         "  server_key: c\n"))
                            .c_str(),
                        "p.yml:2:12: tls.ca_cert: must not be empty");
    std::string long_path(4097, 'x');
    assert_string_equal(only_error(parse("tls:\n"
                                         "  ca_cert: a\n"
                                         "  server_cert: " +
                                         long_path +
                                         "\n"
                                         "  server_key: c\n"))
                            .c_str(),
                        "p.yml:3:16: tls.server_cert: must be at most 4096 bytes long, got 4097");
    assert_ok(parse("tls:\n  ca_cert: a\n  server_cert: " + std::string(4096, 'x') + "\n  server_key: c\n"));
    assert_string_equal(only_error(parse("tls:\n"
                                         "  ca_cert: a\n"
                                         "  server_cert: b\n"
                                         "  server_key: \"c\\td\"\n"))
                            .c_str(),
                        "p.yml:4:15: tls.server_key: contains a control character: \"c\\x09d\"");
}

void test_port_range(void**) {
    const std::string head = std::string(kTls) + "peers:\n";
    assert_string_equal(only_error(parse(head + "  - {node_id: a, address: 127.0.0.1, port: abc}\n")).c_str(),
                        "p.yml:6:44: peers[0].port: expected an integer 1..65535, got \"abc\"");
    for (const char* bad : {"0", "65536", "-1", "99999999999999999999", "1.5", "+80", " 80x", "0x50"}) {
        PeersLoad r = parse(head + "  - {node_id: a, address: 127.0.0.1, port: '" + bad + "'}\n");
        std::string e = only_error(r);
        assert_starts_with(e, "p.yml:6:44: peers[0].port: expected an integer 1..65535, got \"");
    }
    // Block style: the value's own position.
    assert_string_equal(only_error(parse(head + "  - node_id: a\n"
                                                "    address: 127.0.0.1\n"
                                                "    port: 0\n"))
                            .c_str(),
                        "p.yml:8:11: peers[0].port: expected an integer 1..65535, got \"0\"");
    assert_string_equal(only_error(parse(head + "  - node_id: a\n"
                                                "    address: 127.0.0.1\n"
                                                "    port:\n"))
                            .c_str(),
                        "p.yml:8:5: peers[0].port: expected an integer 1..65535, got an empty value");
}

void test_bad_node_ids(void**) {
    const std::string head = std::string(kTls) + "peers:\n";
    const std::string ok64(63, 'n');
    assert_ok(parse(head + "  - {node_id: " + ok64 + ", address: 127.0.0.1, port: 1}\n"));
    for (const std::string& bad : {std::string(64, 'n'), std::string("'node 2'"), std::string("'node.2'"),
                                   std::string("''"), std::string("'n\xc3\xa9'"), std::string("'a/b'")}) {
        std::string e = only_error(parse(head + "  - {node_id: " + bad + ", address: 127.0.0.1, port: 1}\n"));
        assert_starts_with(
            e, "p.yml:6:15: peers[0].node_id: a node id must be 1 to 63 characters of A-Z a-z 0-9 _ -, got \"");
    }
    assert_string_equal(only_error(parse(head + "  - {node_id: 'a b', address: 127.0.0.1, port: 1}\n")).c_str(),
                        "p.yml:6:15: peers[0].node_id: a node id must be 1 to 63 characters of A-Z a-z 0-9 _ -, got "
                        "\"a b\"");
}

void test_bad_addresses(void**) {
    const std::string head = std::string(kTls) + "peers:\n";
    auto error_for = [&](const std::string& address) {
        return only_error(parse(head + "  - {node_id: a, address: " + address + ", port: 1}\n"));
    };
    assert_string_equal(error_for("node2.example.com").c_str(),
                        "p.yml:6:27: peers[0].address: expected an IPv4 or IPv6 address literal, got "
                        "\"node2.example.com\"; host names are not allowed");
    assert_string_equal(error_for("127.0.0.1:7711").c_str(),
                        "p.yml:6:27: peers[0].address: expected an IPv4 or IPv6 address literal, got "
                        "\"127.0.0.1:7711\"; give the port in \"port\"");
    assert_true(contains(error_for("'[::1]:7711'"), "give the port in \"port\""));
    for (const char* bad : {"256.0.0.1", "1.2.3", "'[1.2.3.4]'", "'[::1'", "'::1]'", "'::g'", "'fe80::1%eth0'",
                            "'1.2.3.4 '", "'01.2.3.4'", "'::1::2'", "'[]'", "'[::1]x'"}) {
        std::string e = error_for(bad);
        assert_starts_with(e, "p.yml:6:27: peers[0].address: expected an IPv4 or IPv6 address literal, got \"");
    }
    assert_string_equal(only_error(parse(head + "  - node_id: a\n    address:\n    port: 1\n")).c_str(),
                        "p.yml:7:5: peers[0].address: expected an IPv4 or IPv6 address literal, got an empty value");
}

void test_missing_peer_keys(void**) {
    const std::string head = std::string(kTls) + "peers:\n";
    assert_string_equal(only_error(parse(head + "  - {node_id: a, address: 127.0.0.1}\n")).c_str(),
                        "p.yml:6:5: peers[0].port: missing; every peer needs node_id, address, port");
    PeersLoad r = parse(head +
                        "  - {node_id: a, address: 127.0.0.1, port: 1}\n"
                        "  - port: 2\n");
    assert_int_equal(r.errors.size(), 2);
    assert_string_equal(r.errors[0].c_str(),
                        "p.yml:7:5: peers[1].node_id: missing; every peer needs node_id, address, port");
    assert_string_equal(r.errors[1].c_str(),
                        "p.yml:7:5: peers[1].address: missing; every peer needs node_id, address, port");
    PeersLoad empty = parse(head + "  - {}\n");
    assert_int_equal(empty.errors.size(), 3);
}

void test_tls_required_when_secure(void**) {
    // No tls section at all: the file as a whole.
    PeersLoad r = parse("peers:\n  - {node_id: a, address: 127.0.0.1, port: 1}\n");
    assert_int_equal(r.errors.size(), 3);
    assert_string_equal(r.errors[0].c_str(),
                        "p.yml: tls.ca_cert: missing; required unless allow_insecure_peers is true");
    assert_string_equal(r.errors[1].c_str(),
                        "p.yml: tls.server_cert: missing; required unless allow_insecure_peers is true");
    assert_string_equal(r.errors[2].c_str(),
                        "p.yml: tls.server_key: missing; required unless allow_insecure_peers is true");
    assert_true(r.file.peers.empty());  // nothing is handed out with errors

    r = parse("allow_insecure_peers: false\n");
    assert_int_equal(r.errors.size(), 3);

    // An empty tls section: its key.
    r = parse("allow_insecure_peers: false\ntls:\n");
    assert_int_equal(r.errors.size(), 3);
    assert_string_equal(r.errors[0].c_str(),
                        "p.yml:2:1: tls.ca_cert: missing; required unless allow_insecure_peers is true");

    // A partial one: the mapping.
    assert_string_equal(only_error(parse("allow_insecure_peers: false\n"
                                         "tls:\n"
                                         "  ca_cert: a\n"
                                         "  server_cert: b\n"))
                            .c_str(),
                        "p.yml:3:3: tls.server_key: missing; required unless allow_insecure_peers is true");
    assert_string_equal(only_error(parse("tls: {server_cert: b, server_key: c}\n")).c_str(),
                        "p.yml:1:6: tls.ca_cert: missing; required unless allow_insecure_peers is true");

    // Insecure, but a tls section given: it must still be whole.
    assert_string_equal(only_error(parse("allow_insecure_peers: true\n"
                                         "tls:\n"
                                         "  server_cert: b\n"
                                         "  server_key: c\n"))
                            .c_str(),
                        "p.yml:3:3: tls.ca_cert: missing; required in a tls section");
    // client_cert without client_key would pair a client cert with the server key.
    assert_string_equal(only_error(parse(std::string(kTls) + "  client_cert: d\n")).c_str(),
                        "p.yml:2:3: tls: client_cert and client_key go together: give both, or neither to use "
                        "server_cert and server_key");
    // A bad allow_insecure_peers adds no guess about tls.
    assert_int_equal(parse("allow_insecure_peers: maybe\n").errors.size(), 1);
}

void test_many_errors_at_once(void**) {
    PeersLoad r = parse(
        "allow_insecure_peers: maybe\n"                // 1
        "tls:\n"                                       // 2
        "  ca_cert: \"\"\n"                            // 3
        "  server_cert: b\n"                           // 4
        "  server_key: c\n"                            // 5
        "  extra: 1\n"                                 // 6
        "peers:\n"                                     // 7
        "  - {node_id: 'a b', address: x, port: 0}\n"  // 8
        "  - {node_id: ok, address: 127.0.0.1, port: 1}\n"
        "  - [1]\n"         // 10
        "colour: blue\n");  // 11
    assert_int_equal(r.errors.size(), 8);
    assert_starts_with(r.errors[0], "p.yml:1:23: allow_insecure_peers: expected true or false");
    assert_starts_with(r.errors[1], "p.yml:3:12: tls.ca_cert: must not be empty");
    assert_starts_with(r.errors[2], "p.yml:6:3: tls.extra: unknown key");
    assert_starts_with(r.errors[3], "p.yml:8:15: peers[0].node_id: a node id must be");
    assert_starts_with(r.errors[4], "p.yml:8:31: peers[0].address: expected an IPv4 or IPv6");
    assert_starts_with(r.errors[5], "p.yml:8:40: peers[0].port: expected an integer 1..65535, got \"0\"");
    assert_starts_with(r.errors[6], "p.yml:10:5: peers[2]: expected a mapping");
    assert_starts_with(r.errors[7], "p.yml:11:1: colour: unknown key");
    assert_true(r.file.peers.empty());
}

void test_error_cap(void**) {
    std::string text = std::string(kTls) + "peers:\n";
    for (int i = 0; i < 300; ++i)
        text += "  - {node_id: 'bad id', address: 127.0.0.1, port: " + std::to_string(i + 1) + "}\n";
    PeersLoad r = parse(text);
    assert_int_equal(r.errors.size(), rampart::config::kMaxYamlErrors + 1);
    assert_string_equal(r.errors.back().c_str(), "p.yml: too many problems; stopped reporting");
    assert_starts_with(r.errors[0], "p.yml:6:15: peers[0].node_id:");
}

void test_too_many_peers(void**) {
    std::string text = std::string(kTls) + "peers:\n";
    for (size_t i = 0; i < kMaxPeers; ++i) {
        text += "  - {node_id: n" + std::to_string(i) + ", address: 10.0." + std::to_string(i / 256) + "." +
                std::to_string(i % 256) + ", port: 7711}\n";
    }
    PeersLoad at_limit = parse(text);
    assert_ok(at_limit);
    assert_int_equal(at_limit.file.peers.size(), kMaxPeers);
    text += "  - {node_id: last, address: 10.9.9.9, port: 7711}\n";
    assert_string_equal(only_error(parse(text)).c_str(), "p.yml:6:3: peers: at most 1024 peers are allowed, got 1025");
}

// ---- duplicates ----

void test_duplicate_node_id(void**) {
    PeersLoad r = parse(std::string(kTls) +
                        "peers:\n"
                        "  - {node_id: node_1, address: 127.0.0.1, port: 7711}\n"
                        "  - {node_id: node_2, address: 127.0.0.1, port: 7712}\n"
                        "  - {node_id: node_1, address: 127.0.0.1, port: 7713}\n");
    assert_ok(r);
    assert_int_equal(r.warnings.size(), 1);
    assert_string_equal(r.warnings[0].c_str(),
                        "p.yml:8:5: peers[2]: duplicate of peers[0] (node_1 127.0.0.1:7711) removed");
    assert_int_equal(r.file.peers.size(), 2);
    assert_string_equal(r.file.peers[0].node_id.c_str(), "node_1");
    assert_int_equal(r.file.peers[0].port, 7711);
    assert_string_equal(r.file.peers[1].node_id.c_str(), "node_2");
}

void test_duplicate_endpoint(void**) {
    PeersLoad r = parse(std::string(kTls) +
                        "peers:\n"
                        "  - {node_id: node_1, address: 127.0.0.1, port: 7711}\n"
                        "  - {node_id: node_2, address: '::1', port: 7711}\n"
                        "  - node_id: node_3\n"
                        "    address: 127.0.0.1\n"
                        "    port: 7711\n"
                        "  - {node_id: node_4, address: '[0:0:0:0:0:0:0:1]', port: 7711}\n"
                        "  - {node_id: node_5, address: 127.0.0.1, port: 7712}\n");
    assert_ok(r);
    assert_int_equal(r.warnings.size(), 2);
    assert_string_equal(r.warnings[0].c_str(),
                        "p.yml:8:5: peers[2]: duplicate of peers[0] (node_1 127.0.0.1:7711) removed");
    // Two spellings of one IPv6 address are one endpoint.
    assert_string_equal(r.warnings[1].c_str(),
                        "p.yml:11:5: peers[3]: duplicate of peers[1] (node_2 [::1]:7711) removed");
    assert_int_equal(r.file.peers.size(), 3);
    assert_string_equal(r.file.peers[2].node_id.c_str(), "node_5");
}

void test_duplicate_keys_in_entry(void**) {
    // The YAML tree reports duplicate mapping keys; the first one stays.
    std::string e = only_error(parse(std::string(kTls) + "peers:\n"
                                                         "  - {node_id: a, address: 127.0.0.1, port: 1, port: 2}\n"));
    assert_starts_with(e, "p.yml:6:47: peers.port: duplicate key \"port\"");
}

// ---- hostile input ----

void test_aliases_and_anchors(void**) {
    PeersLoad r = parse(std::string(kTls) +
                        "peers:\n"
                        "  - &p {node_id: a, address: 127.0.0.1, port: 1}\n"
                        "  - *p\n");
    assert_false(r.ok());
    assert_string_equal(r.errors[0].c_str(), "p.yml:6:5: peers: anchors (&name) are not supported");
    // Billion laughs never expands.
    std::string laughs = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
    for (char c = 'b'; c <= 'j'; ++c) {
        char prev = static_cast<char>(c - 1);
        laughs += std::string(1, c) + ": &" + c + " [*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + "]\n";
    }
    r = parse(laughs);
    assert_false(r.ok());
    assert_true(contains(r.errors[0], "anchors (&name) are not supported"));
    r = parse(std::string(kTls) + "peers: !!seq []\n");
    assert_false(r.ok());
    assert_true(contains(r.errors[0], "tags (!name) are not supported"));
}

void test_deep_nesting(void**) {
    std::string deep = "peers: " + std::string(10000, '[') + std::string(10000, ']') + "\n";
    PeersLoad r = parse(deep);
    assert_false(r.ok());
    assert_int_equal(r.errors.size(), 2);
    assert_string_equal(r.errors[0].c_str(),
                        "p.yml:1:9: peers[0]: expected a mapping {node_id, address, port}, got a list");
    assert_string_equal(r.errors[1].c_str(), "p.yml:1:39: peers: nesting is deeper than 32 levels");
    std::string deep_map = "tls:";
    for (int i = 0; i < 200; ++i) deep_map += " {a:";
    deep_map += " 1" + std::string(200, '}') + "\n";
    r = parse(deep_map);
    assert_false(r.ok());
}

void test_oversized_input(void**) {
    std::string big = std::string(kTls) + "peers:\n";
    while (big.size() < 2u << 20) big += "  - {node_id: n, address: 127.0.0.1, port: 1}\n";
    PeersLoad r = parse(big);
    std::string e = only_error(r);
    assert_starts_with(e, "p.yml: the file is ");
    assert_true(contains(e, "1 MiB"));
}

void test_nul_and_non_utf8(void**) {
    std::string with_nul = std::string(kTls) + "peers:\n  - {node_id: ab, address: 127.0.0.1, port: 1}\n";
    with_nul.insert(with_nul.find("ab, address") + 1, std::string(1, '\0'));
    PeersLoad r = parse(with_nul);
    assert_false(r.ok());
    assert_true(contains(r.errors[0], "p.yml:6:"));
    std::string latin1 = std::string(kTls) + "peers:\n  - {node_id: caf\xe9, address: 127.0.0.1, port: 1}\n";
    r = parse(latin1);
    assert_false(r.ok());
    assert_string_equal(r.errors[0].c_str(),
                        "p.yml:6:19: invalid YAML input: invalid trailing UTF-8 octet (byte 0x2c)");
    r = parse(std::string(kTls) + "peers:\n  - {node_id: \xff, address: 127.0.0.1, port: 1}\n");
    assert_string_equal(only_error(r).c_str(),
                        "p.yml:6:15: invalid YAML input: invalid leading UTF-8 octet (byte 0xff)");
    // Valid UTF-8 that is not a node id is quoted escaped.
    std::string e =
        only_error(parse(std::string(kTls) + "peers:\n  - {node_id: \"\xe2\x80\xae\", address: 127.0.0.1, port: 1}\n"));
    assert_true(contains(e, "got \"\\xe2\\x80\\xae\""));
}

void test_top_level_not_a_mapping(void**) {
    PeersLoad list = parse("- {node_id: a, address: 127.0.0.1, port: 1}\n");
    assert_string_equal(only_error(list).c_str(),
                        "p.yml:1:1: the top level must be a mapping of sections (e.g. \"api:\"), not a list");
    PeersLoad scalar = parse("hello\n");
    assert_string_equal(only_error(scalar).c_str(),
                        "p.yml:1:1: the top level must be a mapping of sections (e.g. \"api:\"), not a scalar");
    PeersLoad two = parse(std::string(kTls) + "---\n" + kTls);
    assert_false(two.ok());
    assert_true(contains(two.errors[0], "only one YAML document is allowed"));
}

void test_truncated_yaml(void**) {
    // A flow mapping cut short: the syntax error, and no guesses about
    // keys that may have come after it.
    PeersLoad r = parse(std::string(kTls) + "peers:\n  - {node_id: a, address: 127.0.0.1,");
    std::string e = only_error(r);
    assert_starts_with(e, "p.yml:");
    assert_true(contains(e, "YAML syntax error"));
    // Cut before tls: no "tls.ca_cert missing".
    r = parse("peers: [ {node_id: a");
    e = only_error(r);
    assert_true(contains(e, "YAML syntax error"));
    // A bad value before the syntax error is still reported.
    r = parse(std::string(kTls) + "peers:\n  - {node_id: a, address: 127.0.0.1, port: 0}\n  - {node_id: b\n");
    assert_int_equal(r.errors.size(), 2);
    assert_string_equal(r.errors[0].c_str(), "p.yml:6:44: peers[0].port: expected an integer 1..65535, got \"0\"");
    assert_true(contains(r.errors[1], "YAML syntax error"));
    // Tabs.
    r = parse("tls:\n\tca_cert: a\n");
    assert_false(r.ok());
    assert_true(contains(r.errors[0], "tabs cannot indent YAML"));
}

void test_random_garbage_never_crashes(void**) {
    unsigned seed = 12345;
    std::string base = std::string(kTls) + "peers:\n  - {node_id: a, address: '::1', port: 7711}\n";
    for (int round = 0; round < 2000; ++round) {
        std::string text = base;
        for (int k = 0; k < 4; ++k) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % text.size();
            seed = seed * 1103515245u + 12345u;
            text[at] = static_cast<char>(seed >> 16);
        }
        PeersLoad r = parse(text);
        for (const std::string& e : r.errors) assert_starts_with(e, "p.yml");
        if (!r.ok()) assert_true(r.file.peers.empty());
    }
}

// ---- files ----

void test_load_missing_file(void**) {
    PeersLoad r = load_peers("/nonexistent/dir/peers.yml");
    assert_string_equal(only_error(r).c_str(), "/nonexistent/dir/peers.yml: cannot open: No such file or directory");
}

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/test_peers_file.XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() {
        std::string cmd = "rm -rf '" + path + "'";
        if (system(cmd.c_str()) != 0) fprintf(stderr, "could not remove %s\n", path.c_str());
    }
    std::string write(const std::string& name, const std::string& text) const {
        std::string full = path + "/" + name;
        std::ofstream out(full, std::ios::binary);
        out << text;
        return full;
    }
};

void test_load_real_file(void**) {
    TempDir dir;
    std::string path = dir.write("peers.yml", std::string(kTls) +
                                                  "peers:\n"
                                                  "  - {node_id: node_2, address: 127.0.0.1, port: 7711}\n"
                                                  "  - {node_id: node_2, address: 127.0.0.2, port: 7711}\n");
    PeersLoad r = load_peers(path);
    assert_ok(r);
    assert_int_equal(r.file.peers.size(), 1);
    assert_int_equal(r.warnings.size(), 1);
    assert_string_equal(r.warnings[0].c_str(),
                        (path + ":7:5: peers[1]: duplicate of peers[0] (node_2 127.0.0.1:7711) removed").c_str());

    std::string bad = dir.write("bad.yml", std::string(kTls) + "peers: 3\n");
    assert_string_equal(only_error(load_peers(bad)).c_str(),
                        (bad + ":5:8: peers: expected a list of {node_id, address, port}, got a scalar").c_str());

    std::string empty = dir.write("empty.yml", "");
    assert_ok(load_peers(empty));

    std::string big = dir.write("big.yml", std::string((1u << 20) + 1, '#'));
    assert_string_equal(only_error(load_peers(big)).c_str(),
                        (big + ": larger than the limit of 1048576 bytes (1 MiB)").c_str());

    assert_string_equal(only_error(load_peers(dir.path)).c_str(), (dir.path + ": not a regular file").c_str());

    if (geteuid() != 0) {  // root reads anything
        std::string locked = dir.write("locked.yml", kTls);
        chmod(locked.c_str(), 0);
        assert_string_equal(only_error(load_peers(locked)).c_str(),
                            (locked + ": cannot open: Permission denied").c_str());
    }
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_minimal_file),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_insecure_without_tls),
        cmocka_unit_test(test_ipv6_addresses),
        cmocka_unit_test(test_client_defaults_to_server),
        cmocka_unit_test(test_endpoint),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bad_paths),
        cmocka_unit_test(test_port_range),
        cmocka_unit_test(test_bad_node_ids),
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_missing_peer_keys),
        cmocka_unit_test(test_tls_required_when_secure),
        cmocka_unit_test(test_many_errors_at_once),
        cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_too_many_peers),
        cmocka_unit_test(test_duplicate_node_id),
        cmocka_unit_test(test_duplicate_endpoint),
        cmocka_unit_test(test_duplicate_keys_in_entry),
        cmocka_unit_test(test_aliases_and_anchors),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_oversized_input),
        cmocka_unit_test(test_nul_and_non_utf8),
        cmocka_unit_test(test_top_level_not_a_mapping),
        cmocka_unit_test(test_truncated_yaml),
        cmocka_unit_test(test_random_garbage_never_crashes),
        cmocka_unit_test(test_load_missing_file),
        cmocka_unit_test(test_load_real_file),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
