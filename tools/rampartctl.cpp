// rampartctl: the operator CLI. Finds its node through RAMPART_HTTP_ADDR
// (or --addr) and its token through RAMPART_HTTP_TOKEN (or --token).
// Exit status: 0 success, 1 failure, 2 usage.
#include <getopt.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "acl_command.h"
#include "breaker_command.h"
#include "cluster_command.h"
#include "http_client.h"
#include "kv_command.h"
#include "migrate_command.h"
#include "pins_command.h"
#include "policy/policy_host.h"
#include "rampart_version.h"
#include "recover_command.h"
#include "snapshot_command.h"
#include "txn_command.h"

namespace {

constexpr int kOk = 0;
constexpr int kFailure = 1;
constexpr int kUsage = 2;

struct Globals {
    std::string addr = "127.0.0.1:7700";
    std::string token;
    bool json = false;
    int timeout_ms = 5000;
};

void usage() {
    fprintf(stderr,
            "usage: rampartctl [--addr [https://]HOST:PORT] [--token TOKEN] [--cacert CA.pem] [--json] COMMAND\n"
            "  (https: also --client-cert CERT.pem --client-key KEY.pem, --tls-server-name NAME)\n"
            "commands:\n"
            "  kv get KEY [--raw] [--stale|--consistent]   a value\n"
            "  kv put KEY [VALUE | - | --file FILE] [--cas INDEX] [--flags N]   write a value (stdin: -)\n"
            "  kv delete KEY [--recurse] [--cas INDEX]   delete a key, or every key under a prefix\n"
            "  kv list [PREFIX] [--keys [--separator S]]  the keys under PREFIX (a table; --keys names only)\n"
            "  txn [FILE | -]  a Consul /v1/txn body: all or nothing, per-operation results and errors\n"
            "  cluster status|leader|peers   the cluster as this node sees it\n"
            "  breaker list|reset TASK   supervised tasks and their circuit breakers (reset: admin)\n"
            "  cluster recover -c CONFIG [--voter ID]...   offline: this node (and the voters named)\n"
            "                          become the whole cluster after a permanent loss of quorum\n"
            "  cluster join-token|join|leave|transfer-leadership   change it (rampartctl cluster for usage)\n"
            "  acl token create --role R [--description D] [--prefix P] [--ttl 24h]   a new API token\n"
            "  acl token list|read ACCESSOR|delete ACCESSOR   the replicated API tokens (admin)\n"
            "  policy check [DIR]  validate the Lua policies in DIR (default policies/), as SIGHUP would\n"
            "  pins compute CERT.pem       the certificate's sha256: and spki-sha256: pins\n"
            "  pins show|add|remove FILE [NODE_ID PIN]  read or edit a pinned_certs.json\n"
            "  snapshot save FILE      write the node's state to FILE (GET /v1/snapshot, admin)\n"
            "  snapshot restore FILE   replace the cluster's state with FILE (PUT /v1/snapshot, admin)\n"
            "  snapshot inspect FILE   offline: index, size, key count, checksum OK/BAD\n"
            "  migrate-state [DIR]     migrate DIR/state.json from v1 to v2 (daemon stopped)\n"
            "  reload         reload the node's configuration and policies (POST /v1/admin/reload)\n"
            "  util health    is the node alive (GET /health)\n"
            "  util ready     is the node ready for traffic (GET /ready)\n"
            "  version        print the version\n"
            "environment: RAMPART_HTTP_ADDR, RAMPART_HTTP_TOKEN, RAMPART_CACERT, RAMPART_CLIENT_CERT,\n"
            "  RAMPART_CLIENT_KEY, RAMPART_TLS_SERVER_NAME\n");
}

// GET `path` and report the answer: a line for people, the body for --json.
int probe(const Globals& g, const char* path, const char* what) {
    rampartctl::HttpResult r = rampartctl::http_request(g.addr, "GET", path, g.token, "", g.timeout_ms);
    if (!r.ok) {
        fprintf(stderr, "rampartctl: %s\n", r.error.c_str());
        return kFailure;
    }
    bool good = r.status == 200;
    if (g.json) {
        fputs(r.body.c_str(), stdout);
    } else {
        printf("%s: %s (HTTP %d)\n", g.addr.c_str(), good ? what : "not ok", r.status);
    }
    return good ? kOk : kFailure;
}

// Offline: the same load and self-tests the daemon runs before swapping a
// generation in, without touching any node.
int policy_command(const Globals& g, const std::vector<std::string>& args) {
    if (args.size() < 2 || args[1] != "check" || args.size() > 3) {
        usage();
        return kUsage;
    }
    std::string dir = args.size() == 3 ? args[2] : "policies";
    rampart::policy::LoadReport report = rampart::policy::PolicyHost().check(dir);
    if (g.json) {
        printf("{\"ok\":%s,\"errors\":%zu}\n", report.ok ? "true" : "false", report.errors.size());
    }
    for (const auto& e : report.errors) fprintf(stderr, "%s\n", e.c_str());
    if (!report.ok) return kFailure;
    if (!g.json) {
        std::string names;
        for (const auto& p : report.policies) names += (names.empty() ? "" : ", ") + p;
        printf("policies OK: %s (%s)\n", dir.c_str(), names.c_str());
    }
    return kOk;
}

int reload_command(const Globals& g) {
    rampartctl::HttpResult r = rampartctl::http_request(g.addr, "POST", "/v1/admin/reload", g.token, "", g.timeout_ms);
    if (!r.ok) {
        fprintf(stderr, "rampartctl: %s\n", r.error.c_str());
        return kFailure;
    }
    if (g.json || r.status != 200) fputs(r.body.c_str(), r.status == 200 ? stdout : stderr);
    if (r.status == 200 && !g.json) printf("%s: reloaded\n", g.addr.c_str());
    return r.status == 200 ? kOk : kFailure;
}

int util_command(const Globals& g, const std::vector<std::string>& args) {
    if (args.size() != 2) {
        usage();
        return kUsage;
    }
    if (args[1] == "health") return probe(g, "/health", "healthy");
    if (args[1] == "ready") return probe(g, "/ready", "ready");
    fprintf(stderr, "rampartctl: unknown util command '%s'\n", args[1].c_str());
    usage();
    return kUsage;
}

}  // namespace

int main(int argc, char** argv) {
    Globals g;
    if (const char* a = getenv("RAMPART_HTTP_ADDR")) g.addr = a;
    if (const char* t = getenv("RAMPART_HTTP_TOKEN")) g.token = t;
    rampartctl::TlsSettings tls;
    for (auto [name, field] :
         {std::pair{"RAMPART_CACERT", &tls.ca_file}, std::pair{"RAMPART_CLIENT_CERT", &tls.cert_file},
          std::pair{"RAMPART_CLIENT_KEY", &tls.key_file}, std::pair{"RAMPART_TLS_SERVER_NAME", &tls.server_name}}) {
        if (const char* v = getenv(name)) *field = v;
    }
    static const struct option opts[] = {
        {"addr", required_argument, nullptr, 'a'},
        {"token", required_argument, nullptr, 't'},
        {"json", no_argument, nullptr, 'j'},
        {"version", no_argument, nullptr, 'v'},
        {"help", no_argument, nullptr, 'h'},
        {"cacert", required_argument, nullptr, 'C'},
        {"client-cert", required_argument, nullptr, 'E'},
        {"client-key", required_argument, nullptr, 'K'},
        {"tls-server-name", required_argument, nullptr, 'S'},
        {nullptr, 0, nullptr, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "+h", opts, nullptr)) != -1) {
        switch (opt) {
            case 'a': g.addr = optarg; break;
            case 't': g.token = optarg; break;
            case 'j': g.json = true; break;
            case 'C': tls.ca_file = optarg; break;
            case 'E': tls.cert_file = optarg; break;
            case 'K': tls.key_file = optarg; break;
            case 'S': tls.server_name = optarg; break;
            case 'v': printf("rampartctl %s\n", RAMPART_VERSION); return kOk;
            default: usage(); return kUsage;
        }
    }
    rampartctl::set_tls_settings(std::move(tls));
    std::vector<std::string> args(argv + optind, argv + argc);
    if (args.empty()) {
        usage();
        return kUsage;
    }
    if (args[0] == "version") {
        printf("rampartctl %s\n", RAMPART_VERSION);
        return kOk;
    }
    if (args[0] == "util") return util_command(g, args);
    if (args[0] == "policy") return policy_command(g, args);
    if (args[0] == "pins") return rampartctl::pins_command(args, g.json);
    if (args[0] == "cluster" && args.size() > 1 && args[1] == "recover")
        return rampartctl::recover_command(args, g.json);
    if (args[0] == "cluster") return rampartctl::cluster_command(args, {g.addr, g.token, g.json, g.timeout_ms});
    if (args[0] == "kv") return rampartctl::kv_command(args, {g.addr, g.token, g.json, g.timeout_ms});
    if (args[0] == "txn") return rampartctl::txn_command(args, {g.addr, g.token, g.json, g.timeout_ms});
    if (args[0] == "breaker") return rampartctl::breaker_command(args, {g.addr, g.token, g.json, g.timeout_ms});
    if (args[0] == "acl") return rampartctl::acl_command(args, {g.addr, g.token, g.json, g.timeout_ms});
    if (args[0] == "reload" && args.size() == 1) return reload_command(g);
    if (args[0] == "snapshot") return rampartctl::snapshot_command(args, {g.addr, g.token, g.json});
    if (args[0] == "migrate-state") return rampartctl::migrate_command(args, g.json);
    fprintf(stderr, "rampartctl: unknown command '%s'\n", args[0].c_str());
    usage();
    return kUsage;
}
