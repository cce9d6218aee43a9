#include "recover_command.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "audit/audit_log.h"
#include "cluster/raft_adapter.h"
#include "cluster/raft_bridge.h"
#include "config/config.h"
#include "net/address.h"
#include "peer/peers_file.h"

namespace rampartctl {
namespace {

constexpr int kOk = 0;
constexpr int kFailure = 1;
constexpr int kUsage = 2;

int recover_usage() {
    fprintf(stderr,
            "usage: rampartctl [--json] cluster recover -c CONFIG [--voter NODE_ID]...\n"
            "  offline, with rampartd stopped on this node: make this node (and each --voter, a\n"
            "  survivor listed in its peers file, recovered the same way) the whole cluster\n");
    return kUsage;
}

struct Voter {
    std::string node_id;
    uint64_t raft_id;
    std::string address;
};

// The engine's state lives in <data_dir>/raft; a pristine directory has
// nothing to recover (the node bootstraps on its first start).
bool has_raft_state(const std::string& raft_dir) {
    struct stat st {};
    for (const char* f : {"/metadata1", "/metadata2"}) {
        if (stat((raft_dir + f).c_str(), &st) == 0) return true;
    }
    return false;
}

// A running rampartd holds its peer port: if the port can be bound, no
// daemon of this configuration runs (the engine's files must not change
// under a live node).
bool peer_port_free(const std::string& listen, std::string* why) {
    rampart::net::Address addr;
    std::string error;
    if (!rampart::net::parse_address(listen, &addr, &error)) {
        *why = "peer.listen " + listen + ": " + error;
        return false;
    }
    int fd = socket(addr.storage.ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        *why = std::string("socket: ") + strerror(errno);
        return false;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // TIME_WAIT is not a daemon
    socklen_t len = addr.ipv6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    bool ok = bind(fd, addr.sa(), len) == 0;
    if (!ok)
        *why = "the peer port " + listen + " is in use (" + strerror(errno) + "): stop rampartd on this node first";
    close(fd);
    return ok;
}

void engine_log(void*, int level, const char* msg) {
    if (level <= 2) fprintf(stderr, "rampartctl: raft: %s\n", msg);
}

// Never called: the node is recovered and closed, never started.
void no_apply(void*, uint64_t, const void*, size_t, void**) {}

int run_recover(const std::string& raft_dir, const std::vector<Voter>& voters) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    rampart_raft_config cfg{};
    cfg.id = voters[0].raft_id;
    cfg.address = voters[0].address.c_str();
    cfg.data_dir = raft_dir.c_str();
    cfg.fsm.apply = no_apply;
    cfg.log = engine_log;
    rampart_raft* node = nullptr;
    int rv = rampart_raft_create(&loop, &cfg, &node);
    if (rv == 0) {
        std::vector<uint64_t> ids;
        std::vector<const char*> addresses;
        for (const Voter& v : voters) {
            ids.push_back(v.raft_id);
            addresses.push_back(v.address.c_str());
        }
        rv = rampart_raft_recover(node, static_cast<unsigned>(voters.size()), ids.data(), addresses.data());
        rampart_raft_close(node, nullptr, nullptr);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&loop);
    return rv;
}

void audit(const rampart::config::Config& cfg, const std::vector<Voter>& voters) {
    rampart::audit::Options options;
    options.path = cfg.node.data_dir + "/audit.jsonl";
    options.node_id = cfg.node.id;
    rampart::audit::AuditLog log(options);
    std::string names, error;
    for (const Voter& v : voters) names += (names.empty() ? "" : ",") + v.node_id;
    if (!log.open(&error) || log.append("cluster_recovered", {{"voters", names}}, &error) == 0)
        fprintf(stderr, "rampartctl: warning: the audit log was not written: %s\n", error.c_str());
}

}  // namespace

int recover_command(const std::vector<std::string>& args, bool json) {
    std::string config_path;
    std::vector<std::string> others;
    for (size_t i = 2; i < args.size(); i++) {
        if ((args[i] == "-c" || args[i] == "--config") && i + 1 < args.size()) {
            config_path = args[++i];
        } else if (args[i] == "--voter" && i + 1 < args.size()) {
            others.push_back(args[++i]);
        } else {
            fprintf(stderr, "rampartctl: cluster recover: unexpected '%s'\n", args[i].c_str());
            return recover_usage();
        }
    }
    if (config_path.empty()) return recover_usage();

    rampart::config::LoadResult loaded =
        rampart::config::load_file(config_path, rampart::config::process_environment());
    if (!loaded.ok()) {
        for (const auto& e : loaded.errors) fprintf(stderr, "rampartctl: %s\n", e.to_string().c_str());
        return kFailure;
    }
    const rampart::config::Config& cfg = *loaded.config;
    if (cfg.peer.listen.empty()) {
        fprintf(stderr, "rampartctl: %s sets no peer.listen: a node without a peer port is no cluster member\n",
                config_path.c_str());
        return kFailure;
    }
    std::vector<Voter> voters{{cfg.node.id, rampart::cluster::raft_id_for(cfg.node.id), cfg.peer.listen}};
    if (!others.empty()) {
        rampart::peer::PeersLoad peers = rampart::peer::load_peers(cfg.peer.peers_file);
        for (const auto& e : peers.errors) fprintf(stderr, "rampartctl: %s\n", e.c_str());
        if (!peers.ok()) return kFailure;
        for (const std::string& id : others) {
            const rampart::peer::PeerEntry* found = nullptr;
            for (const auto& p : peers.file.peers) {
                if (p.node_id == id) found = &p;
            }
            if (found == nullptr || id == cfg.node.id) {
                fprintf(stderr, "rampartctl: --voter %s: %s\n", id.c_str(),
                        id == cfg.node.id ? "this node is a voter already" : "not in the peers file");
                return kFailure;
            }
            voters.push_back({id, rampart::cluster::raft_id_for(id), found->endpoint()});
        }
    }

    const std::string raft_dir = cfg.node.data_dir + "/raft";
    if (!has_raft_state(raft_dir)) {
        fprintf(stderr, "rampartctl: %s holds no Raft state: nothing to recover\n", raft_dir.c_str());
        return kFailure;
    }
    std::string why;
    if (!peer_port_free(cfg.peer.listen, &why)) {
        fprintf(stderr, "rampartctl: %s\n", why.c_str());
        return kFailure;
    }
    int rv = run_recover(raft_dir, voters);
    if (rv != 0) {
        fprintf(stderr, "rampartctl: recovery failed: %s (%s); nothing was changed\n", rampart_raft_status_name(rv),
                raft_dir.c_str());
        return kFailure;
    }
    audit(cfg, voters);
    if (json) {
        printf("{\"node_id\":\"%s\",\"voters\":[", cfg.node.id.c_str());
        for (size_t i = 0; i < voters.size(); i++)
            printf("%s{\"node_id\":\"%s\",\"raft_id\":\"%llu\",\"address\":\"%s\"}", i ? "," : "",
                   voters[i].node_id.c_str(), static_cast<unsigned long long>(voters[i].raft_id),
                   voters[i].address.c_str());
        printf("]}\n");
    } else {
        printf("%s: recovered; the cluster is now %zu voter(s):\n", cfg.node.id.c_str(), voters.size());
        for (const Voter& v : voters) printf("  %s %s\n", v.node_id.c_str(), v.address.c_str());
        printf("start rampartd on %s\n", voters.size() == 1 ? "this node" : "each of them");
    }
    return kOk;
}

}  // namespace rampartctl
