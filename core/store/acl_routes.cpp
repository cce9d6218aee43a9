#include "store/acl_routes.h"

#include <cjson/cJSON.h>
#include <strings.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <memory>
#include <vector>

#include "http/exchange.h"
#include "http/parser.h"
#include "http/router.h"
#include "store/key.h"
#include "store/kv_json.h"
#include "store/query.h"
#include "store/route_support.h"
#include "store/store.h"
#include "store/tokens.h"
#include "util/sha256.h"

namespace rampart::store {
namespace {

using http::Exchange;
using http::Response;
using ExPtr = std::shared_ptr<Exchange>;

constexpr std::string_view kTokenPath = "/v1/acl/token/";
constexpr uint64_t kMaxTtlMs = uint64_t{10} * 366 * 24 * 3600 * 1000;  // ten years

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

uint64_t now_ms() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

auth::Role auth_role(TokenRole role) {
    switch (role) {
        case TokenRole::Admin: return auth::Role::Admin;
        case TokenRole::Write: return auth::Role::Write;
        default: return auth::Role::Read;
    }
}

Response bad_request(std::string_view why) { return Response::error(400, "bad_request", why); }
Response no_token() { return Response::error(404, "not_found", "no such token"); }

// ---- the create body ------------------------------------------------------

struct TokenRequest {
    std::string description;
    TokenRole role = TokenRole::Read;
    std::string prefix;
    uint64_t ttl_ms = 0;
};

// Field names match case-insensitively, as Go's decoder does for Consul.
// An unknown field is an error: a misspelt "Prefix" must not silently
// create a token that reaches every key.
bool parse_token_request(std::string_view body, TokenRequest* out, std::string* error) {
    std::unique_ptr<cJSON, void (*)(cJSON*)> root(cJSON_ParseWithLength(body.data(), body.size()), cJSON_Delete);
    if (!root || !cJSON_IsObject(root.get())) {
        *error = "the body must be a JSON object: {\"Description\", \"Role\", \"Prefix\", \"ExpirationTTL\"}";
        return false;
    }
    bool have_role = false;
    std::vector<std::string> seen;
    for (const cJSON* f = root->child; f != nullptr; f = f->next) {
        std::string name = f->string ? f->string : "";
        for (const std::string& s : seen) {
            if (strcasecmp(s.c_str(), name.c_str()) == 0) {
                *error = "field \"" + name + "\" appears twice";
                return false;
            }
        }
        seen.push_back(name);
        auto is = [&name](const char* field) { return strcasecmp(name.c_str(), field) == 0; };
        if (!is("Description") && !is("Role") && !is("Prefix") && !is("ExpirationTTL")) {
            *error = "unknown field \"" + name + "\" (allowed: Description, Role, Prefix, ExpirationTTL)";
            return false;
        }
        if (!cJSON_IsString(f)) {
            *error = "field \"" + name + "\" must be a string";
            return false;
        }
        std::string_view value = f->valuestring;
        if (is("Description")) {
            out->description.assign(value);
        } else if (is("Prefix")) {
            out->prefix.assign(value);
        } else if (is("Role")) {
            if (!parse_token_role(value, &out->role)) {
                *error = "Role must be read, write or admin";
                return false;
            }
            have_role = true;
        } else if (!parse_duration_ms(value, &out->ttl_ms) || out->ttl_ms == 0 || out->ttl_ms > kMaxTtlMs) {
            *error = "ExpirationTTL must be a duration such as 90m or 24h, at most ten years";
            return false;
        }
    }
    if (!have_role) {
        *error = "Role is required: read, write or admin";
        return false;
    }
    return true;
}

// ---- answers --------------------------------------------------------------

std::string rfc3339(uint64_t ms) {
    time_t seconds = static_cast<time_t>(ms / 1000);
    struct tm tm {};
    gmtime_r(&seconds, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

void append_field(std::string& out, const char* name, std::string_view value) {
    out += ",\"";
    out += name;
    out += "\":";
    append_json_string(out, value);
}

// Consul's token fields where they mean the same; never the secret's hash.
void append_token(std::string& out, const Token& t, std::string_view secret) {
    out += "{\"AccessorID\":";
    append_json_string(out, t.accessor);
    if (!secret.empty()) append_field(out, "SecretID", secret);
    append_field(out, "Description", t.description);
    append_field(out, "Role", token_role_name(t.role));
    append_field(out, "Prefix", t.prefix);
    out += ",\"CreateIndex\":" + std::to_string(t.create_index);
    append_field(out, "CreateTime", rfc3339(t.create_ms));
    if (t.expires_ms != 0) append_field(out, "ExpirationTime", rfc3339(t.expires_ms));
    out += '}';
}

// Token reads report the last applied index (tokens are not KV data).
void add_index(Response& r, const Store& store) { add_read_index(r, store.state().applied()); }

// ?stale, ?consistent and ?consistency= as on the KV reads.
bool parse_level(const Exchange& ex, Consistency* level, std::string* error) {
    Query q;
    return q.parse(ex.request().query, error) && parse_read_consistency(q, level, error);
}

// ---- handlers -------------------------------------------------------------

void handle_create(Store& store, const ExPtr& ex) {
    TokenRequest req;
    std::string error;
    if (!parse_token_request(ex->request().body, &req, &error)) return ex->respond(bad_request(error));
    uint64_t now = now_ms();
    auto token = std::make_shared<Token>();
    token->accessor = new_accessor();
    token->role = req.role;
    token->prefix = std::move(req.prefix);
    token->description = std::move(req.description);
    token->create_ms = now;
    token->expires_ms = req.ttl_ms == 0 ? 0 : now + req.ttl_ms;
    // The secret lives in this request only: the entry carries its hash.
    std::string secret = auth::generate_token();
    TokenCreate c;
    c.accessor = token->accessor;
    c.secret_hash = util::sha256_hex(secret);
    c.role = token->role;
    c.prefix = token->prefix;
    c.description = token->description;
    c.expires_ms = token->expires_ms;
    if (error = check_token(c); !error.empty()) return ex->respond(bad_request(error));
    Command cmd{{}, std::move(c)};
    cmd.meta.leader_ms = now;
    store.write(cmd, [ex, token, secret = std::move(secret)](int status, uint64_t index, std::unique_ptr<Result> r) {
        if (status != 0) return ex->respond(read_failure(status));
        if (r->outcome == Outcome::Invalid) return ex->respond(bad_request(r->error));
        if (r->outcome != Outcome::Ok) return ex->respond(Response::error(409, "conflict", r->error));
        token->create_index = index;
        std::string body;
        append_token(body, *token, secret);
        body += '\n';
        Response resp = Response::json(200, std::move(body));
        resp.headers.emplace_back("Cache-Control", "no-store");
        resp.headers.emplace_back("X-Rampart-Index", std::to_string(index));
        ex->respond(std::move(resp));
    });
}

void handle_list(Store& store, const ExPtr& ex) {
    Consistency level;
    std::string error;
    if (!parse_level(*ex, &level, &error)) return ex->respond(bad_request(error));
    store.read(level, [&store, ex](int status) {
        if (status != 0) return ex->respond(read_failure(status));
        std::vector<const Token*> tokens;
        for (const auto& [accessor, t] : store.state().tokens().by_accessor()) tokens.push_back(t.get());
        std::sort(tokens.begin(), tokens.end(), [](const Token* a, const Token* b) {
            return a->create_index != b->create_index ? a->create_index < b->create_index : a->accessor < b->accessor;
        });
        std::string body = "[";
        for (const Token* t : tokens) {
            if (body.size() > 1) body += ',';
            append_token(body, *t, {});
        }
        body += "]\n";
        Response r = Response::json(200, std::move(body));
        add_index(r, store);
        ex->respond(std::move(r));
    });
}

bool accessor_from_path(const Exchange& ex, std::string* accessor, Response* refusal) {
    *accessor = std::string(std::string_view(ex.request().path).substr(kTokenPath.size()));
    if (valid_accessor(*accessor)) return true;
    *refusal = bad_request("an accessor id is 1 to 64 of A-Z a-z 0-9 - _ .");
    return false;
}

void handle_read(Store& store, const ExPtr& ex) {
    std::string accessor, error;
    Response refusal;
    if (!accessor_from_path(*ex, &accessor, &refusal)) return ex->respond(std::move(refusal));
    Consistency level;
    if (!parse_level(*ex, &level, &error)) return ex->respond(bad_request(error));
    store.read(level, [&store, ex, accessor](int status) {
        if (status != 0) return ex->respond(read_failure(status));
        const Token* t = store.state().tokens().find_accessor(accessor);
        if (t == nullptr) return ex->respond(no_token());
        std::string body;
        append_token(body, *t, {});
        body += '\n';
        Response r = Response::json(200, std::move(body));
        add_index(r, store);
        ex->respond(std::move(r));
    });
}

void handle_delete(Store& store, const ExPtr& ex) {
    std::string accessor;
    Response refusal;
    if (!accessor_from_path(*ex, &accessor, &refusal)) return ex->respond(std::move(refusal));
    Command cmd{{}, TokenRevoke{std::move(accessor)}};
    cmd.meta.leader_ms = now_ms();
    store.write(cmd, [ex](int status, uint64_t index, std::unique_ptr<Result> r) {
        if (status != 0) return ex->respond(read_failure(status));
        if (r->outcome == Outcome::Invalid) return ex->respond(bad_request(r->error));
        if (r->outcome != Outcome::Ok) return ex->respond(no_token());
        Response resp = Response::json(200, "true\n");
        resp.headers.emplace_back("X-Rampart-Index", std::to_string(index));
        ex->respond(std::move(resp));
    });
}

}  // namespace

bool request_in_scope(const http::Request& request, std::string_view prefix) {
    static constexpr std::string_view kKv = "/v1/kv/";
    std::string_view path = request.path;
    if (starts_with(path, kKv)) {
        std::string key;
        if (!percent_decode(path.substr(kKv.size()), false, &key)) return true;
        return starts_with(key, prefix);
    }
    if (path == "/v1/txn") {
        TxnParse parsed = parse_txn(request.body);
        if (!parsed.ok()) return true;
        return std::all_of(parsed.txn.ops.begin(), parsed.txn.ops.end(),
                           [&](const TxnOp& op) { return starts_with(op.key, prefix); });
    }
    if (starts_with(path, "/v1/acl/") || path == "/v1/snapshot" || starts_with(path, "/v1/snapshot/")) return false;
    return true;
}

bool ReplicatedTokens::find(std::string_view hash, auth::StoredToken* out) const {
    const Token* t = sm_.tokens().find_hash(hash);
    if (t == nullptr) return false;
    // Expiry by this node's clock: a token is refused everywhere once
    // every clock has passed it.
    if (t->expires_ms != 0 && now_ms() >= t->expires_ms) return false;
    out->name = t->accessor;
    out->role = auth_role(t->role);
    out->prefix = t->prefix;
    return true;
}

bool ReplicatedTokens::in_scope(const http::Request& request, std::string_view prefix) const {
    return request_in_scope(request, prefix);
}

void install_acl(http::Router& router, Store& store, auth::Authenticator& auth) {
    auto route = [&store](void (*handler)(Store&, const ExPtr&)) {
        return [&store, handler](Exchange& ex) { handler(store, ex.shared_from_this()); };
    };
    router.add("PUT", "/v1/acl/token", route(handle_create));
    router.add("GET", "/v1/acl/tokens", route(handle_list));
    router.add("GET", "/v1/acl/token/*", route(handle_read));
    router.add("DELETE", "/v1/acl/token/*", route(handle_delete));
    auth.set_source(std::make_unique<ReplicatedTokens>(store.state()));
}

}  // namespace rampart::store
