// rampartctl acl token create --role ROLE [--description TEXT] [--prefix P] [--ttl 24h]
// rampartctl acl token list
// rampartctl acl token read ACCESSOR
// rampartctl acl token delete ACCESSOR
//
// Tables and key: value lines for people, the node's JSON with --json.
// `create` prints the new token's SecretID: the node shows it this once.
#include "acl_command.h"

#include <cjson/cJSON.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string_view>

#include "http_client.h"

namespace rampartctl {
namespace {

constexpr int kOk = 0;
constexpr int kFailure = 1;
constexpr int kUsage = 2;

using JsonPtr = std::unique_ptr<cJSON, void (*)(cJSON*)>;

int acl_usage() {
    fprintf(stderr,
            "usage: rampartctl [--json] acl token create --role read|write|admin [--description TEXT]\n"
            "                                     [--prefix KEY_PREFIX] [--ttl DURATION]\n"
            "       rampartctl [--json] acl token list\n"
            "       rampartctl [--json] acl token read ACCESSOR\n"
            "       rampartctl acl token delete ACCESSOR\n"
            "needs an admin token (RAMPART_HTTP_TOKEN or --token)\n");
    return kUsage;
}

bool valid_accessor(const std::string& a) {
    if (a.empty() || a.size() > 64 || a == "." || a == "..") return false;
    return std::all_of(a.begin(), a.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
               c == '.';
    });
}

std::string json_string(const std::string& s) {
    JsonPtr v(cJSON_CreateString(s.c_str()), cJSON_Delete);
    char* text = cJSON_PrintUnformatted(v.get());
    std::string out = text ? text : "\"\"";
    cJSON_free(text);
    return out;
}

std::string field(const cJSON* obj, const char* name) {
    const cJSON* f = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (cJSON_IsString(f)) return f->valuestring;
    if (cJSON_IsNumber(f)) return std::to_string(static_cast<unsigned long long>(f->valuedouble));
    return {};
}

// One request: true with the body of a 200; otherwise false, after saying
// why on stderr (the node's error text when it sent one).
bool call(const NodeTarget& t, const char* method, const std::string& path, const std::string& body,
          std::string* answer) {
    HttpResult r = http_request(t.addr, method, path, t.token, body, t.timeout_ms);
    if (!r.ok) {
        fprintf(stderr, "rampartctl: %s: %s\n", t.addr.c_str(), r.error.c_str());
        return false;
    }
    if (r.status != 200) {
        JsonPtr err(cJSON_ParseWithLength(r.body.data(), r.body.size()), cJSON_Delete);
        std::string why = err ? field(err.get(), "error") : "";
        fprintf(stderr, "rampartctl: HTTP %d: %s\n", r.status, why.empty() ? r.body.c_str() : why.c_str());
        return false;
    }
    *answer = std::move(r.body);
    return true;
}

void print_token(const cJSON* t) {
    static const char* const kFields[] = {"AccessorID",  "SecretID",   "Role",          "Prefix",
                                          "Description", "CreateTime", "ExpirationTime"};
    for (const char* name : kFields) {
        if (cJSON_GetObjectItemCaseSensitive(t, name) == nullptr) continue;
        std::string label = std::string(name) + ":";
        std::string value = field(t, name);
        if (value.empty() && std::string_view(name) == "Prefix") value = "-";  // every key
        printf("%-16s%s\n", label.c_str(), value.c_str());
    }
}

int create(const NodeTarget& t, const std::vector<std::string>& args) {
    std::string body = "{";
    auto add = [&body](const char* name, const std::string& value) {
        if (body.size() > 1) body += ',';
        body += '"';
        body += name;
        body += "\":" + json_string(value);
    };
    bool have_role = false;
    for (size_t i = 3; i < args.size(); i += 2) {
        if (i + 1 >= args.size()) return acl_usage();
        const std::string& opt = args[i];
        const std::string& value = args[i + 1];
        if (opt == "--role") {
            add("Role", value);
            have_role = true;
        } else if (opt == "--description") {
            add("Description", value);
        } else if (opt == "--prefix") {
            add("Prefix", value);
        } else if (opt == "--ttl") {
            add("ExpirationTTL", value);
        } else {
            return acl_usage();
        }
    }
    if (!have_role) return acl_usage();
    body += '}';
    std::string answer;
    if (!call(t, "PUT", "/v1/acl/token", body, &answer)) return kFailure;
    if (t.json) {
        fputs(answer.c_str(), stdout);
        return kOk;
    }
    JsonPtr token(cJSON_ParseWithLength(answer.data(), answer.size()), cJSON_Delete);
    if (!token) return fprintf(stderr, "rampartctl: the node's answer is not JSON\n"), kFailure;
    print_token(token.get());
    fprintf(stderr, "keep the SecretID now: the node never shows it again\n");
    return kOk;
}

int list(const NodeTarget& t) {
    std::string answer;
    if (!call(t, "GET", "/v1/acl/tokens", "", &answer)) return kFailure;
    if (t.json) {
        fputs(answer.c_str(), stdout);
        return kOk;
    }
    JsonPtr tokens(cJSON_ParseWithLength(answer.data(), answer.size()), cJSON_Delete);
    if (!cJSON_IsArray(tokens.get())) return fprintf(stderr, "rampartctl: the node's answer is not a list\n"), kFailure;
    static const char* const kColumns[] = {"AccessorID", "Role", "Prefix", "CreateTime", "Description"};
    static const char* const kHeads[] = {"ACCESSOR", "ROLE", "PREFIX", "CREATED", "DESCRIPTION"};
    std::vector<std::vector<std::string>> rows;
    rows.emplace_back(std::begin(kHeads), std::end(kHeads));
    for (const cJSON* tok = tokens->child; tok != nullptr; tok = tok->next) {
        std::vector<std::string> row;
        for (const char* c : kColumns) row.push_back(field(tok, c));
        if (row[2].empty()) row[2] = "-";
        rows.push_back(std::move(row));
    }
    std::vector<size_t> width(std::size(kColumns), 0);
    for (const auto& row : rows)
        for (size_t i = 0; i < row.size(); i++) width[i] = std::max(width[i], row[i].size());
    for (const auto& row : rows) {
        std::string line;
        for (size_t i = 0; i < row.size(); i++) {
            line += row[i];
            if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
        }
        printf("%s\n", line.c_str());
    }
    return kOk;
}

int read_or_delete(const NodeTarget& t, const std::string& verb, const std::string& accessor) {
    if (!valid_accessor(accessor)) {
        fprintf(stderr, "rampartctl: '%s' is not an accessor id\n", accessor.c_str());
        return kUsage;
    }
    std::string path = "/v1/acl/token/" + accessor, answer;
    bool del = verb == "delete";
    if (!call(t, del ? "DELETE" : "GET", path, "", &answer)) return kFailure;
    if (t.json) {
        fputs(answer.c_str(), stdout);
    } else if (del) {
        printf("revoked %s\n", accessor.c_str());
    } else {
        JsonPtr token(cJSON_ParseWithLength(answer.data(), answer.size()), cJSON_Delete);
        if (!token) return fprintf(stderr, "rampartctl: the node's answer is not JSON\n"), kFailure;
        print_token(token.get());
    }
    return kOk;
}

}  // namespace

int acl_command(const std::vector<std::string>& args, const NodeTarget& target) {
    if (args.size() < 3 || args[1] != "token") return acl_usage();
    const std::string& verb = args[2];
    if (verb == "create") return create(target, args);
    if (verb == "list" && args.size() == 3) return list(target);
    if ((verb == "read" || verb == "delete") && args.size() == 4) return read_or_delete(target, verb, args[3]);
    return acl_usage();
}

}  // namespace rampartctl
