#include "request_pipeline.h"

#include "http/exchange.h"
#include "http/response.h"
#include "net/transport.h"

namespace rampart {

bool RequestPipeline::accept(std::string_view source_ip) { return plugins_->accept(source_ip); }

bool RequestPipeline::before_handler(http::Exchange& ex) {
    auth::Decision d = auth_->decide(ex.request());
    // Without a token, a verified client certificate is who the client is
    // (for rate limits and idempotency scopes); it grants no role. On a
    // peer's connection (forwarded requests) it is another node.
    if (d.identity.kind == auth::IdentityKind::None) {
        if (const net::PeerIdentity* cert = ex.client_certificate()) {
            d.identity.kind = ex.from_peer() ? auth::IdentityKind::Peer : auth::IdentityKind::Certificate;
            d.identity.name = cert->name();
        }
    }
    ex.set_identity(d.identity);
    if (d.outcome == auth::Decision::Outcome::Unauthenticated || d.outcome == auth::Decision::Outcome::Forbidden) {
        // Plugins hear of the failure (the rate limiter counts it) before
        // the answer goes out, so its headers can ride on the 401.
        plugins_->auth_failure(ex.source_ip(), d.code);
        if (plugins_->admission(ex)) return true;
        http::Response r = http::Response::error(d.status, d.code, d.message);
        if (d.status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
        ex.respond(std::move(r));
        return true;
    }
    if (plugins_->admission(ex) || plugins_->dedup(ex)) return true;
    return forward_ && forward_(ex);
}

void RequestPipeline::before_send(http::Exchange& ex, const http::Response& resp) { plugins_->response(ex, resp); }

}  // namespace rampart
