#include "store/service_routes.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>

#include "http/exchange.h"
#include "http/router.h"
#include "store/query.h"
#include "store/route_support.h"
#include "store/services_json.h"
#include "store/store.h"

namespace rampart::store {
namespace {

using http::Exchange;
using http::Response;
using ExPtr = std::shared_ptr<Exchange>;

Response bad_request(std::string_view why) { return Response::error(400, "bad_request", why); }

struct Ctx {
    Store& store;
    NodeInfo node;
};

// The path's last part (an id or name), percent-decoded; empty is an error.
bool path_arg(const Exchange& ex, std::string_view prefix, std::string* out, std::string* error) {
    std::string_view path = ex.request().path;
    if (!percent_decode(path.substr(prefix.size()), false, out)) {
        *error = "malformed percent-encoding in the path";
        return false;
    }
    if (out->empty()) {
        *error = "the path needs a name or id after " + std::string(prefix);
        return false;
    }
    return true;
}

// ---- writes -------------------------------------------------------------------

// Consul answers these with an empty 200; a missing service or check is 404.
Response empty_or_not_found(const Result& r) {
    if (r.outcome == Outcome::Failed) return Response::error(404, "not_found", r.error);
    Response ok = Response::json(200, "");
    return ok;
}

void handle_register(Ctx& c, const ExPtr& ex) {
    RegisterParse p = parse_service_registration(ex->request().body);
    if (!p.ok()) return ex->respond(bad_request(p.error));
    propose_write(c.store, ex, Command{{}, std::move(p.reg)}, empty_or_not_found);
}

constexpr std::string_view kDeregister = "/v1/agent/service/deregister/";

void handle_deregister(Ctx& c, const ExPtr& ex) {
    std::string id, error;
    if (!path_arg(*ex, kDeregister, &id, &error)) return ex->respond(bad_request(error));
    propose_write(c.store, ex, Command{{}, ServiceDeregister{std::move(id)}}, empty_or_not_found);
}

void update_check(Ctx& c, const ExPtr& ex, std::string_view prefix, CheckStatus status, std::string output) {
    std::string id, error;
    if (!path_arg(*ex, prefix, &id, &error)) return ex->respond(bad_request(error));
    output = truncate_output(std::move(output));
    if (std::string e = check_output(output); !e.empty()) return ex->respond(bad_request(e));
    propose_write(c.store, ex, Command{{}, CheckPass{std::move(id), std::move(output), status}}, empty_or_not_found);
}

// pass / warn / fail with ?note=.
template <CheckStatus S>
void handle_ttl(Ctx& c, const ExPtr& ex) {
    static constexpr std::string_view kPrefix = S == CheckStatus::Passing   ? "/v1/agent/check/pass/"
                                                : S == CheckStatus::Warning ? "/v1/agent/check/warn/"
                                                                            : "/v1/agent/check/fail/";
    Query q;
    std::string error;
    if (!q.parse(ex->request().query, &error)) return ex->respond(bad_request(error));
    const std::string* note = q.get("note");
    update_check(c, ex, kPrefix, S, note ? *note : std::string());
}

void handle_update(Ctx& c, const ExPtr& ex) {
    CheckUpdateParse p = parse_check_update(ex->request().body);
    if (!p.ok()) return ex->respond(bad_request(p.error));
    update_check(c, ex, "/v1/agent/check/update/", p.status, std::move(p.output));
}

// ---- reads --------------------------------------------------------------------

// What a read renders from one catalog version.
using Render = std::function<Response(const Catalog&)>;

// Consistency, then blocking on the catalog index, then render the
// version the read may see; every answer carries the catalog index.
void serve_read(Ctx& c, const ExPtr& ex, const Query& q, const Render& render) {
    std::string error;
    Consistency level = Consistency::Default;
    if (!parse_read_consistency(q, &level, &error)) return ex->respond(bad_request(error));
    std::optional<uint64_t> index = q.number("index", &error);
    uint64_t wait_ms = kMaxBlockingWaitMs;
    if (const std::string* w = q.get("wait"); w && !parse_duration_ms(*w, &wait_ms)) {
        error = "?wait= must be a duration such as 30s, 5m or 500ms";
    }
    if (!error.empty()) return ex->respond(bad_request(error));
    Store& store = c.store;
    auto now = [&store, ex, level, render] {
        store.read(level, [&store, ex, render](int status) {
            if (status != 0) return ex->respond(read_failure(status));
            Version v = store.state().version();
            Response r = render(v->catalog);
            add_read_index(r, v->catalog.index > 0 ? v->catalog.index : 1);
            ex->respond(std::move(r));
        });
    };
    if (!index || *index == 0) return now();
    store.watch_catalog(*index, jittered_wait(std::min(wait_ms, kMaxBlockingWaitMs)), now);
}

bool parse_query(const ExPtr& ex, Query* q) {
    std::string error;
    if (q->parse(ex->request().query, &error)) return true;
    ex->respond(bad_request(error));
    return false;
}

// ?passing, ?passing=true|false (Consul's spelling).
bool passing_only(const Query& q, bool* out, std::string* error) {
    const std::string* v = q.get("passing");
    *out = v != nullptr && (v->empty() || *v == "true" || *v == "1");
    if (v != nullptr && !v->empty() && *v != "true" && *v != "1" && *v != "false" && *v != "0") {
        *error = "?passing must be empty, true or false";
        return false;
    }
    return true;
}

std::vector<ServicePtr> with_tag(std::vector<ServicePtr> services, const Query& q) {
    const std::string* tag = q.get("tag");
    if (tag == nullptr) return services;
    std::erase_if(services, [&](const ServicePtr& s) {
        return std::find(s->tags.begin(), s->tags.end(), *tag) == s->tags.end();
    });
    return services;
}

void handle_agent_services(Ctx& c, const ExPtr& ex) {
    Query q;
    if (!parse_query(ex, &q)) return;
    serve_read(c, ex, q, [](const Catalog& cat) { return Response::json(200, render_agent_services(cat)); });
}

void handle_agent_checks(Ctx& c, const ExPtr& ex) {
    Query q;
    if (!parse_query(ex, &q)) return;
    NodeInfo node = c.node;
    serve_read(c, ex, q, [node](const Catalog& cat) { return Response::json(200, render_agent_checks(cat, node)); });
}

void handle_catalog_services(Ctx& c, const ExPtr& ex) {
    Query q;
    if (!parse_query(ex, &q)) return;
    serve_read(c, ex, q, [](const Catalog& cat) { return Response::json(200, render_catalog_services(cat)); });
}

void handle_catalog_service(Ctx& c, const ExPtr& ex) {
    Query q;
    std::string name, error;
    if (!parse_query(ex, &q)) return;
    if (!path_arg(*ex, "/v1/catalog/service/", &name, &error)) return ex->respond(bad_request(error));
    NodeInfo node = c.node;
    serve_read(c, ex, q, [node, name, q](const Catalog& cat) {
        return Response::json(200, render_catalog_service(with_tag(services_named(cat, name), q), node));
    });
}

void handle_health_service(Ctx& c, const ExPtr& ex) {
    Query q;
    std::string name, error;
    bool passing = false;
    if (!parse_query(ex, &q)) return;
    if (!path_arg(*ex, "/v1/health/service/", &name, &error) || !passing_only(q, &passing, &error))
        return ex->respond(bad_request(error));
    NodeInfo node = c.node;
    serve_read(c, ex, q, [node, name, q, passing](const Catalog& cat) {
        std::vector<ServicePtr> services = with_tag(services_named(cat, name), q);
        if (passing) {
            std::erase_if(services, [&](const ServicePtr& s) {
                std::vector<CheckPtr> checks = checks_of(cat, *s);
                return std::any_of(checks.begin(), checks.end(),
                                   [](const CheckPtr& k) { return k->status != CheckStatus::Passing; });
            });
        }
        return Response::json(200, render_health_service(cat, services, node));
    });
}

void handle_health_checks(Ctx& c, const ExPtr& ex) {
    Query q;
    std::string name, error;
    if (!parse_query(ex, &q)) return;
    if (!path_arg(*ex, "/v1/health/checks/", &name, &error)) return ex->respond(bad_request(error));
    NodeInfo node = c.node;
    serve_read(c, ex, q, [node, name](const Catalog& cat) {
        std::vector<CheckPtr> checks;
        for (const ServicePtr& s : services_named(cat, name)) {
            for (CheckPtr& k : checks_of(cat, *s)) checks.push_back(std::move(k));
        }
        return Response::json(200, render_health_checks(cat, checks, node));
    });
}

void handle_health_state(Ctx& c, const ExPtr& ex) {
    Query q;
    std::string state, error;
    if (!parse_query(ex, &q)) return;
    if (!path_arg(*ex, "/v1/health/state/", &state, &error)) return ex->respond(bad_request(error));
    CheckStatus want = CheckStatus::Passing;
    bool any = state == "any";
    if (!any && !parse_status(state, &want))
        return ex->respond(bad_request("the state must be any, passing, warning or critical"));
    NodeInfo node = c.node;
    serve_read(c, ex, q, [node, any, want](const Catalog& cat) {
        std::vector<CheckPtr> checks;
        for (const auto& [id, k] : cat.checks)
            if (any || k->status == want) checks.push_back(k);
        return Response::json(200, render_health_checks(cat, checks, node));
    });
}

// "127.0.0.1:7700" -> "127.0.0.1", "[::1]:7700" -> "::1".
std::string listen_host(std::string_view listen) {
    size_t colon = listen.rfind(':');
    std::string_view host = colon == std::string_view::npos ? listen : listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return std::string(host);
}

}  // namespace

void install_service_routes(http::Router& router, Store& store, std::string node_name, std::string_view api_listen) {
    // Shared by every route; lives as long as the router's handlers.
    auto ctx = std::make_shared<Ctx>(Ctx{store, NodeInfo{std::move(node_name), listen_host(api_listen)}});
    auto route = [ctx](void (*handler)(Ctx&, const ExPtr&)) {
        return [ctx, handler](Exchange& ex) { handler(*ctx, ex.shared_from_this()); };
    };
    router.add("PUT", "/v1/agent/service/register", route(handle_register));
    router.add("PUT", "/v1/agent/service/deregister/*", route(handle_deregister));
    router.add("PUT", "/v1/agent/check/pass/*", route(handle_ttl<CheckStatus::Passing>));
    router.add("PUT", "/v1/agent/check/warn/*", route(handle_ttl<CheckStatus::Warning>));
    router.add("PUT", "/v1/agent/check/fail/*", route(handle_ttl<CheckStatus::Critical>));
    router.add("PUT", "/v1/agent/check/update/*", route(handle_update));
    router.add("GET", "/v1/agent/services", route(handle_agent_services));
    router.add("GET", "/v1/agent/checks", route(handle_agent_checks));
    router.add("GET", "/v1/catalog/services", route(handle_catalog_services));
    router.add("GET", "/v1/catalog/service/*", route(handle_catalog_service), /*high_volume=*/true);
    router.add("GET", "/v1/health/service/*", route(handle_health_service), /*high_volume=*/true);
    router.add("GET", "/v1/health/checks/*", route(handle_health_checks));
    router.add("GET", "/v1/health/state/*", route(handle_health_state));
}

}  // namespace rampart::store
