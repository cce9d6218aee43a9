// The services catalog over HTTP, in Consul's shapes (store/services.h):
//   PUT /v1/agent/service/register            a service definition with TTL checks
//   PUT /v1/agent/service/deregister/<id>
//   PUT /v1/agent/check/pass|warn|fail/<id>   ?note=
//   PUT /v1/agent/check/update/<id>           {"Status","Output"}
//   GET /v1/agent/services, /v1/agent/checks
//   GET /v1/catalog/services, /v1/catalog/service/<name>   ?tag=
//   GET /v1/health/service/<name>             ?passing ?tag=
//   GET /v1/health/checks/<service>, /v1/health/state/<any|passing|warning|critical>
// Reads take ?consistency= (?stale, ?consistent) and block with
// ?index=N&wait=30s on the catalog's index (X-Consul-Index). Tokens and
// roles are enforced before these handlers run (core/auth): PUT needs
// write, GET read.
#pragma once

#include <string>
#include <string_view>

namespace rampart::http {
class Router;
}

namespace rampart::store {

class Store;

// `node_name` (node.id) and the host of `api_listen` (api.listen) stand for
// the Consul node in answers. `store` must outlive the router's use of them.
void install_service_routes(http::Router& router, Store& store, std::string node_name, std::string_view api_listen);

}  // namespace rampart::store
