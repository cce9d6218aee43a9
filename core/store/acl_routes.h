// API tokens over HTTP (brief "Security"; shaped after Consul's /v1/acl):
//   PUT    /v1/acl/token             {"Description", "Role": "read|write|admin",
//                                     "Prefix": "app/", "ExpirationTTL": "24h"}
//                                     -> the token with its SecretID, shown this once
//   GET    /v1/acl/tokens            every token, never a secret
//   GET    /v1/acl/token/<accessor>  one token
//   DELETE /v1/acl/token/<accessor>  revoke -> true
// Every one needs the admin role and an unscoped token (core/auth). The
// handler that creates a token makes its 256-bit secret and proposes only
// the secret's SHA-256: the secret reaches no log, entry or snapshot.
#pragma once

#include <string_view>

#include "auth/authenticator.h"

namespace rampart::http {
class Router;
struct Request;
}  // namespace rampart::http

namespace rampart::store {

class StateMachine;
class Store;

// Whether `request` stays inside a token's key prefix: a /v1/kv/ key (or
// listed prefix) that starts with it, a /v1/txn whose every operation's key
// does. Routes that read or replace every key or mint tokens (/v1/acl/,
// /v1/snapshot) are out of scope; any other route is left to the token's
// role. A malformed key or txn body counts as in scope: its handler refuses
// it (400) without touching data.
bool request_in_scope(const http::Request& request, std::string_view prefix);

// The authenticator's view of this node's replicated tokens: O(1) by hash,
// current as of the last applied entry (a revocation counts at once).
class ReplicatedTokens final : public auth::TokenSource {
public:
    explicit ReplicatedTokens(const StateMachine& sm) : sm_(sm) {}
    bool find(std::string_view hash, auth::StoredToken* out) const override;
    bool in_scope(const http::Request& request, std::string_view prefix) const override;

private:
    const StateMachine& sm_;
};

// Add the routes, and make `auth` accept the replicated tokens beside its
// configured ones. `store` must outlive the router's use of the routes.
void install_acl(http::Router& router, Store& store, auth::Authenticator& auth);

}  // namespace rampart::store
