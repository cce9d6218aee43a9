#include "policy/specs.h"

#include <arpa/inet.h>

#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <set>

namespace rampart::policy {

namespace {

using Kind = PolicyValue::Kind;

std::string cat(std::initializer_list<std::string_view> parts) {
    std::string out;
    for (std::string_view p : parts) out += p;
    return out;
}

bool is_identifier(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    for (char ch : s) {
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) return false;
    }
    return true;
}

bool valid_cidr(const std::string& s) {
    std::string addr = s;
    long prefix = -1;
    size_t slash = s.find('/');
    if (slash != std::string::npos) {
        addr = s.substr(0, slash);
        std::string bits = s.substr(slash + 1);
        if (bits.empty() || bits.size() > 3 || bits.find_first_not_of("0123456789") != std::string::npos) return false;
        prefix = std::stol(bits);
    }
    unsigned char buf[16];
    if (inet_pton(AF_INET, addr.c_str(), buf) == 1) return prefix <= 32;
    if (inet_pton(AF_INET6, addr.c_str(), buf) == 1) return prefix <= 128;
    return false;
}

// Checks one numeric field; `integer` also requires a whole number.
std::string check_number(const PolicyValue& v, const char* field, double lo, double hi, bool integer) {
    double d = v.as_number(NAN);
    if (!v.is_number() || !std::isfinite(d) || d < lo || d > hi || (integer && d != std::floor(d))) {
        char buf[160];
        (void)std::snprintf(buf, sizeof buf, "%s must be %s between %.17g and %.17g", field,
                            integer ? "an integer" : "a number", lo, hi);
        return buf;
    }
    return "";
}

std::string check_fields(const PolicyValue& v, const std::set<std::string>& allowed, const char* what) {
    for (const auto& [name, value] : v.as_table().fields) {
        if (!allowed.count(name)) {
            std::string list;
            for (const auto& a : allowed) list += cat({list.empty() ? "" : ", ", a});
            return cat({"unknown field '", name, "' in ", what, " (allowed: ", list, ")"});
        }
    }
    if (!v.as_table().array.empty()) return std::string(what) + " must have named fields only";
    return "";
}

std::string check_rule(PolicyValue* rule_value) {
    const PolicyValue& r = *rule_value;
    if (!r.is_table()) return "must be a table";
    std::string e = check_fields(
        r, {"name", "match", "key", "limit", "window_s", "burst", "block", "retry_after_s", "shadow", "allow_cidrs"},
        "a rule");
    if (!e.empty()) return e;
    if (!r["name"].is_string() || !is_identifier(r["name"].as_string())) return "name must match [a-z0-9_]{1,64}";
    const PolicyValue& match = r["match"];
    if (!match.is_table()) return "match must be a table";
    if (!(e = check_fields(match, {"auth", "route_class"}, "match")).empty()) return e;
    const std::string& auth = match["auth"].as_string();
    if (auth != "failed" && auth != "authenticated" && auth != "unauthenticated") {
        return "match.auth must be \"failed\", \"authenticated\" or \"unauthenticated\"";
    }
    if (!match["route_class"].is_nil() &&
        (!match["route_class"].is_string() || !is_identifier(match["route_class"].as_string()))) {
        return "match.route_class must match [a-z0-9_]{1,64} (\"any\": every route)";
    }
    const std::string& key = r["key"].as_string();
    if (key != "ip" && key != "identity") return "key must be \"ip\" or \"identity\"";
    if (key == "identity" && auth != "authenticated") {
        return "key \"identity\" needs match.auth = \"authenticated\" (other requests have no identity)";
    }
    if (!(e = check_number(r["limit"], "limit", 1, 1e9, true)).empty()) return e;
    if (!(e = check_number(r["window_s"], "window_s", 0.001, 604800, false)).empty()) return e;
    if (!r["burst"].is_nil() && !(e = check_number(r["burst"], "burst", 1, 1e9, true)).empty()) return e;
    if (!r["retry_after_s"].is_nil() &&
        !(e = check_number(r["retry_after_s"], "retry_after_s", 0, 86400, true)).empty()) {
        return e;
    }
    if (!r["shadow"].is_nil() && !r["shadow"].is_bool()) return "shadow must be a boolean";
    const PolicyValue& block = r["block"];
    if (!block.is_nil()) {
        if (!block.is_table()) return "block must be a table";
        if (!(e = check_fields(block, {"threshold", "window_s", "duration_s"}, "block")).empty()) return e;
        if (!(e = check_number(block["threshold"], "block.threshold", 1, 1e9, true)).empty()) return e;
        if (!(e = check_number(block["window_s"], "block.window_s", 0.001, 604800, false)).empty()) return e;
        if (!(e = check_number(block["duration_s"], "block.duration_s", 1, 2592000, false)).empty()) return e;
    }
    const PolicyValue& cidrs = r["allow_cidrs"];
    if (!cidrs.is_nil()) {
        if (!cidrs.is_table() || !cidrs.as_table().fields.empty()) return "allow_cidrs must be a list of strings";
        for (const PolicyValue& c : cidrs.as_table().array) {
            if (!c.is_string() || !valid_cidr(c.as_string())) {
                return "allow_cidrs: \"" + c.as_string() + "\" is not an address or CIDR block";
            }
        }
    }
    // Normalize: every optional field present, so consumers need no defaults.
    PolicyTable t = r.as_table();
    auto set_default = [&t](const char* name, PolicyValue v) {
        for (auto& f : t.fields) {
            if (f.first == name) return;
        }
        t.fields.emplace_back(name, std::move(v));
    };
    set_default("burst", r["limit"]);
    set_default("retry_after_s", 0);
    set_default("shadow", false);
    set_default("allow_cidrs", PolicyValue(PolicyTable{}));
    if (match["route_class"].is_nil()) {
        PolicyTable m = match.as_table();
        m.fields.emplace_back("route_class", "any");
        for (auto& f : t.fields) {
            if (f.first == "match") {
                f.second = PolicyValue(std::move(m));
                break;
            }
        }
    }
    *rule_value = PolicyValue(std::move(t));
    return "";
}

std::string validate_shipped(std::string_view entry, PolicyValue* value) {
    if (entry == "rules") return validate_ratelimit_rules(value);
    if (entry == "budget_ms") return check_number(*value, "budget_ms()", 1, 600000, false);
    return "";
}

}  // namespace

std::string validate_ratelimit_rules(PolicyValue* rules) {
    if (!rules->is_table() || !rules->as_table().fields.empty()) return "rules() must return a list of rules";
    PolicyTable out;
    std::set<std::string> names;
    for (size_t i = 0; i < rules->size(); ++i) {
        PolicyValue rule = rules->at(i);
        std::string e = check_rule(&rule);
        std::string label = cat({"rules()[", std::to_string(i + 1), "]"});
        if (rules->at(i)["name"].is_string()) label += cat({" (", rules->at(i)["name"].as_string(), ")"});
        if (!e.empty()) return cat({label, ": ", e});
        if (!names.insert(rule["name"].as_string()).second) return label + ": duplicate rule name";
        out.array.push_back(std::move(rule));
    }
    *rules = PolicyValue(std::move(out));
    return "";
}

const std::vector<std::string>& retry_classes() {
    static const std::vector<std::string> classes = {"success",  "network_error", "tls_error",
                                                     "http_4xx", "http_5xx",      "timeout"};
    return classes;
}

const std::vector<std::string>& recovery_actions() {
    static const std::vector<std::string> actions = {"immediate", "backoff", "circuit_breaker"};
    return actions;
}

const std::vector<PolicySpec>& shipped_specs() {
    static const std::vector<PolicySpec> specs = [] {
        std::vector<PolicySpec> s;
        s.push_back({"ratelimit", {{"rules", 0, true, false, {}, Kind::Table, {}}}, validate_shipped});
        s.push_back(
            {"retry",
             {{"classify", 1, false, true, {PolicyValue::object({{"status", 503}})}, Kind::String, retry_classes()},
              {"should_retry", 3, false, true, {"timeout", 1, true}, Kind::Bool, {}}},
             validate_shipped});
        s.push_back({"backoff",
                     {{"delay_ms", 2, false, true, {1, 0.5}, Kind::Number, {}},
                      {"budget_ms", 0, true, false, {}, Kind::Number, {}}},
                     validate_shipped});
        s.push_back({"recovery",
                     {{"action", 3, false, true, {"rpc_client", 1, 60}, Kind::String, recovery_actions()},
                      {"backoff_ms", 2, false, true, {1, 0.5}, Kind::Number, {}},
                      {"cooldown_ms", 2, false, true, {"rpc_client", 1}, Kind::Number, {}},
                      // The recovery decisions (core/resilience/recovery_hooks.h).
                      {"on_plugin_failure",
                       2,
                       false,
                       true,
                       {"metrics", "metrics.push"},
                       Kind::String,
                       {"disable", "fail_closed"}},
                      {"on_quorum_loss", 0, false, true, {}, Kind::String, {"refuse", "serve_stale"}},
                      {"on_disk_full", 0, false, true, {}, Kind::String, {"transfer", "stay"}},
                      {"on_pin_mismatch", 1, false, true, {"node_2"}, Kind::Number, {}}},
                     validate_shipped});
        return s;
    }();
    return specs;
}

}  // namespace rampart::policy
