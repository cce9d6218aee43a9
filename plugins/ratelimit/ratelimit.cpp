// The ratelimit plugin: token buckets per source address, per identity and
// per route class, with rules from policies/ratelimit.lua (delivered as
// JSON through on_policy, parsed once per policy generation) and numbers
// overridable by the `ratelimit` config section. See README.md.
//
// This file is the ABI glue; the limiter itself (limiter.h) knows nothing
// of the host.
#include <cerrno>
#include <cstdio>
#include <memory>
#include <new>
#include <string>

#include "limiter.h"
#include "rampart/plugin.h"
#include "rules.h"

namespace {

using namespace ratelimit;

// The first four keys are the core's `ratelimit` keys (the brief fixes their
// names, RAMPART_RATELIMIT_*); the core validates them and passes them in
// with the same types and bounds.
const rampart_config_key kSchema[] = {
    {"auth_failures_per_min", RAMPART_CONFIG_INT, "10", 1, 1000000,
     "Failed authentications per source IP per minute before 429"},
    {"auth_failures_block_min", RAMPART_CONFIG_INT, "60", 0, 100000,
     "Minutes a source stays blocked after repeated auth failures (0: never blocked)"},
    {"requests_per_min", RAMPART_CONFIG_INT, "100", 1, 1000000, "Authenticated requests per identity per minute"},
    {"unauth_per_min", RAMPART_CONFIG_INT, "30", 1, 1000000,
     "Unauthenticated requests (health checks etc.) per source IP per minute"},
    {"max_tracked_keys", RAMPART_CONFIG_INT, "100000", 16, 10000000,
     "Source addresses and identities tracked at once; the least recently seen are forgotten first"},
    {"allow_cidrs", RAMPART_CONFIG_STRING_LIST, "", 0, 0,
     "Networks no rule limits, added to every rule's allow_cidrs (e.g. 127.0.0.0/8 for benchmarks)"},
    {nullptr, RAMPART_CONFIG_INT, nullptr, 0, 0, nullptr},
};

const char* const kPolicyData[] = {"ratelimit:rules", nullptr};

// Counters are summed in the plugin and handed to the host once a second
// (a timer; also right before a /metrics request is handled), so the
// per-request path never builds label vectors.
constexpr uint64_t kFlushEveryMs = 1000;
// Cold keys looked at per flush for dropping (ratelimit::Limiter::trim).
constexpr size_t kTrimPerFlush = 256;

struct State {
    rampart_plugin_ctx* ctx = nullptr;
    const rampart_host* host = nullptr;
    Limiter limiter;
    std::vector<Rule> base;  // the policy's rules, or the built-in defaults
    bool from_policy = false;
    Overrides overrides;
    std::vector<std::string> allow_text;  // config allow_cidrs, as written
    std::vector<Cidr> allow;              // ... parsed
    rampart_metric* decisions = nullptr;
    rampart_metric* auth_failures = nullptr;
    rampart_metric* tracked = nullptr;
    uint64_t last_flush_ms = 0;
    Outcome outcome;
    std::vector<BlockEvent> events;
};

void log(State* s, rampart_log_level level, const std::string& msg) { s->host->log(s->ctx, level, msg.c_str()); }

uint64_t now_ms(State* s) { return s->host->now_ms(s->ctx); }

// A key the file or environment set, or kUnset. Hosts older than
// config_is_set cannot say: a value equal to the default counts as unset.
int64_t override_of(State* s, const char* key, int64_t default_value) {
    int64_t v = s->host->config_int(s->ctx, key);
    bool set = RAMPART_HOST_HAS(s->host, config_is_set) ? s->host->config_is_set(s->ctx, key) != 0 : v != default_value;
    return set ? v : kUnset;
}

Overrides read_overrides(State* s) {
    Overrides o;
    o.auth_failures_per_min = override_of(s, "auth_failures_per_min", kDefaultAuthFailuresPerMin);
    o.auth_failures_block_min = override_of(s, "auth_failures_block_min", kDefaultAuthFailuresBlockMin);
    o.requests_per_min = override_of(s, "requests_per_min", kDefaultRequestsPerMin);
    o.unauth_per_min = override_of(s, "unauth_per_min", kDefaultUnauthPerMin);
    return o;
}

// The config's allow_cidrs; false (and `error`) if one is not a network.
bool read_allow(State* s, std::vector<std::string>* text, std::vector<Cidr>* nets, std::string* error) {
    size_t n = s->host->config_list_size(s->ctx, "allow_cidrs");
    for (size_t i = 0; i < n; ++i) {
        const char* raw = s->host->config_list_item(s->ctx, "allow_cidrs", i);
        std::string_view item = raw ? raw : "";
        // "127.0.0.0/8, ::1" from the environment: spaces around items are fine.
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        std::string why;
        Cidr c;
        if (!parse_cidr(item, &c, &why)) {
            std::string shown(item);
            if (shown.size() > 64) shown = shown.substr(0, 64) + "...";
            *error = "[ratelimit] allow_cidrs[" + std::to_string(i + 1) + "] \"";
            *error += shown;
            *error += "\": " + why;
            return false;
        }
        text->emplace_back(item);
        nets->push_back(c);
    }
    return true;
}

size_t read_max_keys(State* s) {
    int64_t n = s->host->config_int(s->ctx, "max_tracked_keys");
    return n < 16 ? 16 : static_cast<size_t>(n);
}

void flush(State* s, uint64_t now) {
    s->last_flush_ms = now;
    s->limiter.drain_decisions([s](const std::string& rule, Decision d, uint64_t n) {
        const char* labels[2] = {rule.c_str(), decision_name(d)};
        if (s->decisions) s->host->counter_add(s->decisions, labels, static_cast<double>(n));
    });
    s->limiter.drain_auth_failures([s](const std::string& reason, uint64_t n) {
        const char* labels[1] = {reason.c_str()};
        if (s->auth_failures) s->host->counter_add(s->auth_failures, labels, static_cast<double>(n));
    });
    s->limiter.trim(now, kTrimPerFlush);
    if (s->tracked) s->host->gauge_set(s->tracked, nullptr, static_cast<double>(s->limiter.tracked()));
}

void maybe_flush(State* s, uint64_t now, bool force) {
    if (force || now - s->last_flush_ms >= kFlushEveryMs || now < s->last_flush_ms) flush(s, now);
}

void cb_flush_timer(void* arg) {
    auto* s = static_cast<State*>(arg);
    try {
        flush(s, now_ms(s));
    } catch (...) {
    }
}

std::string describe(const std::vector<Rule>& rules) {
    std::string out;
    for (const Rule& r : rules) {
        if (!out.empty()) out += ", ";
        char buf[96];
        (void)std::snprintf(buf, sizeof buf, "%.0f/%gs", r.limit, r.window_s);
        out += r.name;
        out += ' ';
        out += buf;
        if (r.shadow) out += " (shadow)";
    }
    return out.empty() ? "none" : out;
}

// The effective rules: the base (policy or defaults) under the config keys.
void apply(State* s, const char* why) {
    uint64_t now = now_ms(s);
    std::vector<Rule> rules = s->base;
    std::vector<std::string> notes = apply_overrides(&rules, s->overrides);
    for (Rule& r : rules) {
        for (size_t i = 0; i < s->allow.size(); ++i) {
            r.allow.add(s->allow[i]);
            r.allow_text.push_back(s->allow_text[i]);
        }
    }
    flush(s, now);  // counts of the outgoing rule set first
    s->limiter.set_rules(std::move(rules), now);
    for (const std::string& n : notes) log(s, RAMPART_LOG_INFO, n);
    log(s, RAMPART_LOG_INFO,
        std::string("ratelimit rules ") + why + " (" + (s->from_policy ? "policy" : "built-in defaults") +
            "): " + describe(s->limiter.rules()));
}

int cb_init(rampart_plugin_ctx* ctx, const rampart_host* host, void** state) {
    try {
        std::unique_ptr<State> s(new State());
        s->ctx = ctx;
        s->host = host;
        const char* rule_labels[2] = {"rule", "decision"};
        const char* reason_labels[1] = {"reason"};
        s->decisions = host->counter_register(ctx, "rampart_ratelimit_decisions_total",
                                              "Rate-limit decisions by rule and outcome", rule_labels, 2);
        s->auth_failures = host->counter_register(ctx, "rampart_auth_failures_total",
                                                  "Failed authentications by reason", reason_labels, 1);
        s->tracked = host->gauge_register(ctx, "rampart_ratelimit_tracked_keys",
                                          "Source addresses and identities the rate limiter tracks", nullptr, 0);
        s->overrides = read_overrides(s.get());
        s->limiter.set_max_keys(read_max_keys(s.get()));
        std::string error;
        if (!read_allow(s.get(), &s->allow_text, &s->allow, &error)) {
            log(s.get(), RAMPART_LOG_ERROR, error);
            return -EINVAL;
        }
        s->base = default_rules();
        s->last_flush_ms = now_ms(s.get());
        apply(s.get(), "loaded");
        if (RAMPART_HOST_HAS(host, timer_start)) {
            // Never keeps the daemon running (plugin.h); the host stops it at unload.
            host->timer_start(ctx, kFlushEveryMs, kFlushEveryMs, cb_flush_timer, s.get());
        }
        *state = s.release();
        return 0;
    } catch (const std::bad_alloc&) {
        return -ENOMEM;
    } catch (...) {
        return -EINVAL;
    }
}

int cb_reload(void* state, rampart_plugin_ctx*) {
    auto* s = static_cast<State*>(state);
    try {
        std::vector<std::string> allow_text;
        std::vector<Cidr> allow;
        std::string error;
        if (!read_allow(s, &allow_text, &allow, &error)) {
            log(s, RAMPART_LOG_ERROR, error + "; keeping the previous settings");
            return -EINVAL;
        }
        s->limiter.set_max_keys(read_max_keys(s));
        Overrides o = read_overrides(s);
        if (!(o == s->overrides) || allow_text != s->allow_text) {
            s->overrides = o;
            s->allow_text = std::move(allow_text);
            s->allow = std::move(allow);
            apply(s, "reloaded");
        }
        return 0;
    } catch (...) {
        return -ENOMEM;
    }
}

void cb_fini(void* state) {
    auto* s = static_cast<State*>(state);
    std::unique_ptr<State> owned(s);
    if (s == nullptr) return;
    try {
        flush(s, now_ms(s));
    } catch (...) {
    }
}

rampart_verdict cb_admission(void* state, rampart_request* req) {
    auto* s = static_cast<State*>(state);
    try {
        const rampart_host* h = s->host;
        const rampart_identity* id = h->request_identity(req);
        RequestInfo info;
        if (id != nullptr) {
            switch (id->kind) {
                case RAMPART_IDENTITY_TOKEN:
                    info.caller = Caller::Authenticated;
                    info.identity_kind = 't';
                    break;
                case RAMPART_IDENTITY_CERTIFICATE:
                    info.caller = Caller::Authenticated;
                    info.identity_kind = 'c';
                    break;
                case RAMPART_IDENTITY_PEER: info.caller = Caller::Peer; break;
                default: info.caller = Caller::Unauthenticated; break;
            }
            if (id->name) info.identity = id->name;
            if (id->source_ip) info.source_ip = id->source_ip;
        }
        const char* path = h->request_path(req);
        if (path) info.path = path;
        uint64_t now = now_ms(s);
        Outcome& out = s->outcome;
        s->limiter.admit(info, now, &out);
        if (out.exempt) return RAMPART_CONTINUE;
        if (out.has_headers) {
            h->response_header_add(req, "RateLimit-Policy", out.policy->c_str());
            h->response_header_add(req, "RateLimit", out.limit.c_str());
        }
        maybe_flush(s, now, out.route == RouteClass::Metrics);
        if (!out.refuse) return RAMPART_CONTINUE;
        char retry[16];
        (void)std::snprintf(retry, sizeof retry, "%u", out.retry_after_s);
        h->response_header_add(req, "Retry-After", retry);
        h->respond(req, 429, "application/json", out.body.data(), out.body.size());
        return RAMPART_ANSWERED;
    } catch (...) {
        // Fail open: a limiter that cannot decide must not take the API down.
        log(s, RAMPART_LOG_ERROR, "ratelimit: admission failed (out of memory?); request let through");
        return RAMPART_CONTINUE;
    }
}

void cb_auth_failure(void* state, const char* source_ip, const char* reason) {
    auto* s = static_cast<State*>(state);
    try {
        uint64_t now = now_ms(s);
        s->events.clear();
        s->limiter.auth_failure(source_ip ? source_ip : "", reason ? reason : "unknown", now, &s->events);
        for (const BlockEvent& e : s->events) {
            char buf[256];
            (void)std::snprintf(buf, sizeof buf,
                                "%s %.64s after %.0f failed authentications: blocked for %.0f s (rule %s)",
                                e.shadow ? "shadow rule would block source" : "blocking source",
                                source_ip ? source_ip : "", e.failures, e.duration_s, e.rule.c_str());
            log(s, RAMPART_LOG_WARN, buf);
        }
        maybe_flush(s, now, false);
    } catch (...) {
        log(s, RAMPART_LOG_ERROR, "ratelimit: could not record an authentication failure (out of memory?)");
    }
}

void cb_policy(void* state, const char* policy, const char* key, const char* json) {
    auto* s = static_cast<State*>(state);
    if (policy == nullptr || key == nullptr || json == nullptr) return;
    if (std::string_view(policy) != "ratelimit" || std::string_view(key) != "rules") return;
    try {
        std::vector<Rule> rules;
        std::string error;
        std::vector<std::string> warnings;
        if (!parse_rules(json, &rules, &error, &warnings)) {
            log(s, RAMPART_LOG_ERROR, "ratelimit: policy rules refused, keeping the previous rules: " + error);
            return;
        }
        for (const std::string& w : warnings) log(s, RAMPART_LOG_WARN, "ratelimit: " + w);
        s->base = std::move(rules);
        s->from_policy = true;
        apply(s, "applied");
    } catch (...) {
        log(s, RAMPART_LOG_ERROR,
            "ratelimit: policy rules could not be applied (out of memory?); keeping the previous rules");
    }
}

const rampart_hooks kHooks = {
    sizeof(rampart_hooks),
    nullptr,          // on_accept
    cb_admission,     // on_admission
    nullptr,          // on_dedup
    nullptr,          // on_response
    cb_auth_failure,  // on_auth_failure
    cb_policy,        // on_policy
};

const rampart_plugin kDescriptor = {
    RAMPART_ABI_MAJOR,
    sizeof(rampart_plugin),
    "ratelimit",
    "0.1.0",
    "Token-bucket rate limits per source address, identity and route class (rules from policies/ratelimit.lua)",
    kSchema,
    kPolicyData,
    cb_init,
    cb_reload,
    cb_fini,
    &kHooks,
    nullptr,  // no transport
};

}  // namespace

extern "C" RAMPART_PLUGIN_EXPORT const rampart_plugin* rampart_plugin_entry(void) { return &kDescriptor; }
