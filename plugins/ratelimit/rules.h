// Rate-limit rules: what policies/ratelimit.lua's rules() returns, parsed
// from the JSON the host passes to on_policy into plain structs, so no Lua
// and no JSON is touched per request. Also the built-in defaults (used until
// the first on_policy) and the `ratelimit` config overrides.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bucket.h"
#include "cidr.h"

namespace ratelimit {

// Which requests a rule counts.
enum class AuthMatch : uint8_t {
    Failed,           // authentication failures (on_auth_failure), per source address
    Authenticated,    // requests with a token or a client certificate
    Unauthenticated,  // requests without credentials
};

enum class KeyKind : uint8_t { Ip, Identity };

// Route classes, from the request path (classify_path). A rule names one,
// or "any".
enum class RouteClass : uint8_t { Health, Metrics, Admin, Api, Other };
constexpr size_t kRouteClassCount = 5;

const char* route_class_name(RouteClass c);
// "/health", "/ready" -> health; "/metrics" -> metrics; "/v1/admin/...",
// "/v1/acl/..." -> admin; other "/v1/..." -> api; anything else -> other.
RouteClass classify_path(std::string_view path);

// Escalation of an auth-failure rule: `threshold` failures within
// `window_s` block the address for `duration_s`.
struct BlockSpec {
    bool enabled = false;
    uint32_t threshold = 0;
    double window_s = 0;
    double duration_s = 0;
};

struct Rule {
    std::string name;  // [a-z0-9_]{1,64}; buckets are kept by name across reloads
    AuthMatch auth = AuthMatch::Unauthenticated;
    bool any_route = true;
    RouteClass route = RouteClass::Other;  // when !any_route
    bool route_known = true;               // false: a class this plugin does not know; never matches
    std::string route_text;                // as the policy wrote it
    KeyKind key = KeyKind::Ip;
    double limit = 1;  // tokens per window
    double window_s = 60;
    double burst = 1;            // bucket capacity
    uint32_t retry_after_s = 0;  // 0: computed (time to the next token; for auth failures, window_s)
    BlockSpec block;
    bool shadow = false;  // counted, never enforced
    CidrList allow;       // addresses this rule never limits
    std::vector<std::string> allow_text;

    Rate rate() const { return Rate::of(limit, window_s, burst); }
    // Same shape: a swap keeps the bucket as is.
    bool same_rate(const Rule& o) const { return rate() == o.rate(); }
};

// The seed's numbers (nebulagc task 00023) and the config keys' defaults.
constexpr int64_t kDefaultAuthFailuresPerMin = 10;
constexpr int64_t kDefaultAuthFailuresBlockMin = 60;
constexpr int64_t kDefaultRequestsPerMin = 100;
constexpr int64_t kDefaultUnauthPerMin = 30;
constexpr uint32_t kDefaultBlockThreshold = 50;
constexpr double kDefaultBlockWindowS = 600;

// auth_failures (failed, ip, 10/60 s, Retry-After 60, 50 in 600 s -> 3600 s
// block), authenticated (identity, 100/60 s), unauthenticated (ip, 30/60 s):
// the same rules policies/ratelimit.lua ships.
std::vector<Rule> default_rules();

// Parses rules() JSON. All or nothing: on any problem returns false, sets
// `error` ("rules[2] (burst_api): limit must be ...") and leaves `out`
// alone. `warnings` gets notes that do not reject the set (a route class
// this plugin does not know).
bool parse_rules(std::string_view json, std::vector<Rule>* out, std::string* error, std::vector<std::string>* warnings);

// The `ratelimit` config section (environment > rampart.yml, resolved by
// the core).
// kUnset: the key was not set (file or environment), so the policy's
// number stands.
constexpr int64_t kUnset = -1;
struct Overrides {
    int64_t auth_failures_per_min = kUnset;
    int64_t auth_failures_block_min = kUnset;
    int64_t requests_per_min = kUnset;
    int64_t unauth_per_min = kUnset;
    bool operator==(const Overrides&) const = default;
};

// Applies the config keys that were set over the policy's numbers (unset
// ones leave the policy alone: environment > rampart.yml > policy). Each key targets the rule of the shipped policy's
// name (auth_failures, authenticated, unauthenticated); if the policy has no rule of that name, every rule with the
// same match.auth. Returns one note per change, for the log.
std::vector<std::string> apply_overrides(std::vector<Rule>* rules, const Overrides& o);

}  // namespace ratelimit
