// rampartctl kv get KEY [--raw] [--stale|--consistent]
// rampartctl kv put KEY [VALUE | - | --file FILE] [--cas N] [--flags N]
// rampartctl kv delete KEY [--recurse] [--cas N]
// rampartctl kv list [PREFIX] [--keys [--separator S]] [--stale|--consistent]
//
// Keys are checked here with the node's own rules (store/key.h) and values
// against its 512 KiB limit, so a bad argument is a usage error before any
// request, and a value too large never half-travels.
#include "kv_command.h"

#include <cjson/cJSON.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "cli_options.h"
#include "http_client.h"
#include "node_answer.h"
#include "store/command.h"
#include "store/key.h"
#include "util/base64.h"

namespace rampartctl {
namespace {

constexpr int kOk = 0;
constexpr int kFailure = 1;
constexpr int kUsage = 2;

using JsonPtr = std::unique_ptr<cJSON, void (*)(cJSON*)>;

int kv_usage(const std::string& why = "") {
    if (!why.empty()) fprintf(stderr, "rampartctl: %s\n", why.c_str());
    fprintf(stderr,
            "usage: rampartctl [--json] kv get KEY [--raw] [--stale|--consistent]\n"
            "       rampartctl [--json] kv put KEY [VALUE | - | --file FILE] [--cas INDEX] [--flags N]\n"
            "       rampartctl [--json] kv delete KEY [--recurse] [--cas INDEX]\n"
            "       rampartctl [--json] kv list [PREFIX] [--keys [--separator S]] [--stale|--consistent]\n"
            "put reads the value from stdin when it is '-' or missing; needs a token with the read\n"
            "(get, list) or write (put, delete) role: RAMPART_HTTP_TOKEN or --token\n");
    return kUsage;
}

int fail(const std::string& msg) {
    fprintf(stderr, "rampartctl: %s\n", msg.c_str());
    return kFailure;
}

// "?stale" / "?consistent" / "" from the switches; false when both.
bool consistency_query(const CliOptions& o, std::string* out) {
    if (o.has("--stale") && o.has("--consistent")) return false;
    *out = o.has("--stale") ? "stale" : o.has("--consistent") ? "consistent" : "";
    return true;
}

std::string with_query(std::string path, const std::vector<std::string>& params) {
    char sep = '?';
    for (const std::string& p : params) {
        if (p.empty()) continue;
        path += sep + p;
        sep = '&';
    }
    return path;
}

bool write_all(FILE* f, std::string_view data) { return fwrite(data.data(), 1, data.size(), f) == data.size(); }

// At most `limit` + 1 bytes: enough to tell that a value is too large
// without reading an endless stream into memory.
bool read_bounded(FILE* f, size_t limit, std::string* out) {
    char buf[65536];
    while (out->size() <= limit) {
        size_t n = fread(buf, 1, sizeof buf, f);
        out->append(buf, n);
        if (n < sizeof buf) return !ferror(f);
    }
    return true;
}

// A request to the node; false (after saying why) when no answer came.
bool ask(const NodeTarget& t, const char* method, const std::string& path, const std::string& body, HttpResult* r) {
    *r = http_request(t.addr, method, path, t.token, body, t.timeout_ms);
    if (!r->ok) fprintf(stderr, "rampartctl: %s: %s\n", t.addr.c_str(), r->error.c_str());
    return r->ok;
}

std::string json_text(const std::string& s) {
    JsonPtr v(cJSON_CreateString(s.c_str()), cJSON_Delete);
    char* text = cJSON_PrintUnformatted(v.get());
    std::string out = text ? text : "\"\"";
    cJSON_free(text);
    return out;
}

uint64_t number_field(const cJSON* obj, const char* name) {
    const cJSON* f = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(f) && f->valuedouble >= 0 ? static_cast<uint64_t>(f->valuedouble) : 0;
}

int get(const NodeTarget& t, const std::string& key, const CliOptions& o) {
    std::string consistency;
    if (!consistency_query(o, &consistency)) return kv_usage("--stale and --consistent exclude each other");
    bool json = t.json;
    if (json && o.has("--raw")) return kv_usage("--raw and --json exclude each other");
    HttpResult r;
    if (!ask(t, "GET", with_query("/v1/kv/" + key_path(key), {json ? "" : "raw", consistency}), "", &r))
        return kFailure;
    if (r.status == 404) return fail("no such key: " + key);
    if (r.status != 200) return fail(node_error(r));
    if (!write_all(stdout, r.body)) return fail(std::string("stdout: ") + strerror(errno));
    // People get a line; --raw gives the bytes exactly (binary values, files).
    if (!o.has("--raw") && !json) putchar('\n');
    return kOk;
}

int put(const NodeTarget& t, const std::string& key, const CliOptions& o) {
    std::string value, error;
    const std::string* file = o.value("--file");
    if (file != nullptr && !o.positional.empty()) return kv_usage("give the value or --file, not both");
    if (o.positional.size() > 1) return kv_usage("put takes one value (quote it)");
    std::vector<std::string> params;
    for (const char* name : {"--cas", "--flags"}) {
        uint64_t n = 0;
        const std::string* text = o.value(name);
        if (text == nullptr) continue;
        if (!parse_u64(*text, &n)) return kv_usage(std::string(name) + " must be a whole number, not '" + *text + "'");
        params.push_back(std::string(name + 2) + "=" + std::to_string(n));
    }
    bool from_stdin = file == nullptr && (o.positional.empty() || o.positional[0] == "-");
    if (from_stdin && o.positional.empty() && isatty(STDIN_FILENO))
        return kv_usage("no value: give VALUE, --file FILE, or '-' and the value on stdin");
    const size_t limit = rampart::store::Limits::kValue;
    if (file != nullptr) {
        std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(file->c_str(), "rb"), fclose);
        if (!f || !read_bounded(f.get(), limit, &value)) return fail(*file + ": " + strerror(errno));
    } else if (from_stdin) {
        if (!read_bounded(stdin, limit, &value)) return fail(std::string("stdin: ") + strerror(errno));
    } else {
        value = o.positional[0];
    }
    if (value.size() > limit)
        return fail("the value is over the node's limit of " + std::to_string(limit) + " bytes; nothing was written");
    HttpResult r;
    if (!ask(t, "PUT", with_query("/v1/kv/" + key_path(key), params), value, &r)) return kFailure;
    if (r.status != 200) return fail(node_error(r));
    bool written = r.body.compare(0, 4, "true") == 0;
    std::string index = header_value(r, "X-Rampart-Index");
    if (t.json) {
        printf("{\"key\":%s,\"written\":%s,\"index\":%s}\n", json_text(key).c_str(), written ? "true" : "false",
               index.empty() ? "0" : index.c_str());
    } else if (written) {
        printf("wrote %s (%zu bytes) at index %s\n", key.c_str(), value.size(), index.c_str());
    }
    if (!written) {
        const std::string* cas = o.value("--cas");
        return fail("not written: " + key +
                    (cas && *cas == "0" ? " already exists (--cas 0 only creates)"
                                        : "'s ModifyIndex is not " + (cas ? *cas : std::string("the one given"))));
    }
    return kOk;
}

int del(const NodeTarget& t, const std::string& key, const CliOptions& o) {
    std::vector<std::string> params;
    bool recurse = o.has("--recurse");
    if (recurse) params.push_back("recurse");
    if (const std::string* cas = o.value("--cas")) {
        uint64_t n = 0;
        if (recurse) return kv_usage("--cas applies to one key, not with --recurse");
        if (!parse_u64(*cas, &n)) return kv_usage("--cas must be a whole number, not '" + *cas + "'");
        params.push_back("cas=" + std::to_string(n));
    }
    if (!o.positional.empty()) return kv_usage("delete takes one KEY");
    HttpResult r;
    if (!ask(t, "DELETE", with_query("/v1/kv/" + key_path(key), params), "", &r)) return kFailure;
    if (r.status != 200) return fail(node_error(r));
    bool deleted = r.body.compare(0, 4, "true") == 0;
    std::string index = header_value(r, "X-Rampart-Index");
    if (t.json) {
        printf("{\"key\":%s,\"deleted\":%s,\"index\":%s}\n", json_text(key).c_str(), deleted ? "true" : "false",
               index.empty() ? "0" : index.c_str());
    } else if (deleted) {
        printf("deleted %s%s at index %s\n", recurse ? "every key under " : "",
               recurse && key.empty() ? "\"\"" : key.c_str(), index.c_str());
    }
    if (!deleted) {
        const std::string* cas = o.value("--cas");
        return fail("not deleted: " + key + "'s ModifyIndex is not " + (cas ? *cas : std::string("the one given")));
    }
    return kOk;
}

int list(const NodeTarget& t, const CliOptions& o) {
    std::string consistency;
    if (!consistency_query(o, &consistency)) return kv_usage("--stale and --consistent exclude each other");
    if (o.positional.size() > 1) return kv_usage("list takes one PREFIX");
    std::string prefix = o.positional.empty() ? "" : o.positional[0];
    if (std::string why = rampart::store::check_key(prefix, true); !why.empty())
        return kv_usage("bad prefix '" + prefix + "': " + why);
    bool keys = o.has("--keys");
    const std::string* sep = o.value("--separator");
    if (sep != nullptr && !keys) return kv_usage("--separator goes with --keys");
    std::vector<std::string> params = {keys ? "keys" : "recurse", consistency};
    if (sep != nullptr) params.push_back("separator=" + key_path(*sep));
    HttpResult r;
    if (!ask(t, "GET", with_query("/v1/kv/" + key_path(prefix), params), "", &r)) return kFailure;
    if (r.status == 404)
        r.body = "[]";  // nothing under the prefix: an empty listing, not a failure
    else if (r.status != 200)
        return fail(node_error(r));
    if (t.json) {
        std::string body = r.body;
        if (body.empty() || body.back() != '\n') body += '\n';
        return write_all(stdout, body) ? kOk : kFailure;
    }
    JsonPtr root(cJSON_ParseWithLength(r.body.data(), r.body.size()), cJSON_Delete);
    if (!cJSON_IsArray(root.get())) return fail("the node's answer is not a JSON list");
    if (keys) {
        for (const cJSON* k = root->child; k != nullptr; k = k->next)
            if (cJSON_IsString(k)) printf("%s\n", k->valuestring);
        return kOk;
    }
    if (root->child == nullptr) return kOk;
    std::vector<std::vector<std::string>> rows = {{"KEY", "FLAGS", "CREATE_INDEX", "MODIFY_INDEX", "BYTES"}};
    for (const cJSON* e = root->child; e != nullptr; e = e->next) {
        const cJSON* k = cJSON_GetObjectItemCaseSensitive(e, "Key");
        const cJSON* v = cJSON_GetObjectItemCaseSensitive(e, "Value");
        std::string value;
        if (cJSON_IsString(v) && !rampart::util::base64_decode(v->valuestring, &value))
            return fail("the node sent a value that is not base64");
        rows.push_back({cJSON_IsString(k) ? k->valuestring : "", std::to_string(number_field(e, "Flags")),
                        std::to_string(number_field(e, "CreateIndex")), std::to_string(number_field(e, "ModifyIndex")),
                        std::to_string(value.size())});
    }
    print_table(rows);
    return kOk;
}

}  // namespace

int kv_command(const std::vector<std::string>& args, NodeTarget target) {
    if (args.size() < 2) return kv_usage();
    const std::string& verb = args[1];
    CliOptions o;
    bool parsed = false;
    if (verb == "get") {
        parsed = parse_cli_options(args, 2, {}, {"--raw", "--stale", "--consistent", "--json"}, &o);
    } else if (verb == "put") {
        parsed = parse_cli_options(args, 2, {"--cas", "--flags", "--file"}, {"--json"}, &o);
    } else if (verb == "delete") {
        parsed = parse_cli_options(args, 2, {"--cas"}, {"--recurse", "--json"}, &o);
    } else if (verb == "list") {
        parsed = parse_cli_options(args, 2, {"--separator"}, {"--keys", "--stale", "--consistent", "--json"}, &o);
    } else {
        return kv_usage("unknown kv command '" + verb + "'");
    }
    if (!parsed) return kv_usage(o.error);
    target.json = target.json || o.has("--json");
    if (verb == "list") return list(target, o);
    if (o.positional.empty()) return kv_usage(verb + " needs a KEY");
    std::string key = o.positional[0];
    o.positional.erase(o.positional.begin());
    // delete --recurse takes a prefix, which may be empty (every key).
    bool prefix = verb == "delete" && o.has("--recurse");
    if (std::string why = rampart::store::check_key(key, prefix); !why.empty())
        return kv_usage("bad key '" + key + "': " + why);
    if (verb == "get") return o.positional.empty() ? get(target, key, o) : kv_usage("get takes one KEY");
    if (verb == "put") return put(target, key, o);
    return del(target, key, o);
}

}  // namespace rampartctl
