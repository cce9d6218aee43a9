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

int cluster_usage() {
    fprintf(stderr,
            "usage: rampartctl [--json] cluster status   this node, the leader and every member (read token)\n"
            "       rampartctl [--json] cluster leader   the leader's peer address (exit 1 without a leader)\n"
            "       rampartctl [--json] cluster peers    the voters' peer addresses\n"
            "       rampartctl [--json] cluster join-token [--role voter|standby|spare] [--ttl 1h] [--uses N]\n"
            "                                           a join token (admin; --uses 0: until it expires)\n"
            "       rampartctl [--json] cluster join-token list | revoke ID\n"
            "       rampartctl cluster join --token TOKEN [NODE_ID@HOST:PORT ...]   this node joins (admin)\n"
            "       rampartctl cluster leave [NODE_ID]   the node (default: this one) leaves (admin)\n"
            "       rampartctl cluster transfer-leadership [NODE_ID]   hand leadership over (admin)\n");
    return kUsage;
}

std::string text(const cJSON* obj, const char* name) { return json_text(obj, name); }

bool flag(const cJSON* obj, const char* name) { return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, name)); }

std::string ms(const std::string& v) { return v == "-" ? v : v + "ms"; }

int status(const ClusterTarget& t) {
    std::string raw;
    JsonPtr s = request_json(t.addr, t.token, t.timeout_ms, "GET", "/v1/cluster/status", &raw);
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
    JsonPtr s = request_json(t.addr, t.token, t.timeout_ms, "GET", "/v1/status/leader", &raw);
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
    JsonPtr s = request_json(t.addr, t.token, t.timeout_ms, "GET", "/v1/status/peers", &raw);
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

// ---- membership (docs/cluster.md, "Changing the cluster") ----------------

void json_string(std::string& out, const std::string& s) {
    JsonPtr str(cJSON_CreateString(s.c_str()), cJSON_Delete);
    char* printed = cJSON_PrintUnformatted(str.get());
    out += printed;
    cJSON_free(printed);
}

// Send `method path body`; on 2xx print the raw answer (--json) or let
// `show` print it; otherwise say why. Returns the exit status.
int call(const ClusterTarget& t, const char* method, const std::string& path, const std::string& body,
         void (*show)(const cJSON*)) {
    HttpResult r = http_request(t.addr, method, path, t.token, body, t.timeout_ms);
    if (!r.ok) {
        fprintf(stderr, "rampartctl: %s: %s\n", t.addr.c_str(), r.error.c_str());
        return kFailure;
    }
    JsonPtr answer(cJSON_ParseWithLength(r.body.data(), r.body.size()), cJSON_Delete);
    if (r.status < 200 || r.status > 299) {
        std::string why = answer ? text(answer.get(), "error") : "-";
        fprintf(stderr, "rampartctl: HTTP %d: %s\n", r.status, why == "-" ? r.body.c_str() : why.c_str());
        return kFailure;
    }
    if (t.json || !answer)
        fputs(r.body.c_str(), stdout);
    else
        show(answer.get());
    return kOk;
}

void show_token(const cJSON* a) {
    printf("Token:    %s\nID:       %s\nRole:     %s\nUses:     %s\nExpires:  %s\n", text(a, "token").c_str(),
           text(a, "id").c_str(), text(a, "role").c_str(), text(a, "uses").c_str(), text(a, "expires_at").c_str());
}

void show_tokens(const cJSON* a) {
    std::vector<std::vector<std::string>> rows{{"ID", "ROLE", "USED", "EXPIRES"}};
    for (const cJSON* t = cJSON_IsArray(a) ? a->child : nullptr; t != nullptr; t = t->next) {
        std::string max = text(t, "max_uses");
        rows.push_back({text(t, "id"), text(t, "role"), text(t, "uses") + " of " + (max == "0" ? "unlimited" : max),
                        text(t, "expires_at")});
    }
    print_table(rows);
}

void show_done(const cJSON*) { printf("OK\n"); }
void show_leaving(const cJSON* a) { printf("%s is leaving the cluster\n", text(a, "node_id").c_str()); }
void show_joining(const cJSON*) { printf("joining: follow it with rampartctl cluster status\n"); }
void show_leader(const cJSON* a) { printf("leader: %s\n", text(a, "leader").c_str()); }

// Options of the form --name VALUE among args[from..]; the rest in *rest.
bool options(const std::vector<std::string>& args, size_t from, std::vector<std::pair<std::string, std::string>>* opts,
             std::vector<std::string>* rest) {
    for (size_t i = from; i < args.size(); i++) {
        if (args[i].rfind("--", 0) != 0) {
            rest->push_back(args[i]);
            continue;
        }
        if (i + 1 >= args.size()) return false;
        opts->emplace_back(args[i].substr(2), args[i + 1]);
        i++;
    }
    return true;
}

int join_token(const std::vector<std::string>& args, const ClusterTarget& t) {
    if (args.size() == 3 && args[2] == "list") return call(t, "GET", "/v1/cluster/join-tokens", "", show_tokens);
    if (args.size() == 4 && args[2] == "revoke")
        return call(t, "DELETE", "/v1/cluster/join-token/" + args[3], "", show_done);
    std::vector<std::pair<std::string, std::string>> opts;
    std::vector<std::string> rest;
    if (!options(args, 2, &opts, &rest) || !rest.empty()) return cluster_usage();
    std::string body = "{";
    for (const auto& [name, value] : opts) {
        if (name != "role" && name != "ttl" && name != "uses") return cluster_usage();
        if (body.size() > 1) body += ",";
        json_string(body, name);
        body += ":";
        if (name == "uses") {
            if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos) return cluster_usage();
            body += value;
        } else {
            json_string(body, value);
        }
    }
    return call(t, "POST", "/v1/cluster/join-token", body + "}", show_token);
}

int join(const std::vector<std::string>& args, const ClusterTarget& t) {
    std::vector<std::pair<std::string, std::string>> opts;
    std::vector<std::string> seeds;
    if (!options(args, 2, &opts, &seeds) || opts.size() != 1 || opts[0].first != "token") return cluster_usage();
    std::string body = "{\"join_token\":";
    json_string(body, opts[0].second);
    body += ",\"seeds\":[";
    for (size_t i = 0; i < seeds.size(); i++) {
        if (i > 0) body += ",";
        json_string(body, seeds[i]);
    }
    return call(t, "POST", "/v1/cluster/join", body + "]}", show_joining);
}

// `field` set to args[2] when given.
std::string optional_body(const std::vector<std::string>& args, const char* field) {
    if (args.size() < 3) return "";
    std::string body = "{";
    json_string(body, field);
    body += ":";
    json_string(body, args[2]);
    return body + "}";
}

}  // namespace

int cluster_command(const std::vector<std::string>& args, const ClusterTarget& target) {
    if (args.size() >= 2 && args[1] == "join-token") return join_token(args, target);
    if (args.size() >= 2 && args[1] == "join") return join(args, target);
    if (args.size() <= 3 && args.size() >= 2 && args[1] == "leave")
        return call(target, "POST", "/v1/cluster/leave", optional_body(args, "node_id"), show_leaving);
    if (args.size() <= 3 && args.size() >= 2 && args[1] == "transfer-leadership")
        return call(target, "POST", "/v1/cluster/transfer-leadership", optional_body(args, "to"), show_leader);
    if (args.size() != 2) return cluster_usage();
    if (args[1] == "status") return status(target);
    if (args[1] == "leader") return leader(target);
    if (args[1] == "peers") return peers(target);
    fprintf(stderr, "rampartctl: unknown cluster command '%s'\n", args[1].c_str());
    return cluster_usage();
}

}  // namespace rampartctl
