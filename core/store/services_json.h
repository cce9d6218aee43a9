// Consul's JSON shapes for the services catalog (store/services.h):
//   in   PUT /v1/agent/service/register   {"ID","Name","Address","Port","Tags","Meta",
//                                          "Check":{"CheckID","Name","Notes","TTL","Status"},"Checks":[...]}
//        PUT /v1/agent/check/update/<id>   {"Status","Output"}
//   out  agent services/checks, catalog services, catalog service nodes,
//        health service entries and health checks, as Consul renders them.
// Field names match case-insensitively, as Go's decoder (and so Consul) does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/command.h"
#include "store/services.h"

namespace rampart::store {

struct RegisterParse {
    ServiceRegister reg;
    std::string error;  // for a 400; empty on success
    bool ok() const { return error.empty(); }
};
// Consul's defaults: ID = Name; check IDs "service:<id>" (":<n>" appended
// when there are several); check names "Service '<name>' check"; TTL checks
// start critical. Only TTL checks are supported.
RegisterParse parse_service_registration(std::string_view body);

struct CheckUpdateParse {
    CheckStatus status = CheckStatus::Passing;
    std::string output;
    std::string error;
    bool ok() const { return error.empty(); }
};
CheckUpdateParse parse_check_update(std::string_view body);

// Go's time.ParseDuration ("15s", "1m30s", "1.5h", "250ms"), rounded up to
// whole milliseconds. False on anything else, or a negative value.
bool parse_go_duration_ms(std::string_view text, uint64_t* ms);
// "15s", "1m30s", "250ms": Go's String() for whole milliseconds.
std::string format_duration_ms(uint64_t ms);

// Outputs longer than Limits::kNote are cut, as Consul does, at a UTF-8
// character boundary.
std::string truncate_output(std::string text);

// The node answering, as Consul's clients expect to see one.
struct NodeInfo {
    std::string name;     // node.id
    std::string address;  // the API listen host
};

std::string render_agent_services(const Catalog& c);
std::string render_agent_checks(const Catalog& c, const NodeInfo& node);
std::string render_catalog_services(const Catalog& c);
std::string render_catalog_service(const std::vector<ServicePtr>& services, const NodeInfo& node);
std::string render_health_service(const Catalog& c, const std::vector<ServicePtr>& services, const NodeInfo& node);
std::string render_health_checks(const Catalog& c, const std::vector<CheckPtr>& checks, const NodeInfo& node);

}  // namespace rampart::store
