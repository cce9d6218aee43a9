#include "txn_command.h"

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
#include "util/base64.h"

namespace rampartctl {
namespace {

constexpr int kOk = 0;
constexpr int kFailure = 1;
constexpr int kUsage = 2;
// Far above any body the node takes (768 KiB under /v1/txn): the node says
// how much is too much, this only stops an endless stream.
constexpr size_t kMaxInput = size_t{16} << 20;
constexpr size_t kShownValue = 40;

using JsonPtr = std::unique_ptr<cJSON, void (*)(cJSON*)>;

int txn_usage(const std::string& why = "") {
    if (!why.empty()) fprintf(stderr, "rampartctl: %s\n", why.c_str());
    fprintf(stderr,
            "usage: rampartctl [--json] txn [FILE | -] [--stale|--consistent]\n"
            "FILE (or stdin) holds Consul's /v1/txn body: "
            "[{\"KV\":{\"Verb\":\"set\",\"Key\":\"k\",\"Value\":\"<base64>\"}}, …]\n");
    return kUsage;
}

int fail(const std::string& msg) {
    fprintf(stderr, "rampartctl: %s\n", msg.c_str());
    return kFailure;
}

bool read_input(const std::string& name, std::string* out, std::string* error) {
    std::unique_ptr<FILE, int (*)(FILE*)> owned(name == "-" ? nullptr : fopen(name.c_str(), "rb"), fclose);
    FILE* f = name == "-" ? stdin : owned.get();
    if (f == nullptr) {
        *error = name + ": " + strerror(errno);
        return false;
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0 && out->size() <= kMaxInput) out->append(buf, n);
    if (ferror(f)) *error = (name == "-" ? "stdin" : name) + ": " + strerror(errno);
    if (out->size() > kMaxInput) *error = (name == "-" ? "stdin" : name) + ": larger than 16 MiB";
    return error->empty();
}

std::string text_field(const cJSON* obj, const char* name) {
    const cJSON* f = cJSON_GetObjectItem(obj, name);  // case-insensitive, as the node reads it
    return cJSON_IsString(f) ? f->valuestring : "";
}

std::string number_text(const cJSON* obj, const char* name) {
    const cJSON* f = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(f) && f->valuedouble >= 0 ? std::to_string(static_cast<uint64_t>(f->valuedouble)) : "0";
}

// A value for a table cell: text as it is when short and printable,
// otherwise its size.
std::string shown_value(const cJSON* entry) {
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(entry, "Value");
    std::string value;
    if (!cJSON_IsString(v)) return "-";
    if (!rampart::util::base64_decode(v->valuestring, &value)) return "?";
    bool printable = std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c != 0x7f; });
    if (printable && value.size() <= kShownValue) return value;
    return "<" + std::to_string(value.size()) + " bytes>";
}

void print_results(const cJSON* results, const std::string& index) {
    std::vector<std::vector<std::string>> rows = {{"KEY", "FLAGS", "CREATE_INDEX", "MODIFY_INDEX", "VALUE"}};
    size_t count = 0;
    for (const cJSON* r = cJSON_IsArray(results) ? results->child : nullptr; r != nullptr; r = r->next, count++) {
        const cJSON* kv = cJSON_GetObjectItemCaseSensitive(r, "KV");
        rows.push_back({text_field(kv, "Key"), number_text(kv, "Flags"), number_text(kv, "CreateIndex"),
                        number_text(kv, "ModifyIndex"), shown_value(kv)});
    }
    if (count > 0) print_table(rows);
    printf("transaction done at index %s: %zu result%s\n", index.c_str(), count, count == 1 ? "" : "s");
}

// The node's errors, each with the operation it names from the input.
void print_errors(const cJSON* errors, const cJSON* ops) {
    fprintf(stderr, "rampartctl: transaction rolled back, nothing changed:\n");
    for (const cJSON* e = cJSON_IsArray(errors) ? errors->child : nullptr; e != nullptr; e = e->next) {
        const cJSON* at = cJSON_GetObjectItemCaseSensitive(e, "OpIndex");
        int i = cJSON_IsNumber(at) ? at->valueint : -1;
        const cJSON* op = i >= 0 ? cJSON_GetArrayItem(ops, i) : nullptr;
        const cJSON* kv = op ? cJSON_GetObjectItem(op, "KV") : nullptr;
        std::string what = text_field(e, "What");
        if (kv != nullptr) {
            fprintf(stderr, "  operation %d (%s %s): %s\n", i, text_field(kv, "Verb").c_str(),
                    text_field(kv, "Key").c_str(), what.c_str());
        } else {
            fprintf(stderr, "  operation %d: %s\n", i, what.c_str());
        }
    }
}

}  // namespace

int txn_command(const std::vector<std::string>& args, NodeTarget target) {
    CliOptions o;
    if (!parse_cli_options(args, 1, {}, {"--stale", "--consistent", "--json"}, &o)) return txn_usage(o.error);
    if (o.positional.size() > 1) return txn_usage("txn takes one FILE");
    if (o.has("--stale") && o.has("--consistent")) return txn_usage("--stale and --consistent exclude each other");
    std::string input = o.positional.empty() ? "-" : o.positional[0];
    if (input == "-" && o.positional.empty() && isatty(STDIN_FILENO))
        return txn_usage("no transaction: give FILE, or '-' and the body on stdin");
    target.json = target.json || o.has("--json");
    std::string body, error;
    if (!read_input(input, &body, &error)) return fail(error);
    // Checked here only as far as it must be to name operations in errors;
    // the node judges verbs, keys and values.
    JsonPtr ops(cJSON_ParseWithLength(body.data(), body.size()), cJSON_Delete);
    if (!cJSON_IsArray(ops.get()))
        return fail((input == "-" ? std::string("stdin") : input) + " is not a JSON array of operations");
    std::string path = "/v1/txn";
    if (o.has("--stale")) path += "?stale";
    if (o.has("--consistent")) path += "?consistent";
    HttpResult r = http_request(target.addr, "PUT", path, target.token, body, target.timeout_ms);
    if (!r.ok) return fail(target.addr + ": " + r.error);
    if (r.status != 200 && r.status != 409) return fail(node_error(r));
    if (target.json) {
        fputs(r.body.c_str(), stdout);
        if (r.status == 409) fprintf(stderr, "rampartctl: transaction rolled back, nothing changed\n");
        return r.status == 200 ? kOk : kFailure;
    }
    JsonPtr answer(cJSON_ParseWithLength(r.body.data(), r.body.size()), cJSON_Delete);
    if (!answer) return fail("the node's answer is not JSON");
    if (r.status == 409) {
        print_errors(cJSON_GetObjectItemCaseSensitive(answer.get(), "Errors"), ops.get());
        return kFailure;
    }
    print_results(cJSON_GetObjectItemCaseSensitive(answer.get(), "Results"), header_value(r, "X-Rampart-Index"));
    return kOk;
}

}  // namespace rampartctl
