#include "cluster/redirect.h"

#include "util/json.h"

namespace rampart::cluster {
namespace {

http::Response unavailable(const char* code, const std::string& message) {
    http::Response r = http::Response::error(503, code, message);
    r.headers.emplace_back("Retry-After", "1");
    return r;
}

}  // namespace

http::Response redirect_to_leader(const http::Request& request, const std::string& leader_node_id,
                                  const MemberInfo* leader) {
    if (leader_node_id.empty()) return unavailable("no_leader", "the cluster has no leader right now; retry");
    if (leader == nullptr || leader->api_address.empty()) {
        return unavailable("leader_address_unknown",
                           "the leader " + leader_node_id + " has not advertised its API address yet; retry");
    }
    std::string location =
        (leader->api_scheme.empty() ? "http" : leader->api_scheme) + "://" + leader->api_address + request.target;
    std::string body = "{\"leader\":";
    util::json_string_append(body, leader_node_id);
    body += ",\"location\":";
    util::json_string_append(body, location);
    http::Response r = http::Response::json(307, body + "}\n");
    r.headers.emplace_back("Location", std::move(location));
    r.headers.emplace_back(kLeaderHeader, leader_node_id);
    return r;
}

}  // namespace rampart::cluster
