#include "cluster/membership_routes.h"

#include <cjson/cJSON.h>
#include <sys/random.h>

#include <algorithm>
#include <memory>

#include "audit/audit_log.h"
#include "auth/authenticator.h"
#include "cluster/membership_client.h"
#include "cluster/not_applied.h"
#include "cluster/raft_adapter.h"
#include "cluster/raft_bridge.h"
#include "http/exchange.h"
#include "http/router.h"
#include "log.h"
#include "net/transport.h"
#include "store/membership_record.h"
#include "store/query.h"
#include "store/route_support.h"
#include "store/store.h"
#include "util/json.h"
#include "util/sha256.h"

namespace rampart::cluster {
namespace {

using http::Exchange;
using http::Response;
using ExPtr = std::shared_ptr<Exchange>;
using Json = std::unique_ptr<cJSON, void (*)(cJSON*)>;

constexpr std::string_view kTokenPath = "/v1/cluster/join-token/";
constexpr uint64_t kDefaultTtlMs = uint64_t{3600} * 1000;        // 1 h
constexpr uint64_t kMaxTtlMs = uint64_t{30} * 24 * 3600 * 1000;  // 30 days
constexpr uint64_t kMaxUses = 100000;

Response bad_request(std::string_view why) { return Response::error(400, "bad_request", why); }

Response unavailable(std::string_view code, std::string_view why) {
    Response r = Response::error(503, code, why);
    r.headers.emplace_back("Retry-After", "1");
    return r;
}

// An empty body is an empty object; anything else must be one.
Json parse_object(std::string_view body, std::string* error) {
    if (body.empty()) return Json(cJSON_CreateObject(), cJSON_Delete);
    Json root(cJSON_ParseWithLength(body.data(), body.size()), cJSON_Delete);
    if (!root || !cJSON_IsObject(root.get())) {
        *error = "the body must be a JSON object";
        return Json(nullptr, cJSON_Delete);
    }
    return root;
}

// A string field, "" when absent; false (with *error) when not a string
// or not one of `allowed`.
bool string_field(const cJSON* root, const char* name, std::string* out, std::string* error) {
    const cJSON* f = cJSON_GetObjectItemCaseSensitive(root, name);
    if (f == nullptr) return true;
    if (!cJSON_IsString(f)) {
        *error = std::string("\"") + name + "\" must be a string";
        return false;
    }
    *out = f->valuestring;
    return true;
}

bool only_fields(const cJSON* root, std::initializer_list<std::string_view> allowed, std::string* error) {
    for (const cJSON* f = root->child; f != nullptr; f = f->next) {
        bool ok = false;
        for (std::string_view a : allowed) ok = ok || (f->string != nullptr && a == f->string);
        if (!ok) {
            *error = std::string("unknown field \"") + (f->string ? f->string : "") + "\"";
            return false;
        }
    }
    return true;
}

std::string random_hex(size_t bytes) {
    uint8_t buf[32];
    if (getrandom(buf, bytes, 0) != static_cast<ssize_t>(bytes)) abort();  // no entropy: never a guessable id
    return util::to_hex(buf, bytes);
}

std::string rfc3339(uint64_t ms) { return audit::utc_timestamp(static_cast<int64_t>(ms)); }

uint64_t now_ms() { return static_cast<uint64_t>(audit::now_unix_ms()); }

class Handlers {
public:
    explicit Handlers(const MembershipRoutes& r) : r_(r) {}

    void audit(const char* event, const audit::Fields& fields) const {
        if (r_.audit == nullptr) return;
        std::string error;
        if (r_.audit->append(event, fields, &error) == 0) log::error("audit log", {{"error", error}});
    }

    // Send the request to the leader (which this node is not) and relay
    // its answer. Once only: a relayed request never travels on. It goes
    // through the peer retry loop (membership_client.h): the leader is
    // looked up again before each attempt, and only an idempotent request
    // (see install_membership_routes) is sent again after a failure.
    using Handler = void (Handlers::*)(const ExPtr&) const;

    // `again`: the route's handler, run here when this node took over the
    // leadership while the request waited for a retry.
    void relay(const ExPtr& ex, const std::string& path, const std::string& body, bool idempotent,
               Handler again) const {
        if (ex->request().header(kRelayedBy) != nullptr) return ex->respond(not_leader_any_more());
        if (!leader_address())
            return ex->respond(unavailable("no_leader", "the cluster has no leader right now; retry"));
        MembershipClient::Request rq;
        rq.method = ex->request().method;
        rq.path = path;
        rq.body = body;
        rq.headers = {{kRelayedBy, r_.node_id}};
        for (const char* name : {"authorization", "idempotency-key"}) {
            if (const std::string* v = ex->request().header(name)) rq.headers.emplace_back(name, *v);
        }
        rq.idempotent = idempotent || ex->request().header("idempotency-key") != nullptr;
        auto h = *this;
        rq.target = [h] { return h.leader_address(); };
        // A client that went away, or this node leading now: stop (the
        // client retries, and reaches the leader's own handler).
        rq.wanted = [h, ex] { return !ex->abandoned() && !h.leading(); };
        r_.client->send(std::move(rq), [h, ex, again](PeerAnswer a) {
            if (ex->responded() || ex->abandoned()) return;
            if (a.result.end == resilience::RetryEnd::Cancelled && h.leading()) return (h.*again)(ex);
            if (a.status != 0) {
                Response r = Response::json(a.status, std::move(a.body));
                if (a.retry_after_ms > 0)
                    r.headers.emplace_back("Retry-After", std::to_string((a.retry_after_ms + 999) / 1000));
                return ex->respond(std::move(r));
            }
            if (a.result.end == resilience::RetryEnd::BreakerOpen) {
                Response r = Response::error(503, "leader_circuit_open",
                                             "the leader failed repeatedly; " + a.error + "; retry later");
                r.headers.emplace_back("Retry-After",
                                       std::to_string(std::max<uint64_t>(1, (a.retry_after_ms + 999) / 1000)));
                return ex->respond(std::move(r));
            }
            ex->respond(unavailable("leader_unreachable", "the leader could not be reached (" + a.error + "); retry"));
        });
    }

    // The leader's node id and peer address, when there is one and it is not this node.
    std::optional<MemberAddress> leader_address() const {
        if (r_.store->is_leader()) return std::nullopt;
        auto [leader_id, address] = r_.store->leader();
        std::optional<Member> leader = leader_id != 0 && r_.bridge ? r_.bridge->member_by_id(leader_id) : std::nullopt;
        if (!leader) return std::nullopt;
        return MemberAddress{leader->node_id, address};
    }

    bool leading() const { return r_.store->is_leader(); }

    // ---- join tokens ---------------------------------------------------

    void create_token(const ExPtr& ex) const {
        if (!leading()) return relay(ex, ex->request().path, ex->request().body, false, &Handlers::create_token);
        std::string error, role_text = "voter", ttl_text;
        Json root = parse_object(ex->request().body, &error);
        if (!root || !only_fields(root.get(), {"role", "ttl", "uses"}, &error) ||
            !string_field(root.get(), "role", &role_text, &error) ||
            !string_field(root.get(), "ttl", &ttl_text, &error))
            return ex->respond(bad_request(error));
        store::JoinTokenCreate c;
        if (!store::parse_member_role(role_text, &c.role))
            return ex->respond(bad_request("\"role\" must be voter, standby or spare"));
        uint64_t ttl = kDefaultTtlMs;
        if (!ttl_text.empty() && (!store::parse_duration_ms(ttl_text, &ttl) || ttl == 0 || ttl > kMaxTtlMs))
            return ex->respond(bad_request("\"ttl\" must be a duration such as 10m or 24h, at most 720h"));
        const cJSON* uses = cJSON_GetObjectItemCaseSensitive(root.get(), "uses");
        if (uses != nullptr) {
            if (!cJSON_IsNumber(uses) || uses->valuedouble < 0 || uses->valuedouble > kMaxUses ||
                uses->valuedouble != static_cast<double>(static_cast<uint64_t>(uses->valuedouble)))
                return ex->respond(bad_request("\"uses\" must be a whole number from 0 (unlimited) to 100000"));
            c.max_uses = static_cast<uint64_t>(uses->valuedouble);
        }
        // 256 random bits; the log, snapshots and this table see only the hash.
        std::string secret = auth::generate_token();
        c.id = random_hex(8);
        c.hash = util::sha256_hex(secret);
        store::MembershipRecord rec;
        rec.leader_ms = now_ms();
        c.expires_ms = rec.leader_ms + ttl;
        rec.body = c;
        auto h = *this;
        r_.store->write_record(store::encode_membership(rec),
                               [h, ex, c, secret](int status, uint64_t index, std::unique_ptr<store::Result> r) {
                                   if (status != 0) return ex->respond(store::read_failure(status));
                                   if (r->outcome != store::Outcome::Ok)
                                       return ex->respond(Response::error(409, "conflict", r->error));
                                   h.audit("cluster_join_token_created", {{"token_id", c.id},
                                                                          {"role", store::member_role_name(c.role)},
                                                                          {"uses", static_cast<int64_t>(c.max_uses)},
                                                                          {"expires_at", rfc3339(c.expires_ms)},
                                                                          {"by", ex->identity().name}});
                                   std::string body = "{\"token\":";
                                   util::json_string_append(body, secret);
                                   body += ",\"id\":";
                                   util::json_string_append(body, c.id);
                                   body += ",\"expires_at\":";
                                   util::json_string_append(body, rfc3339(c.expires_ms));
                                   body += ",\"role\":";
                                   util::json_string_append(body, store::member_role_name(c.role));
                                   body += ",\"uses\":" + std::to_string(c.max_uses) + "}\n";
                                   Response resp = Response::json(200, std::move(body));
                                   resp.headers.emplace_back("Cache-Control", "no-store");
                                   resp.headers.emplace_back("X-Rampart-Index", std::to_string(index));
                                   ex->respond(std::move(resp));
                               });
    }

    // From this node's own state (it may trail the leader by a moment).
    void list_tokens(const ExPtr& ex) const {
        std::string body = "[";
        for (const auto& [id, t] : r_.store->state().membership().tokens()) {
            if (body.size() > 1) body += ',';
            body += "{\"id\":";
            util::json_string_append(body, t.id);
            body += ",\"role\":";
            util::json_string_append(body, store::member_role_name(t.role));
            body += ",\"uses\":" + std::to_string(t.uses) + ",\"max_uses\":" + std::to_string(t.max_uses);
            body += ",\"expires_at\":";
            util::json_string_append(body, rfc3339(t.expires_ms));
            body += ",\"create_index\":" + std::to_string(t.create_index) + "}";
        }
        ex->respond(Response::json(200, body + "]\n"));
    }

    void revoke_token(const ExPtr& ex) const {
        if (!leading()) return relay(ex, ex->request().path, ex->request().body, false, &Handlers::revoke_token);
        std::string id(std::string_view(ex->request().path).substr(kTokenPath.size()));
        if (id.empty() || id.size() > store::MembershipLimits::kTokenId)
            return ex->respond(bad_request("a join token id is 1 to 32 characters"));
        store::MembershipRecord rec;
        rec.leader_ms = now_ms();
        rec.body = store::JoinTokenRevoke{id};
        auto h = *this;
        r_.store->write_record(
            store::encode_membership(rec), [h, ex, id](int status, uint64_t, std::unique_ptr<store::Result> r) {
                if (status != 0) return ex->respond(store::read_failure(status));
                if (r->outcome != store::Outcome::Ok) return ex->respond(Response::error(404, "not_found", r->error));
                h.audit("cluster_join_token_revoked", {{"token_id", id}, {"by", ex->identity().name}});
                ex->respond(Response::json(200, "true\n"));
            });
    }

    // ---- join ----------------------------------------------------------

    struct JoinRequest {
        std::string node_id, address, token, raft_id_text, role_text = "voter";
        uint64_t raft_id = 0;
        store::MemberRole role = store::MemberRole::Voter;
    };

    void join(const ExPtr& ex) const {
        std::string error;
        Json root = parse_object(ex->request().body, &error);
        if (!root) return ex->respond(bad_request(error));
        if (cJSON_GetObjectItemCaseSensitive(root.get(), "seeds") != nullptr) return join_self(ex, root.get());
        if (r_.bridge == nullptr)
            return ex->respond(Response::error(409, "conflict", "this node has no peer port: nothing can join it"));
        JoinRequest j;
        if (!only_fields(root.get(), {"node_id", "address", "join_token", "raft_id", "role"}, &error) ||
            !string_field(root.get(), "node_id", &j.node_id, &error) ||
            !string_field(root.get(), "address", &j.address, &error) ||
            !string_field(root.get(), "join_token", &j.token, &error) ||
            !string_field(root.get(), "raft_id", &j.raft_id_text, &error) ||
            !string_field(root.get(), "role", &j.role_text, &error))
            return ex->respond(bad_request(error));
        char* end = nullptr;
        j.raft_id = strtoull(j.raft_id_text.c_str(), &end, 10);
        if (j.node_id.empty() || j.node_id.size() > store::MembershipLimits::kNodeId || j.address.empty() ||
            j.address.size() > store::MembershipLimits::kAddress || j.address.find('@') != std::string::npos ||
            j.token.empty() || j.raft_id == 0 || j.raft_id > 0x7fffffffffffffffull || end == nullptr || *end != 0 ||
            !store::parse_member_role(j.role_text, &j.role))
            return ex->respond(bad_request(
                "a join needs node_id, address (host:port), join_token, raft_id (a decimal string) and role"));
        std::string who;
        if (!joiner_identity_ok(*ex, j, &who)) return;  // answered
        if (!leading()) return relay(ex, "/v1/cluster/join", ex->request().body, true, &Handlers::join);
        admit(ex, j, who);
    }

    // The joiner's certificate must name the node id it joins as; a relayed
    // join was checked by the member that relays it.
    bool joiner_identity_ok(Exchange& ex, const JoinRequest& j, std::string* who) const {
        const net::PeerIdentity* cert = ex.client_certificate();
        const std::string* relayed = ex.request().header(kRelayedBy);
        std::string why;
        if (!ex.from_peer()) {
            // The API port's client certificates may come from another CA.
            why = "a join must come over the peer port, with the joining node's certificate";
            *who = "api " + ex.source_ip();
        } else if (relayed != nullptr) {
            bool member = false;
            if (r_.bridge != nullptr) {
                for (const Member& m : r_.bridge->members()) member = member || m.node_id == *relayed;
            }
            if (!member || (cert != nullptr && !cert->has(*relayed)))
                why = "a relayed join must come from a member's peer connection";
            *who = "relayed by " + *relayed;
        } else if (cert != nullptr) {
            if (!cert->has(j.node_id))
                why = "the joiner's certificate (" + cert->name() + ") does not name " + j.node_id;
            *who = cert->name();
        } else {
            *who = "insecure peer";  // allow_insecure_peers: nobody is authenticated
        }
        if (why.empty()) return true;
        refuse(ex.shared_from_this(), j, *who, why, 403, "join_refused");
        return false;
    }

    void refuse(const ExPtr& ex, const JoinRequest& j, const std::string& who, const std::string& why, int status,
                const char* code) const {
        log::warn("join refused", {{"node_id", j.node_id}, {"reason", why}, {"source", who}});
        audit("cluster_join", {{"result", "refused"},
                               {"reason", why},
                               {"node_id", j.node_id},
                               {"address", j.address},
                               {"raft_id", std::to_string(j.raft_id)},
                               {"source", who}});
        ex->respond(Response::error(status, code, "join refused: " + why));
    }

    void admit(const ExPtr& ex, const JoinRequest& j, const std::string& who) const {
        const store::MembershipState& table = r_.store->state().membership();
        // A retry of a join that went through (its answer was lost) is
        // answered again, without a second use of the token.
        const store::MemberRecord* rec = table.member(j.node_id);
        if (rec != nullptr && !rec->left && rec->raft_id == j.raft_id) return admitted(ex, j.node_id, rec->role);
        std::optional<Member> owner = r_.bridge ? r_.bridge->member_by_id(j.raft_id) : std::nullopt;
        if (owner && owner->node_id != j.node_id)
            return refuse(ex, j, who, "raft id " + std::to_string(j.raft_id) + " belongs to " + owner->node_id, 409,
                          "join_refused");
        std::string hash = util::sha256_hex(j.token);
        uint64_t now = now_ms();
        if (std::string why = table.join_refusal(table.token_by_hash(hash), now); !why.empty())
            return refuse(ex, j, who, why, 403, "join_refused");
        store::MembershipRecord record;
        record.leader_ms = now;
        record.body = store::MemberJoin{hash, j.node_id, j.raft_id, j.address, j.role};
        auto h = *this;
        r_.store->write_record(store::encode_membership(record),
                               [h, ex, j, who, hash](int status, uint64_t, std::unique_ptr<store::Result> r) {
                                   if (status != 0) return ex->respond(store::read_failure(status));
                                   if (r->outcome != store::Outcome::Ok)
                                       return h.refuse(ex, j, who, r->error, 403, "join_refused");
                                   const store::JoinToken* t = h.r_.store->state().membership().token_by_hash(hash);
                                   const store::MemberRecord* m = h.r_.store->state().membership().member(j.node_id);
                                   store::MemberRole role = m != nullptr ? m->role : j.role;
                                   h.audit("cluster_join", {{"result", "accepted"},
                                                            {"node_id", j.node_id},
                                                            {"address", j.address},
                                                            {"raft_id", std::to_string(j.raft_id)},
                                                            {"role", store::member_role_name(role)},
                                                            {"token_id", t != nullptr ? t->id : std::string()},
                                                            {"source", who}});
                                   log::info("node admitted to the cluster",
                                             {{"node_id", j.node_id}, {"role", store::member_role_name(role)}});
                                   h.admitted(ex, j.node_id, role);
                               });
    }

    // The answer names every member, so that the joiner can check who
    // dials it before its engine has the configuration.
    void admitted(const ExPtr& ex, const std::string& node_id, store::MemberRole role) const {
        std::string body = "{\"node_id\":";
        util::json_string_append(body, node_id);
        body += ",\"role\":";
        util::json_string_append(body, store::member_role_name(role));
        body += ",\"members\":[";
        bool first = true;
        for (const Member& m : r_.bridge->members()) {
            body += first ? "{\"node_id\":" : ",{\"node_id\":";
            first = false;
            util::json_string_append(body, m.node_id);
            body += ",\"raft_id\":\"" + std::to_string(m.raft_id) + "\",\"address\":";
            util::json_string_append(body, m.peer_address);
            body += "}";
        }
        ex->respond(Response::json(200, body + "]}\n"));
    }

    // rampartctl cluster join: this node joins through the given seeds.
    void join_self(const ExPtr& ex, const cJSON* root) const {
        std::string error, token;
        if (r_.auth_enabled && ex->identity().role != "admin")
            return ex->respond(Response::error(ex->identity().role.empty() ? 401 : 403,
                                               ex->identity().role.empty() ? "missing_token" : "forbidden",
                                               "joining this node to a cluster needs an admin token"));
        std::vector<MemberAddress> seeds;
        const cJSON* list = cJSON_GetObjectItemCaseSensitive(root, "seeds");
        const cJSON* s = nullptr;
        cJSON_ArrayForEach(s, list) {
            MemberAddress a = cJSON_IsString(s) ? split_member_address(s->valuestring) : MemberAddress{};
            if (a.node_id.empty() || a.address.empty())
                return ex->respond(bad_request("seeds are \"node_id@host:port\""));
            seeds.push_back(std::move(a));
        }
        if (!only_fields(root, {"seeds", "join_token"}, &error) || !string_field(root, "join_token", &token, &error))
            return ex->respond(bad_request(error));
        if (!cJSON_IsArray(list) || token.empty())
            return ex->respond(
                bad_request("give \"join_token\" and \"seeds\" (node_id@host:port; [] for the configured ones)"));
        if (!r_.join_self || !r_.join_self(token, std::move(seeds), &error))
            return ex->respond(Response::error(409, "conflict", error.empty() ? "this node cannot join" : error));
        ex->respond(Response::json(202, "{\"joining\":true}\n"));
    }

    // ---- leave and transfer ---------------------------------------------

    void leave(const ExPtr& ex) const {
        std::string error, node_id;
        Json root = parse_object(ex->request().body, &error);
        if (!root || !only_fields(root.get(), {"node_id"}, &error) ||
            !string_field(root.get(), "node_id", &node_id, &error))
            return ex->respond(bad_request(error));
        if (node_id.empty()) node_id = r_.node_id;  // the node asked leaves
        if (!leading()) {
            std::string body = "{\"node_id\":";
            util::json_string_append(body, node_id);
            return relay(ex, "/v1/cluster/leave", body + "}", false, &Handlers::leave);
        }
        bool member = false, other_voter = false;
        rampart_raft* engine = r_.store->engine();
        std::vector<rampart_raft_member> raw(engine ? rampart_raft_members(engine, nullptr, 0) : 0);
        if (engine) raw.resize(rampart_raft_members(engine, raw.data(), static_cast<unsigned>(raw.size())));
        for (const rampart_raft_member& m : raw) {
            std::optional<Member> b = r_.bridge ? r_.bridge->member_by_id(m.id) : std::nullopt;
            bool is = b && b->node_id == node_id;
            member = member || is;
            other_voter = other_voter || (!is && m.role == RAMPART_RAFT_MEMBER_VOTER);
        }
        if (!member) return ex->respond(Response::error(404, "not_found", node_id + " is not a member"));
        if (!other_voter) return ex->respond(Response::error(409, "conflict", node_id + " is the last voter"));
        store::MembershipRecord rec;
        rec.leader_ms = now_ms();
        rec.body = store::MemberLeave{node_id};
        auto h = *this;
        r_.store->write_record(store::encode_membership(rec),
                               [h, ex, node_id](int status, uint64_t index, std::unique_ptr<store::Result> r) {
                                   if (status != 0) return ex->respond(store::read_failure(status));
                                   if (r->outcome != store::Outcome::Ok)
                                       return ex->respond(Response::error(409, "conflict", r->error));
                                   h.audit("cluster_leave", {{"node_id", node_id}, {"by", ex->identity().name}});
                                   std::string body = "{\"node_id\":";
                                   util::json_string_append(body, node_id);
                                   Response resp = Response::json(200, body + ",\"leaving\":true}\n");
                                   resp.headers.emplace_back("X-Rampart-Index", std::to_string(index));
                                   ex->respond(std::move(resp));
                               });
    }

    struct TransferCtx {
        ExPtr ex;
        RaftBridge* bridge;
    };

    void transfer(const ExPtr& ex) const {
        std::string error, to;
        Json root = parse_object(ex->request().body, &error);
        if (!root || !only_fields(root.get(), {"to"}, &error) || !string_field(root.get(), "to", &to, &error))
            return ex->respond(bad_request(error));
        if (!leading())
            return relay(ex, "/v1/cluster/transfer-leadership", ex->request().body, false, &Handlers::transfer);
        uint64_t to_id = 0;
        if (!to.empty()) {
            for (const Member& m : r_.bridge ? r_.bridge->members() : std::vector<Member>{}) {
                if (m.node_id == to && rampart_raft_leader(r_.store->engine(), nullptr, 0) != m.raft_id)
                    to_id = m.raft_id;
            }
            if (to_id == 0) return ex->respond(Response::error(404, "not_found", to + " is not another member"));
        }
        auto ctx = std::make_unique<TransferCtx>(TransferCtx{ex, r_.bridge});
        int rv = rampart_raft_transfer(r_.store->engine(), to_id, cb_transferred, ctx.get());
        if (rv == 0) (void)ctx.release();  // cb_transferred owns it now
        if (rv != 0) {
            if (rv == RAMPART_RAFT_INVALID)
                return ex->respond(Response::error(
                    409, "conflict", to.empty() ? "there is no other voter to hand over to" : to + " is not a voter"));
            return ex->respond(store::read_failure(rv));
        }
    }

    static void cb_transferred(void* p, uint64_t leader_id) {
        std::unique_ptr<TransferCtx> ctx(static_cast<TransferCtx*>(p));
        std::optional<Member> m = ctx->bridge && leader_id ? ctx->bridge->member_by_id(leader_id) : std::nullopt;
        std::string body = "{\"leader\":";
        util::json_string_append(body, m ? m->node_id : std::string());
        ctx->ex->respond(Response::json(200, body + "}\n"));
    }

private:
    MembershipRoutes r_;
};

}  // namespace

void install_membership_routes(http::Router& router, const MembershipRoutes& routes) {
    auto h = std::make_shared<Handlers>(routes);
    auto route = [h](void (Handlers::*fn)(const ExPtr&) const) {
        return [h, fn](Exchange& ex) { ((*h).*fn)(ex.shared_from_this()); };
    };
    router.add("POST", "/v1/cluster/join-token", route(&Handlers::create_token));
    router.add("GET", "/v1/cluster/join-tokens", route(&Handlers::list_tokens));
    router.add("DELETE", "/v1/cluster/join-token/*", route(&Handlers::revoke_token));
    router.add("POST", "/v1/cluster/join", route(&Handlers::join));
    router.add("POST", "/v1/cluster/leave", route(&Handlers::leave));
    router.add("POST", "/v1/cluster/transfer-leadership", route(&Handlers::transfer));
}

}  // namespace rampart::cluster
