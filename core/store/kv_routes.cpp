#include "store/kv_routes.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>

#include "cluster/raft_adapter.h"
#include "http/exchange.h"
#include "http/router.h"
#include "store/key.h"
#include "store/kv_json.h"
#include "store/query.h"
#include "store/route_support.h"
#include "store/store.h"
#include "util/sha256.h"

namespace rampart::store {
namespace {

using http::Exchange;
using http::Response;
using ExPtr = std::shared_ptr<Exchange>;

constexpr std::string_view kKvPrefix = "/v1/kv/";
constexpr uint64_t kMaxWaitMs = uint64_t{5} * 60 * 1000;  // brief: blocking reads capped at 5 min
constexpr size_t kMaxIdempotencyHeader = 128;

// ---- answers ----------------------------------------------------------------

void add_index(Response& r, uint64_t index) {
    std::string i = std::to_string(index);
    r.headers.emplace_back("X-Rampart-Index", i);
    r.headers.emplace_back("X-Consul-Index", i);
    // Consul's Go client refuses answers without LastContact.
    r.headers.emplace_back("X-Consul-KnownLeader", "true");
    r.headers.emplace_back("X-Consul-LastContact", "0");
}

Response bad_request(std::string_view why) { return Response::error(400, "bad_request", why); }

// A failure from the engine, before or instead of a result.
Response engine_error(int status) {
    Response r;
    switch (status) {
        case RAMPART_RAFT_NOT_LEADER:
            r = Response::error(503, "no_leader", "this node is not the leader; retry shortly");
            break;
        case RAMPART_RAFT_LEADERSHIP_LOST:
            r = Response::error(503, "outcome_unknown",
                                "leadership changed before the write was committed: its outcome is unknown; "
                                "retry with the same Idempotency-Key");
            break;
        case RAMPART_RAFT_SHUTDOWN: r = Response::error(503, "shutting_down", "the node is shutting down"); break;
        case RAMPART_RAFT_NO_SPACE:
            // The disk watchdog's refusal (or the engine's): space comes back
            // when an operator frees it, so ask for a slower retry.
            r = Response::error(507, "storage_full",
                                "the node's disk is full or below its free-space floor (node.min_free_bytes): "
                                "writes are refused until space returns; reads keep working");
            r.headers.emplace_back("Retry-After", "10");
            return r;
        case RAMPART_RAFT_TOO_BIG: return Response::error(413, "body_too_large", "the write is too large");
        case RAMPART_RAFT_IO: r = Response::error(503, "io_error", "the node could not persist the write"); break;
        case kStatusVersionUnsupported:
            r = Response::error(503, "command_version_unsupported",
                                "a voter does not decode the command version this write needs yet (a rolling "
                                "upgrade is under way): retry once every voter runs the new version");
            break;
        default: return Response::error(500, "internal_error", rampart_raft_status_name(status));
    }
    r.headers.emplace_back("Retry-After", "1");
    return r;
}

// A result of apply that is not a plain success or CAS failure.
bool refused(const Result& r, Response* out) {
    switch (r.outcome) {
        case Outcome::StoreFull: *out = Response::error(507, "store_full", r.error); return true;
        case Outcome::Invalid: *out = bad_request(r.error); return true;
        case Outcome::KeyReused: *out = Response::error(422, "idempotency_key_reused", r.error); return true;
        default: return false;
    }
}

// ---- request parsing --------------------------------------------------------

struct KvRequest {
    std::string key;
    Query query;
};

bool parse_kv_request(const Exchange& ex, KvRequest* out, std::string* error) {
    std::string_view path = ex.request().path;
    if (!percent_decode(path.substr(kKvPrefix.size()), false, &out->key)) {
        *error = "malformed percent-encoding in the key";
        return false;
    }
    return out->query.parse(ex.request().query, error);
}

bool parse_consistency(const Query& q, Consistency* out, std::string* error) {
    *out = Consistency::Default;
    if (q.has("stale") && q.has("consistent")) {
        *error = "cannot combine ?stale with ?consistent";
        return false;
    }
    if (q.has("stale")) *out = Consistency::Stale;
    if (q.has("consistent")) *out = Consistency::Strong;
    if (const std::string* c = q.get("consistency")) {
        if (*c == "stale") {
            *out = Consistency::Stale;
        } else if (*c == "strong") {
            *out = Consistency::Strong;
        } else if (*c != "default") {
            *error = "?consistency= must be stale, default or strong";
            return false;
        }
    }
    return true;
}

// Jitter (±1/16) spreads the wake-ups of many watchers that began together.
uint64_t jittered(uint64_t ms) {
    static std::mt19937_64 rng{std::random_device{}()};
    uint64_t spread = ms / 16;
    if (spread == 0) return ms;
    return ms - spread + rng() % (2 * spread + 1);
}

// Who the idempotency key belongs to, as the idempotency plugin scopes it:
// two clients may use the same key without seeing each other's answers.
std::string idempotency_scope(const Exchange& ex) {
    const auth::Identity& id = ex.identity();
    switch (id.kind) {
        case auth::IdentityKind::Token: return "token:" + id.name;
        case auth::IdentityKind::Certificate: return "cert:" + id.name;
        case auth::IdentityKind::Peer: return "peer:" + id.name;
        default: return "ip:" + ex.source_ip();
    }
}

// Method, path, query and body, length-prefixed under a versioned tag.
std::string fingerprint(const http::Request& req) {
    static constexpr char kTag[] = "rampart-store-fingerprint-v1";
    util::Sha256 s;
    s.update(kTag, sizeof kTag);
    for (std::string_view field : {std::string_view(req.method), std::string_view(req.path),
                                   std::string_view(req.query), std::string_view(req.body)}) {
        uint64_t n = field.size();
        s.update(&n, sizeof n);
        s.update(field);
    }
    auto digest = s.finish();
    return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

bool write_meta(const Exchange& ex, Meta* meta, std::string* error) {
    meta->leader_ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    const std::string* key = ex.request().header("idempotency-key");
    if (key == nullptr) return true;
    if (key->empty() || key->size() > kMaxIdempotencyHeader) {
        *error = "Idempotency-Key must be 1 to " + std::to_string(kMaxIdempotencyHeader) + " characters";
        return false;
    }
    std::string scope = idempotency_scope(ex);
    if (scope.size() + 1 + key->size() > Limits::kIdempotencyKey) scope = "sha256:" + util::sha256_hex(scope);
    meta->idempotency_key = scope + "\n" + *key;
    meta->fingerprint = fingerprint(ex.request());
    return true;
}

// ---- writes -------------------------------------------------------------------

using Answer = std::function<Response(const Result&)>;

void propose(Store& store, const ExPtr& ex, Command cmd, Answer answer) {
    std::string error = check_limits(cmd);
    if (error.empty() && !write_meta(*ex, &cmd.meta, &error)) {
        ex->respond(bad_request(error));
        return;
    }
    if (!error.empty()) {
        ex->respond(Response::error(413, "body_too_large", error));
        return;
    }
    store.write(cmd, [ex, answer = std::move(answer)](int status, uint64_t index, std::unique_ptr<Result> result) {
        if (status != 0) {
            ex->respond(engine_error(status));
            return;
        }
        Response r;
        if (!refused(*result, &r)) r = answer(*result);
        r.headers.emplace_back("X-Rampart-Index", std::to_string(index));
        if (result->replayed) r.headers.emplace_back("Idempotent-Replayed", "true");
        ex->respond(std::move(r));
    });
}

Response true_or_false(const Result& r) { return Response::json(200, r.outcome == Outcome::Ok ? "true\n" : "false\n"); }

void handle_put(Store& store, const ExPtr& ex) {
    KvRequest req;
    std::string error;
    if (!parse_kv_request(*ex, &req, &error)) return ex->respond(bad_request(error));
    if (error = check_key(req.key, false); !error.empty()) return ex->respond(bad_request(error));
    if (req.query.has("acquire") || req.query.has("release")) {
        return ex->respond(bad_request("sessions (?acquire, ?release) are not supported"));
    }
    KvSet set;
    set.key = req.key;
    set.value = ex->request().body;
    std::optional<uint64_t> flags = req.query.number("flags", &error);
    set.cas = req.query.number("cas", &error);
    if (!error.empty()) return ex->respond(bad_request(error));
    set.flags = flags.value_or(0);
    propose(store, ex, Command{{}, std::move(set)}, true_or_false);
}

void handle_delete(Store& store, const ExPtr& ex) {
    KvRequest req;
    std::string error;
    if (!parse_kv_request(*ex, &req, &error)) return ex->respond(bad_request(error));
    KvDelete del;
    del.recurse = req.query.has("recurse");
    if (error = check_key(req.key, del.recurse); !error.empty()) return ex->respond(bad_request(error));
    del.key = req.key;
    del.cas = req.query.number("cas", &error);
    if (!error.empty()) return ex->respond(bad_request(error));
    propose(store, ex, Command{{}, std::move(del)}, true_or_false);
}

// ---- reads --------------------------------------------------------------------

struct ReadPlan {
    std::string key;
    bool recurse = false;
    bool keys = false;
    bool raw = false;
    std::string separator;
    Consistency level = Consistency::Default;
};

// Consul's ?keys&separator=/: names under the prefix, each cut after the
// first separator past the prefix (so "a/b/c" lists as "a/b/" for "a/").
std::vector<std::string> list_keys(const KvMap& kv, const ReadPlan& p) {
    std::vector<std::string> out;
    for_each_prefix(kv, p.key, [&](const std::string& k, const EntryPtr&) {
        std::string name = k;
        if (!p.separator.empty()) {
            size_t at = k.find(p.separator, p.key.size());
            if (at != std::string::npos) name = k.substr(0, at + p.separator.size());
        }
        if (out.empty() || out.back() != name) out.push_back(std::move(name));
    });
    return out;
}

Response not_found() { return Response::error(404, "not_found", "no such key"); }

Response answer_read(const Store& store, const ReadPlan& p) {
    Version v = store.state().version();
    Response r;
    if (p.keys) {
        std::vector<std::string> keys = list_keys(v->kv, p);
        r = keys.empty() ? not_found() : Response::json(200, render_keys(keys));
    } else if (p.recurse) {
        std::vector<NamedEntry> entries;
        for_each_prefix(v->kv, p.key, [&](const std::string& k, const EntryPtr& e) { entries.emplace_back(k, e); });
        r = entries.empty() ? not_found() : Response::json(200, render_entries(entries));
    } else if (EntryPtr e = store.state().get(p.key); !e) {
        r = not_found();
    } else if (p.raw) {
        r.status = 200;
        r.content_type = "application/octet-stream";
        r.body = e->value();
    } else {
        r = Response::json(200, render_entries({{p.key, e}}));
    }
    add_index(r, store.state().index());
    return r;
}

void read_now(Store& store, const ExPtr& ex, const ReadPlan& p) {
    store.read(p.level, [&store, ex, p](int status) {
        ex->respond(status == 0 ? answer_read(store, p) : engine_error(status));
    });
}

void handle_get(Store& store, const ExPtr& ex) {
    KvRequest req;
    std::string error;
    if (!parse_kv_request(*ex, &req, &error)) return ex->respond(bad_request(error));
    ReadPlan p;
    p.key = std::move(req.key);
    p.recurse = req.query.has("recurse");
    p.keys = req.query.has("keys");
    p.raw = req.query.has("raw");
    if (const std::string* sep = req.query.get("separator")) p.separator = *sep;
    if (error = check_key(p.key, p.recurse || p.keys); !error.empty()) return ex->respond(bad_request(error));
    if (!parse_consistency(req.query, &p.level, &error)) return ex->respond(bad_request(error));
    std::optional<uint64_t> index = req.query.number("index", &error);
    uint64_t wait_ms = kMaxWaitMs;
    if (const std::string* w = req.query.get("wait"); w && !parse_duration_ms(*w, &wait_ms)) {
        error = "?wait= must be a duration such as 30s, 5m or 500ms";
    }
    if (!error.empty()) return ex->respond(bad_request(error));
    if (!index || *index == 0) return read_now(store, ex, p);
    store.watch(*index, jittered(std::min(wait_ms, kMaxWaitMs)), [&store, ex, p] { read_now(store, ex, p); });
}

// ---- txn ----------------------------------------------------------------------

Response txn_answer(const Result& r) { return Response::json(r.outcome == Outcome::Ok ? 200 : 409, render_txn(r)); }

void handle_txn(Store& store, const ExPtr& ex) {
    TxnParse parsed = parse_txn(ex->request().body);
    if (!parsed.ok())
        return ex->respond(
            Response::error(parsed.status, parsed.status == 413 ? "body_too_large" : "bad_request", parsed.error));
    bool reads_only = true;
    for (size_t i = 0; i < parsed.txn.ops.size(); i++) {
        const TxnOp& op = parsed.txn.ops[i];
        bool prefix = op.verb == TxnVerb::GetTree || op.verb == TxnVerb::DeleteTree;
        if (std::string err = check_key(op.key, prefix); !err.empty()) {
            return ex->respond(bad_request("operation " + std::to_string(i) + ": " + err));
        }
        reads_only = reads_only && is_read_verb(op.verb);
    }
    if (!reads_only) return propose(store, ex, Command{{}, std::move(parsed.txn)}, txn_answer);
    // Only reads: no log entry, like Consul; the usual consistency applies.
    Query q;
    std::string error;
    Consistency level = Consistency::Default;
    if (!q.parse(ex->request().query, &error) || !parse_consistency(q, &level, &error)) {
        return ex->respond(bad_request(error));
    }
    store.read(level, [&store, ex, txn = std::move(parsed.txn)](int status) {
        if (status != 0) return ex->respond(engine_error(status));
        Response r = txn_answer(store.state().read_txn(txn));
        add_index(r, store.state().index());
        ex->respond(std::move(r));
    });
}

}  // namespace

void propose_write(Store& store, const ExPtr& ex, Command cmd, WriteAnswer answer) {
    propose(store, ex, std::move(cmd), std::move(answer));
}

void add_read_index(Response& r, uint64_t index) { add_index(r, index); }

Response read_failure(int status) { return engine_error(status); }

bool parse_read_consistency(const Query& q, Consistency* out, std::string* error) {
    return parse_consistency(q, out, error);
}

uint64_t jittered_wait(uint64_t ms) { return jittered(ms); }

void install_kv_routes(http::Router& router, Store& store) {
    auto route = [&store](void (*handler)(Store&, const ExPtr&)) {
        return [&store, handler](Exchange& ex) { handler(store, ex.shared_from_this()); };
    };
    router.add("GET", "/v1/kv/*", route(handle_get), /*high_volume=*/true);
    router.add("PUT", "/v1/kv/*", route(handle_put));
    router.add("DELETE", "/v1/kv/*", route(handle_delete));
    router.add("PUT", "/v1/txn", route(handle_txn));
}

}  // namespace rampart::store
