#include "cluster_command.h"

#include <cjson/cJSON.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "http_client.h"
#include "table_output.h"

namespace rampartctl {
namespace {

constexpr int kOk = 0;
constexpr int kFailure = 1;
constexpr int kUsage = 2;

using JsonPtr = std::unique_ptr<cJSON, void (*)(cJSON*)>;

int cluster_usage() {
    fprintf(stderr,
            "usage: rampartctl [--json] cluster status   this node, the leader and every member (read token)\n"
            "       rampartctl [--json] cluster leader   the leader's peer address (exit 1 without a leader)\n"
            "       rampartctl [--json] cluster peers    the voters' peer addresses\n");
    return kUsage;
}

std::string text(const cJSON* obj, const char* name) { return json_text(obj, name); }

bool flag(const cJSON* obj, const char* name) { return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, name)); }

// GET `path`: the parsed body of a 200, or nullptr after saying why.
JsonPtr fetch(const ClusterTarget& t, const char* path, std::string* raw) {
    JsonPtr none(nullptr, cJSON_Delete);
    HttpResult r = http_request(t.addr, "GET", path, t.token, "", t.timeout_ms);
    if (!r.ok) {
        fprintf(stderr, "rampartctl: %s: %s\n", t.addr.c_str(), r.error.c_str());
        return none;
    }
    JsonPtr body(cJSON_ParseWithLength(r.body.data(), r.body.size()), cJSON_Delete);
    if (r.status != 200) {
        std::string why = body ? text(body.get(), "error") : "-";
        fprintf(stderr, "rampartctl: HTTP %d: %s\n", r.status, why == "-" ? r.body.c_str() : why.c_str());
        return none;
    }
    if (!body) {
        fprintf(stderr, "rampartctl: %s: the answer is not JSON\n", t.addr.c_str());
        return none;
    }
    *raw = std::move(r.body);
    return body;
}

std::string ms(const std::string& v) { return v == "-" ? v : v + "ms"; }

int status(const ClusterTarget& t) {
    std::string raw;
    JsonPtr s = fetch(t, "/v1/cluster/status", &raw);
    if (!s) return kFailure;
    if (t.json) {
        fputs(raw.c_str(), stdout);
        return kOk;
    }
    const cJSON* leader = cJSON_GetObjectItemCaseSensitive(s.get(), "leader");
    std::string role = text(s.get(), "role");
    printf("Node:     %s (%s%s%s)\n", text(s.get(), "node_id").c_str(), text(s.get(), "state").c_str(),
           role.empty() ? "" : ", ", role.c_str());
    printf("Term:     %s   commit %s   applied %s   last %s\n", text(s.get(), "term").c_str(),
           text(s.get(), "commit_index").c_str(), text(s.get(), "applied_index").c_str(),
           text(s.get(), "last_index").c_str());
    if (cJSON_IsObject(leader)) {
        std::string name = text(leader, "node_id");
        printf("Leader:   %s %s\n", name.empty() ? ("raft id " + text(leader, "raft_id")).c_str() : name.c_str(),
               text(leader, "address").c_str());
    } else {
        printf("Leader:   none\n");
    }
    printf("Quorum:   %s of %s voters\n\n", text(s.get(), "quorum_size").c_str(), text(s.get(), "voters").c_str());
    std::vector<std::vector<std::string>> rows = {
        {"NODE", "RAFT ID", "ADDRESS", "ROLE", "STATE", "LAST CONTACT", "MATCH", "LAG"}};
    const cJSON* members = cJSON_GetObjectItemCaseSensitive(s.get(), "members");
    for (const cJSON* m = cJSON_IsArray(members) ? members->child : nullptr; m != nullptr; m = m->next) {
        std::string node = text(m, "node_id");
        if (node.empty()) node = "?";
        if (flag(m, "self")) node += " *";
        rows.push_back({node, text(m, "raft_id"), text(m, "address"), text(m, "role"),
                        flag(m, "leader") ? "leader" : (text(m, "role") == "spare" ? "-" : "follower"),
                        ms(text(m, "last_contact_ms")), text(m, "match_index"), text(m, "lag")});
    }
    print_table(rows);
    if (!flag(s.get(), "progress_known"))
        printf("\n(* this node. Match index and lag are known only on the leader: ask it for the full view.)\n");
    else
        printf("\n(* this node)\n");
    return kOk;
}

int leader(const ClusterTarget& t) {
    std::string raw;
    JsonPtr s = fetch(t, "/v1/status/leader", &raw);
    if (!s) return kFailure;
    bool known = cJSON_IsString(s.get()) && s->valuestring[0] != '\0';
    if (t.json)
        fputs(raw.c_str(), stdout);
    else if (known)
        printf("%s\n", s->valuestring);
    else
        fprintf(stderr, "rampartctl: %s knows no leader\n", t.addr.c_str());
    return known ? kOk : kFailure;
}

int peers(const ClusterTarget& t) {
    std::string raw;
    JsonPtr s = fetch(t, "/v1/status/peers", &raw);
    if (!s) return kFailure;
    if (t.json) {
        fputs(raw.c_str(), stdout);
        return kOk;
    }
    for (const cJSON* p = cJSON_IsArray(s.get()) ? s->child : nullptr; p != nullptr; p = p->next) {
        if (cJSON_IsString(p)) printf("%s\n", p->valuestring);
    }
    return kOk;
}

}  // namespace

int cluster_command(const std::vector<std::string>& args, const ClusterTarget& target) {
    if (args.size() != 2) return cluster_usage();
    if (args[1] == "status") return status(target);
    if (args[1] == "leader") return leader(target);
    if (args[1] == "peers") return peers(target);
    fprintf(stderr, "rampartctl: unknown cluster command '%s'\n", args[1].c_str());
    return cluster_usage();
}

}  // namespace rampartctl
