// The KV HTTP API (brief "HTTP API"; Consul's /v1/kv and /v1/txn):
//   GET    /v1/kv/<key>  ?recurse ?keys[&separator=] ?raw
//                        ?consistency=stale|default|strong (?stale, ?consistent)
//                        ?index=N&wait=30s (blocking)
//   PUT    /v1/kv/<key>  body = value; ?flags= ?cas=   -> true / false
//   DELETE /v1/kv/<key>  ?recurse ?cas=                -> true / false
//   PUT    /v1/txn       Consul's txn format; 409 when it rolls back
// Tokens and roles are enforced before these handlers run (core/auth).
#pragma once

namespace rampart::http {
class Router;
}

namespace rampart::store {

class Store;

// The routes keep a reference to `store`, which must outlive the router's
// use of them.
void install_kv_routes(http::Router& router, Store& store);

}  // namespace rampart::store
