#include "cluster/status_routes.h"

#include <string>

#include "cluster/status.h"
#include "http/exchange.h"
#include "http/router.h"
#include "util/json.h"

namespace rampart::cluster {

void install_status_routes(http::Router& router, const ClusterStatus& status) {
    // Load balancers and scripts poll these: sampled in the access log.
    router.add(
        "GET", "/v1/status/leader",
        [&status](http::Exchange& ex) {
            std::string body;
            util::json_string_append(body, status.leader_address());
            ex.respond(http::Response::json(200, body + "\n"));
        },
        /*high_volume=*/true);
    router.add(
        "GET", "/v1/status/peers",
        [&status](http::Exchange& ex) {
            std::string body = "[";
            for (const std::string& address : status.voter_addresses()) {
                if (body.size() > 1) body += ',';
                util::json_string_append(body, address);
            }
            ex.respond(http::Response::json(200, body + "]\n"));
        },
        /*high_volume=*/true);
    router.add("GET", "/v1/cluster/status", [&status](http::Exchange& ex) {
        ex.respond(http::Response::json(200, status_json(status.snapshot())));
    });
}

}  // namespace rampart::cluster
