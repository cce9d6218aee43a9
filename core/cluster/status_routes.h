// Cluster status over HTTP (docs/cluster.md, "Cluster status"):
//   GET /v1/status/leader   the leader's peer address as a JSON string, ""
//                           when there is none (as Consul answers)
//   GET /v1/status/peers    the voters' peer addresses, a JSON array
//   GET /v1/cluster/status  this node and every member (status.h)
// /v1/status/… need no token (the brief); /v1/cluster/status needs read.
#pragma once

namespace rampart::http {
class Router;
}

namespace rampart::cluster {

class ClusterStatus;

// `status` must outlive the router's use of these routes.
void install_status_routes(http::Router& router, const ClusterStatus& status);

}  // namespace rampart::cluster
