#include "rules.h"

#include <cJSON.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <set>

namespace ratelimit {
namespace {

constexpr size_t kMaxRules = 64;
constexpr int kMaxCidrsPerRule = 1024;

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool is_identifier(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return true;
}

bool route_from_name(std::string_view s, RouteClass* out) {
    for (size_t i = 0; i < kRouteClassCount; ++i) {
        if (s == route_class_name(static_cast<RouteClass>(i))) {
            *out = static_cast<RouteClass>(i);
            return true;
        }
    }
    return false;
}

struct JsonDeleter {
    void operator()(cJSON* j) const { cJSON_Delete(j); }
};

bool check_fields(const cJSON* obj, std::initializer_list<const char*> allowed, const char* what, std::string* e) {
    for (const cJSON* f = obj->child; f != nullptr; f = f->next) {
        bool ok = false;
        for (const char* a : allowed) {
            if (f->string != nullptr && std::string_view(f->string) == a) ok = true;
        }
        if (!ok) {
            std::string list;
            for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
            // The field name is client-of-the-policy text: keep it short and printable.
            std::string name = f->string ? f->string : "";
            if (name.size() > 64) name = name.substr(0, 64) + "...";
            for (char& c : name) {
                if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
            }
            *e = "unknown field '";
            *e += name;
            *e += "' in ";
            *e += what;
            *e += " (allowed: " + list + ")";
            return false;
        }
    }
    return true;
}

// A number field; absent (or null) gives `fallback` when `optional`.
bool number_field(const cJSON* obj, const char* field, double lo, double hi, bool integer, bool optional,
                  double fallback, double* out, std::string* e) {
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (v == nullptr || cJSON_IsNull(v)) {
        if (optional) {
            *out = fallback;
            return true;
        }
        *e = std::string(field) + " is required";
        return false;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!std::isfinite(d) || d < lo || d > hi || (integer && d != std::floor(d))) {
        char buf[160];
        (void)std::snprintf(buf, sizeof buf, "%s must be %s between %.10g and %.10g", field,
                            integer ? "an integer" : "a number", lo, hi);
        *e = buf;
        return false;
    }
    *out = d;
    return true;
}

bool parse_rule(const cJSON* r, Rule* out, std::string* e, std::vector<std::string>* warnings) {
    if (!cJSON_IsObject(r)) {
        *e = "must be an object";
        return false;
    }
    if (!check_fields(
            r,
            {"name", "match", "key", "limit", "window_s", "burst", "block", "retry_after_s", "shadow", "allow_cidrs"},
            "a rule", e)) {
        return false;
    }
    Rule rule;
    const cJSON* name = cJSON_GetObjectItemCaseSensitive(r, "name");
    if (!cJSON_IsString(name) || !is_identifier(name->valuestring)) {
        *e = "name must match [a-z0-9_]{1,64}";
        return false;
    }
    rule.name = name->valuestring;

    const cJSON* match = cJSON_GetObjectItemCaseSensitive(r, "match");
    if (!cJSON_IsObject(match)) {
        *e = "match must be an object";
        return false;
    }
    if (!check_fields(match, {"auth", "route_class"}, "match", e)) return false;
    const cJSON* auth = cJSON_GetObjectItemCaseSensitive(match, "auth");
    std::string_view auth_text = cJSON_IsString(auth) ? std::string_view(auth->valuestring) : std::string_view();
    if (auth_text == "failed")
        rule.auth = AuthMatch::Failed;
    else if (auth_text == "authenticated")
        rule.auth = AuthMatch::Authenticated;
    else if (auth_text == "unauthenticated")
        rule.auth = AuthMatch::Unauthenticated;
    else {
        *e = "match.auth must be \"failed\", \"authenticated\" or \"unauthenticated\"";
        return false;
    }
    const cJSON* rc = cJSON_GetObjectItemCaseSensitive(match, "route_class");
    if (rc != nullptr && !cJSON_IsNull(rc)) {
        if (!cJSON_IsString(rc) || !is_identifier(rc->valuestring)) {
            *e = "match.route_class must match [a-z0-9_]{1,64} (\"any\": every route)";
            return false;
        }
        rule.route_text = rc->valuestring;
        if (rule.route_text != "any") {
            rule.any_route = false;
            if (!route_from_name(rule.route_text, &rule.route)) {
                rule.route_known = false;
                warnings->push_back("rule " + rule.name + ": route class \"" + rule.route_text +
                                    "\" is not one of health, metrics, admin, api, other, any: it never matches");
            } else if (rule.auth == AuthMatch::Failed) {
                warnings->push_back("rule " + rule.name +
                                    ": an auth-failure rule counts failures on every route; route_class is ignored");
                rule.any_route = true;
            }
        }
    }

    const cJSON* key = cJSON_GetObjectItemCaseSensitive(r, "key");
    std::string_view key_text = cJSON_IsString(key) ? std::string_view(key->valuestring) : std::string_view();
    if (key_text == "ip")
        rule.key = KeyKind::Ip;
    else if (key_text == "identity")
        rule.key = KeyKind::Identity;
    else {
        *e = "key must be \"ip\" or \"identity\"";
        return false;
    }
    if (rule.key == KeyKind::Identity && rule.auth != AuthMatch::Authenticated) {
        *e = "key \"identity\" needs match.auth = \"authenticated\" (other requests have no identity)";
        return false;
    }

    if (!number_field(r, "limit", 1, 1e9, true, false, 0, &rule.limit, e)) return false;
    if (!number_field(r, "window_s", 0.001, 604800, false, false, 0, &rule.window_s, e)) return false;
    if (!number_field(r, "burst", 1, 1e9, true, true, rule.limit, &rule.burst, e)) return false;
    double retry = 0;
    if (!number_field(r, "retry_after_s", 0, 86400, true, true, 0, &retry, e)) return false;
    rule.retry_after_s = static_cast<uint32_t>(retry);

    const cJSON* shadow = cJSON_GetObjectItemCaseSensitive(r, "shadow");
    if (shadow != nullptr && !cJSON_IsNull(shadow)) {
        if (!cJSON_IsBool(shadow)) {
            *e = "shadow must be a boolean";
            return false;
        }
        rule.shadow = cJSON_IsTrue(shadow);
    }

    const cJSON* block = cJSON_GetObjectItemCaseSensitive(r, "block");
    if (block != nullptr && !cJSON_IsNull(block)) {
        if (!cJSON_IsObject(block)) {
            *e = "block must be an object";
            return false;
        }
        if (rule.auth != AuthMatch::Failed) {
            *e = "block applies to match.auth = \"failed\" rules only";
            return false;
        }
        if (!check_fields(block, {"threshold", "window_s", "duration_s"}, "block", e)) return false;
        double threshold = 0;
        if (!number_field(block, "threshold", 1, 1e9, true, false, 0, &threshold, e)) {
            *e = "block." + *e;
            return false;
        }
        if (!number_field(block, "window_s", 0.001, 604800, false, false, 0, &rule.block.window_s, e) ||
            !number_field(block, "duration_s", 1, 2592000, false, false, 0, &rule.block.duration_s, e)) {
            *e = "block." + *e;
            return false;
        }
        rule.block.enabled = true;
        rule.block.threshold = static_cast<uint32_t>(threshold);
    }

    const cJSON* cidrs = cJSON_GetObjectItemCaseSensitive(r, "allow_cidrs");
    if (cidrs != nullptr && !cJSON_IsNull(cidrs)) {
        // An empty Lua table may arrive as {} or [].
        bool empty_object = cJSON_IsObject(cidrs) && cidrs->child == nullptr;
        if (!cJSON_IsArray(cidrs) && !empty_object) {
            *e = "allow_cidrs must be a list of strings";
            return false;
        }
        if (cJSON_GetArraySize(cidrs) > kMaxCidrsPerRule) {
            *e = "allow_cidrs has more than 1024 entries";
            return false;
        }
        int i = 0;
        for (const cJSON* c = cidrs->child; c != nullptr; c = c->next, ++i) {
            Cidr net;
            std::string why;
            if (!cJSON_IsString(c)) {
                *e = "allow_cidrs[" + std::to_string(i + 1) + "] must be a string";
                return false;
            }
            if (!parse_cidr(c->valuestring, &net, &why)) {
                std::string shown = c->valuestring;
                if (shown.size() > 64) shown = shown.substr(0, 64) + "...";
                for (char& ch : shown) {
                    if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) > 0x7e || ch == '"')
                        ch = '?';
                }
                *e = "allow_cidrs[" + std::to_string(i + 1) + "] \"";
                *e += shown;
                *e += "\": " + why;
                return false;
            }
            rule.allow.add(net);
            rule.allow_text.emplace_back(c->valuestring);
        }
    }
    *out = std::move(rule);
    return true;
}

Rule make_rule(const char* name, AuthMatch auth, KeyKind key, double limit, uint32_t retry_after_s) {
    Rule r;
    r.name = name;
    r.auth = auth;
    r.key = key;
    r.limit = limit;
    r.window_s = 60;
    r.burst = limit;
    r.retry_after_s = retry_after_s;
    r.route_text = "any";
    return r;
}

// The rules a config key targets: the one named `name`, else every rule
// with match.auth == `auth`.
std::vector<Rule*> targets(std::vector<Rule>* rules, const char* name, AuthMatch auth) {
    std::vector<Rule*> out;
    for (Rule& r : *rules) {
        if (r.name == name) return {&r};
    }
    for (Rule& r : *rules) {
        if (r.auth == auth) out.push_back(&r);
    }
    return out;
}

void set_per_minute(Rule* r, int64_t per_min, const char* key, std::vector<std::string>* notes) {
    double n = static_cast<double>(per_min);
    double old_per_min = r->limit * 60.0 / r->window_s;
    if (r->limit == n && r->window_s == 60) return;
    // A burst equal to the limit follows it; another burst keeps its ratio.
    r->burst = r->burst == r->limit ? n : std::max(1.0, std::round(r->burst * n / old_per_min));
    r->limit = n;
    r->window_s = 60;
    notes->push_back("ratelimit." + std::string(key) + " = " + std::to_string(per_min) + " overrides rule " + r->name);
}

}  // namespace

const char* route_class_name(RouteClass c) {
    switch (c) {
        case RouteClass::Health: return "health";
        case RouteClass::Metrics: return "metrics";
        case RouteClass::Admin: return "admin";
        case RouteClass::Api: return "api";
        default: return "other";
    }
}

RouteClass classify_path(std::string_view path) {
    if (path == "/health" || path == "/ready") return RouteClass::Health;
    if (path == "/metrics") return RouteClass::Metrics;
    if (starts_with(path, "/v1/")) {
        if (starts_with(path, "/v1/admin/") || starts_with(path, "/v1/acl/")) return RouteClass::Admin;
        return RouteClass::Api;
    }
    return RouteClass::Other;
}

std::vector<Rule> default_rules() {
    std::vector<Rule> rules;
    Rule af = make_rule("auth_failures", AuthMatch::Failed, KeyKind::Ip, kDefaultAuthFailuresPerMin, 60);
    af.block = BlockSpec{true, kDefaultBlockThreshold, kDefaultBlockWindowS, kDefaultAuthFailuresBlockMin * 60.0};
    rules.push_back(std::move(af));
    rules.push_back(make_rule("authenticated", AuthMatch::Authenticated, KeyKind::Identity, kDefaultRequestsPerMin, 0));
    rules.push_back(make_rule("unauthenticated", AuthMatch::Unauthenticated, KeyKind::Ip, kDefaultUnauthPerMin, 0));
    return rules;
}

bool parse_rules(std::string_view json, std::vector<Rule>* out, std::string* error,
                 std::vector<std::string>* warnings) {
    std::vector<std::string> notes;
    // cJSON turns \u0000 into a NUL that silently ends the string
    // ("10.0.0.0/8\u0000junk" would read as 10.0.0.0/8): refuse it outright.
    for (size_t i = 0; i + 6 <= json.size(); ++i) {
        if (json[i] == '\\' && (json[i + 1] == 'u' || json[i + 1] == 'U') && json.substr(i + 2, 4) == "0000") {
            *error = "rules: strings must not contain NUL (\\u0000)";
            return false;
        }
    }
    const char* end = nullptr;
    std::unique_ptr<cJSON, JsonDeleter> root(cJSON_ParseWithLengthOpts(json.data(), json.size(), &end, 0));
    if (root && end != nullptr) {
        // Nothing but white space may follow the value.
        for (const char* c = end; c < json.data() + json.size(); ++c) {
            if (*c != ' ' && *c != '\t' && *c != '\n' && *c != '\r' && *c != '\0') root.reset();
        }
    }
    if (!root) {
        *error = "rules: not valid JSON";
        return false;
    }
    bool empty_object = cJSON_IsObject(root.get()) && root->child == nullptr;
    if (!cJSON_IsArray(root.get()) && !empty_object) {
        *error = "rules: must be a list of rules";
        return false;
    }
    std::vector<Rule> rules;
    std::set<std::string> names;
    size_t i = 0;
    for (const cJSON* r = root->child; r != nullptr; r = r->next, ++i) {
        if (i >= kMaxRules) {
            *error = "rules: more than " + std::to_string(kMaxRules) + " rules";
            return false;
        }
        Rule rule;
        std::string e;
        std::string label = "rules[" + std::to_string(i + 1) + "]";
        const cJSON* n = cJSON_IsObject(r) ? cJSON_GetObjectItemCaseSensitive(r, "name") : nullptr;
        if (cJSON_IsString(n) && is_identifier(n->valuestring)) label += " (" + std::string(n->valuestring) + ")";
        if (!parse_rule(r, &rule, &e, &notes)) {
            *error = label;
            *error += ": " + e;
            return false;
        }
        if (!names.insert(rule.name).second) {
            *error = label + ": duplicate rule name";
            return false;
        }
        rules.push_back(std::move(rule));
    }
    *out = std::move(rules);
    if (warnings != nullptr) warnings->insert(warnings->end(), notes.begin(), notes.end());
    return true;
}

std::vector<std::string> apply_overrides(std::vector<Rule>* rules, const Overrides& o) {
    std::vector<std::string> notes;
    if (o.auth_failures_per_min != kUnset) {
        for (Rule* r : targets(rules, "auth_failures", AuthMatch::Failed)) {
            set_per_minute(r, o.auth_failures_per_min, "auth_failures_per_min", &notes);
        }
    }
    if (o.auth_failures_block_min != kUnset) {
        for (Rule* r : targets(rules, "auth_failures", AuthMatch::Failed)) {
            if (r->auth != AuthMatch::Failed) continue;
            if (o.auth_failures_block_min <= 0) {
                r->block.enabled = false;
            } else {
                if (!r->block.enabled) {
                    r->block = BlockSpec{true, kDefaultBlockThreshold, kDefaultBlockWindowS, 0};
                }
                r->block.duration_s = static_cast<double>(o.auth_failures_block_min) * 60.0;
            }
            notes.push_back("ratelimit.auth_failures_block_min = " + std::to_string(o.auth_failures_block_min) +
                            " overrides rule " + r->name);
        }
    }
    if (o.requests_per_min != kUnset) {
        for (Rule* r : targets(rules, "authenticated", AuthMatch::Authenticated)) {
            set_per_minute(r, o.requests_per_min, "requests_per_min", &notes);
        }
    }
    if (o.unauth_per_min != kUnset) {
        for (Rule* r : targets(rules, "unauthenticated", AuthMatch::Unauthenticated)) {
            set_per_minute(r, o.unauth_per_min, "unauth_per_min", &notes);
        }
    }
    return notes;
}

}  // namespace ratelimit
