#include "store/kv_json.h"

#include <cjson/cJSON.h>

#include <cmath>
#include <memory>

#include "util/base64.h"

namespace rampart::store {
namespace {

void append_entry(std::string& out, std::string_view key, const Entry& e, bool with_value) {
    out += "{\"LockIndex\":0,\"Key\":";
    append_json_string(out, key);
    out += ",\"Flags\":" + std::to_string(e.flags()) + ",\"Value\":";
    // Consul encodes an empty value as null, and txn results other than
    // get carry no value.
    if (with_value && !e.value().empty()) {
        out += '"';
        out += util::base64_encode(e.value());
        out += '"';
    } else {
        out += "null";
    }
    out += ",\"CreateIndex\":" + std::to_string(e.create_index());
    out += ",\"ModifyIndex\":" + std::to_string(e.modify_index()) + "}";
}

struct VerbName {
    const char* name;
    TxnVerb verb;
};
constexpr VerbName kVerbs[] = {
    {"set", TxnVerb::Set},
    {"cas", TxnVerb::Cas},
    {"get", TxnVerb::Get},
    {"get-tree", TxnVerb::GetTree},
    {"check-index", TxnVerb::CheckIndex},
    {"check-not-exists", TxnVerb::CheckNotExists},
    {"delete", TxnVerb::Delete},
    {"delete-tree", TxnVerb::DeleteTree},
    {"delete-cas", TxnVerb::DeleteCas},
};

using JsonPtr = std::unique_ptr<cJSON, decltype(&cJSON_Delete)>;

// JSON numbers arrive as doubles: only exact non-negative integers pass.
bool json_u64(const cJSON* item, uint64_t* out) {
    if (item == nullptr || cJSON_IsNull(item)) return true;
    if (!cJSON_IsNumber(item)) return false;
    double d = item->valuedouble;
    if (d < 0 || d > 9007199254740992.0 || std::floor(d) != d) return false;
    *out = static_cast<uint64_t>(d);
    return true;
}

// Field names match case-insensitively, as Go's JSON decoder (and so
// Consul) does.
std::string parse_kv_op(const cJSON* kv, TxnOp* op, int* status) {
    const cJSON* verb = cJSON_GetObjectItem(kv, "Verb");
    if (!cJSON_IsString(verb)) return "missing Verb";
    bool known = false;
    for (const VerbName& v : kVerbs) {
        if (std::string_view(verb->valuestring) == v.name) {
            op->verb = v.verb;
            known = true;
        }
    }
    if (!known)
        return "unsupported KV verb \"" + std::string(verb->valuestring) + "\" (sessions and locks are not supported)";
    const cJSON* key = cJSON_GetObjectItem(kv, "Key");
    if (key != nullptr && !cJSON_IsString(key)) return "Key must be a string";
    if (key != nullptr) op->key = key->valuestring;
    const cJSON* value = cJSON_GetObjectItem(kv, "Value");
    if (value != nullptr && !cJSON_IsNull(value)) {
        if (!cJSON_IsString(value) || !util::base64_decode(value->valuestring, &op->value)) {
            return "Value must be base64";
        }
        if (op->value.size() > Limits::kValue) {
            *status = 413;
            return "Value larger than " + std::to_string(Limits::kValue) + " bytes";
        }
    }
    if (!json_u64(cJSON_GetObjectItem(kv, "Flags"), &op->flags)) return "Flags must be an unsigned integer";
    if (!json_u64(cJSON_GetObjectItem(kv, "Index"), &op->index)) return "Index must be an unsigned integer";
    const cJSON* session = cJSON_GetObjectItem(kv, "Session");
    if (cJSON_IsString(session) && session->valuestring[0] != '\0') return "sessions are not supported";
    return {};
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out += "\\u00";
                    out += kHex[c >> 4];
                    out += kHex[c & 0xf];
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += '"';
}

std::string render_entries(const std::vector<NamedEntry>& entries) {
    std::string out = "[";
    for (size_t i = 0; i < entries.size(); i++) {
        if (i > 0) out += ',';
        append_entry(out, entries[i].first, *entries[i].second, true);
    }
    out += "]\n";
    return out;
}

std::string render_keys(const std::vector<std::string>& keys) {
    std::string out = "[";
    for (size_t i = 0; i < keys.size(); i++) {
        if (i > 0) out += ',';
        append_json_string(out, keys[i]);
    }
    out += "]\n";
    return out;
}

std::string render_txn(const Result& r) {
    std::string out = "{\"Results\":";
    if (r.outcome == Outcome::Failed) {
        out += "null,\"Errors\":[";
        for (size_t i = 0; i < r.errors.size(); i++) {
            if (i > 0) out += ',';
            out += "{\"OpIndex\":" + std::to_string(r.errors[i].op_index) + ",\"What\":";
            append_json_string(out, r.errors[i].what);
            out += '}';
        }
        out += "]}\n";
        return out;
    }
    out += '[';
    for (size_t i = 0; i < r.results.size(); i++) {
        if (i > 0) out += ',';
        out += "{\"KV\":";
        append_entry(out, r.results[i].key, *r.results[i].entry, r.results[i].with_value);
        out += '}';
    }
    out += "],\"Errors\":null}\n";
    return out;
}

TxnParse parse_txn(std::string_view body) {
    TxnParse p;
    JsonPtr root(cJSON_ParseWithLength(body.data(), body.size()), cJSON_Delete);
    if (!root || !cJSON_IsArray(root.get())) {
        p.status = 400;
        p.error = "the body must be a JSON array of operations";
        return p;
    }
    int count = cJSON_GetArraySize(root.get());
    if (static_cast<size_t>(count) > Limits::kTxnOps) {
        p.status = 413;
        p.error = "Transaction contains too many operations (" + std::to_string(count) + " > " +
                  std::to_string(Limits::kTxnOps) + ")";
        return p;
    }
    int i = 0;
    for (const cJSON* item = root->child; item != nullptr; item = item->next, i++) {
        const cJSON* kv = cJSON_IsObject(item) ? cJSON_GetObjectItem(item, "KV") : nullptr;
        std::string err = cJSON_IsObject(kv) ? std::string() : "only KV operations are supported";
        TxnOp op;
        if (err.empty()) err = parse_kv_op(kv, &op, &p.status);
        if (!err.empty()) {
            if (p.status == 200) p.status = 400;
            p.error = "operation " + std::to_string(i) + ": " + err;
            return p;
        }
        p.txn.ops.push_back(std::move(op));
    }
    return p;
}

}  // namespace rampart::store
