// What the host requires of each shipped policy, checked at load before a
// generation can be swapped in: the entry points exist, are Lua functions
// and take no more parameters than the host passes; captured entry points
// (zero-argument, called once at load) return valid data; probe calls
// return the right kind of value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "policy/value.h"

namespace rampart::policy {

struct EntryPoint {
    std::string name;
    int params = 0;        // arguments the host passes
    bool capture = false;  // call once at load; keep the result as data(policy, name)
    bool probe = false;    // call once at load with probe_args; check the result
    std::vector<PolicyValue> probe_args;
    PolicyValue::Kind returns = PolicyValue::Kind::Nil;  // Nil: any kind
    std::vector<std::string> one_of;                     // allowed string results
};

struct PolicySpec {
    std::string name;  // policies/<name>.lua
    std::vector<EntryPoint> entries;
    // Checks a captured value and may normalize it (fill in defaults).
    // Returns "" or what is wrong.
    std::string (*validate)(std::string_view entry, PolicyValue* value) = nullptr;
};

// ratelimit, retry, backoff, recovery: the contract docs/policies.md states.
const std::vector<PolicySpec>& shipped_specs();

// The retry classes and recovery actions, in the seeds' order.
const std::vector<std::string>& retry_classes();
const std::vector<std::string>& recovery_actions();

// Validates ratelimit's rules() and fills in the optional fields (burst =
// limit, retry_after_s = 0, shadow = false, allow_cidrs = {},
// match.route_class = "any"). Returns "" or the first problem found.
std::string validate_ratelimit_rules(PolicyValue* rules);

}  // namespace rampart::policy
