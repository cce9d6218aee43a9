// metrics: serves the core's metric registry as GET /metrics in the
// Prometheus text format (0.0.4), optionally behind a bearer token, and
// counts every HTTP answer by route, method and status.
//
// The registry (counters, gauges, histograms, the per-metric series cap)
// lives in the core, so the core and every other plugin can count whether
// or not this plugin is loaded; this plugin only renders it and adds the
// HTTP metrics, which need the on_response hook.
#include <rampart/plugin.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <memory>
#include <new>
#include <string>
#include <string_view>

namespace {

constexpr const char* kPluginVersion = "1.0.0";
constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";
// Same floor the core puts on API tokens: anything shorter is guessable.
constexpr size_t kMinTokenLength = 16;
constexpr int64_t kMaxTokenLength = 1024;

// Latency buckets in seconds: sub-millisecond answers (health, cached
// reads) up to blocking reads and slow disks.
constexpr std::array<double, 14> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};

struct metrics_state {
    const rampart_host* host = nullptr;
    rampart_plugin_ctx* ctx = nullptr;
    std::string token;  // empty: /metrics is open
    rampart_metric* requests = nullptr;
    rampart_metric* duration = nullptr;
    rampart_metric* build_info = nullptr;
};

void metrics_log(const metrics_state* s, rampart_log_level level, const char* msg) {
    if (s->host->log != nullptr) s->host->log(s->ctx, level, msg);
}

// The method as a label value. llhttp already refuses methods it does not
// know, but the label set must stay bounded whatever the parser accepts.
const char* metrics_method_label(const char* method) {
    static constexpr std::array<const char*, 9> known = {"GET",   "HEAD",    "PUT",   "POST",   "DELETE",
                                                         "PATCH", "OPTIONS", "TRACE", "CONNECT"};
    std::string_view m = method ? method : "";
    for (const char* k : known) {
        if (m == k) return k;
    }
    return "OTHER";
}

// Whether `given` equals `expected`, in time that depends only on the
// length of `given` (which the client already knows), never on where the
// first difference is or on the length of the secret.
bool metrics_token_equal(std::string_view expected, std::string_view given) {
    if (expected.empty()) return false;
    volatile unsigned char diff = given.size() == expected.size() ? 0 : 1;
    for (size_t i = 0; i < given.size(); ++i) {
        diff = diff | static_cast<unsigned char>(given[i] ^ expected[i % expected.size()]);
    }
    return diff == 0;
}

// "Bearer <token>" -> token; the scheme is case-insensitive (RFC 7235).
// An empty view when the header is absent or not a bearer credential.
std::string_view metrics_bearer(const char* header) {
    if (header == nullptr) return {};
    std::string_view h = header;
    constexpr std::string_view scheme = "bearer ";
    if (h.size() < scheme.size()) return {};
    for (size_t i = 0; i < scheme.size(); ++i) {
        char c = h[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != scheme[i]) return {};
    }
    h.remove_prefix(scheme.size());
    while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.remove_prefix(1);
    while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.remove_suffix(1);
    return h;
}

void metrics_refuse(const metrics_state* s, rampart_request* req, const char* code, const char* message) {
    std::string body = std::string("{\"error\":\"") + message + "\",\"code\":\"" + code + "\"}\n";
    s->host->response_header_add(req, "WWW-Authenticate", "Bearer realm=\"metrics\"");
    s->host->respond(req, 401, "application/json", body.data(), body.size());
}

// Read and check the section; *token is set only when it is valid, so a
// failed reload leaves the running configuration alone.
int metrics_read_config(const metrics_state* s, std::string* token) {
    const char* t = s->host->config_string(s->ctx, "token");
    std::string fresh = t ? t : "";
    if (!fresh.empty() && fresh.size() < kMinTokenLength) {
        metrics_log(s, RAMPART_LOG_ERROR,
                    "[metrics] token must be at least 16 characters (or empty for an open /metrics)");
        return -EINVAL;
    }
    *token = std::move(fresh);
    return 0;
}

void cb_metrics_route(void* arg, rampart_request* req) {
    auto* s = static_cast<metrics_state*>(arg);
    try {
        if (!s->token.empty()) {
            const char* header = s->host->request_header(req, "Authorization");
            std::string_view given = metrics_bearer(header);
            if (header == nullptr) {
                metrics_refuse(s, req, "missing_token", "/metrics needs a token: Authorization: Bearer <token>");
                return;
            }
            if (!metrics_token_equal(s->token, given)) {
                metrics_refuse(s, req, "invalid_token", "the metrics token is not valid");
                return;
            }
        }
        size_t len = 0;
        const char* text = s->host->metrics_render(s->ctx, &len);
        if (text == nullptr) {
            static constexpr std::string_view err =
                "{\"error\":\"the metric registry could not be rendered\",\"code\":\"internal_error\"}\n";
            s->host->respond(req, 500, "application/json", err.data(), err.size());
            return;
        }
        s->host->respond(req, 200, kContentType, text, len);
    } catch (...) {
        // The host answers 500 for a route that did not answer.
    }
}

void cb_on_response(void* state, rampart_request* req, const rampart_response_view* resp) {
    auto* s = static_cast<metrics_state*>(state);
    if (resp == nullptr) return;
    try {
        // The route pattern, never the raw path: a scanner's random paths
        // all land in "unmatched" instead of one series each.
        const char* route = s->host->request_route(req);
        if (route == nullptr) route = "unmatched";
        const char* method = metrics_method_label(s->host->request_method(req));
        char status[8] = {};
        int code = resp->status >= 100 && resp->status <= 999 ? resp->status : 0;
        std::to_chars(status, status + sizeof status - 1, code);

        const char* counter_labels[] = {route, method, status};
        s->host->counter_add(s->requests, counter_labels, 1);
        bool has_duration =
            resp->struct_size >= offsetof(rampart_response_view, duration_seconds) + sizeof resp->duration_seconds;
        if (has_duration && resp->duration_seconds >= 0) {
            const char* duration_labels[] = {route, method};
            s->host->histogram_observe(s->duration, duration_labels, resp->duration_seconds);
        }
    } catch (...) {
        // Counting must never disturb the answer.
    }
}

int cb_init(rampart_plugin_ctx* ctx, const rampart_host* host, void** state) {
    if (!RAMPART_HOST_HAS(host, request_route) || !RAMPART_HOST_HAS(host, metrics_render)) return -ENOTSUP;
    try {
        auto s = std::make_unique<metrics_state>();
        s->host = host;
        s->ctx = ctx;
        if (int rc = metrics_read_config(s.get(), &s->token); rc != 0) return rc;

        static const char* const request_labels[] = {"route", "method", "status"};
        static const char* const duration_labels[] = {"route", "method"};
        static const char* const build_labels[] = {"version"};
        s->requests =
            host->counter_register(ctx, "rampart_http_requests_total",
                                   "HTTP requests answered, by route pattern, method and status", request_labels, 3);
        s->duration = host->histogram_register(ctx, "rampart_http_request_duration_seconds",
                                               "Time from a request parsed to its answer, by route pattern and method",
                                               duration_labels, 2, kLatencyBuckets.data(), kLatencyBuckets.size());
        s->build_info = host->gauge_register(ctx, "rampart_build_info", "Always 1; the daemon's version as a label",
                                             build_labels, 1);
        if (s->requests == nullptr || s->duration == nullptr || s->build_info == nullptr) {
            // The host logged which one and why (a name taken with another shape).
            metrics_log(s.get(), RAMPART_LOG_ERROR, "[metrics] could not register the HTTP metrics");
            return -EEXIST;
        }
        const char* version[] = {host->host_version ? host->host_version : "unknown"};
        host->gauge_set(s->build_info, version, 1);

        int rc = host->route_add(ctx, "GET", "/metrics", cb_metrics_route, s.get(), 1);
        if (rc != 0) {
            metrics_log(
                s.get(), RAMPART_LOG_ERROR,
                rc == -EEXIST ? "[metrics] GET /metrics is already taken" : "[metrics] could not add GET /metrics");
            return rc;
        }
        // listen: /metrics on a port of its own (e.g. a management network).
        const char* listen = host->config_string(ctx, "listen");
        if (listen[0] != '\0') {
            if (!RAMPART_HOST_HAS(host, listener_add)) return -ENOTSUP;
            if (int lrc = host->listener_add(ctx, listen); lrc != 0) {
                metrics_log(s.get(), RAMPART_LOG_ERROR, "[metrics] cannot listen on metrics.listen");
                return lrc;
            }
        }
        metrics_log(s.get(), RAMPART_LOG_INFO,
                    s->token.empty() ? "[metrics] serving GET /metrics (open)"
                                     : "[metrics] serving GET /metrics (bearer token required)");
        *state = s.release();
        return 0;
    } catch (const std::bad_alloc&) {
        return -ENOMEM;
    } catch (...) {
        return -EINVAL;
    }
}

int cb_reload(void* state, rampart_plugin_ctx* ctx) {
    auto* s = static_cast<metrics_state*>(state);
    try {
        s->ctx = ctx;
        std::string token;
        if (int rc = metrics_read_config(s, &token); rc != 0) return rc;
        s->token = std::move(token);
        return 0;
    } catch (...) {
        return -ENOMEM;
    }
}

void cb_fini(void* state) { std::unique_ptr<metrics_state> owned(static_cast<metrics_state*>(state)); }

constexpr rampart_config_key kSchema[] = {
    {"token", RAMPART_CONFIG_STRING, "", static_cast<int64_t>(kMinTokenLength), kMaxTokenLength,
     "Bearer token GET /metrics requires (secret; at least 16 characters; empty: /metrics is open)"},
    {"listen", RAMPART_CONFIG_STRING, "", 0, 64,
     "Serve /metrics on this address (\"ip:port\") instead of the API port; empty: the API port (restart)"},
    {nullptr, static_cast<rampart_config_type>(0), nullptr, 0, 0, nullptr},
};

constexpr rampart_hooks kHooks = {
    sizeof(rampart_hooks), nullptr, nullptr, nullptr, cb_on_response, nullptr, nullptr,
};

constexpr rampart_plugin kDescriptor = {
    RAMPART_ABI_MAJOR,
    sizeof(rampart_plugin),
    "metrics",
    kPluginVersion,
    "GET /metrics in the Prometheus text format; HTTP requests and latency by route and status",
    kSchema,
    nullptr,
    cb_init,
    cb_reload,
    cb_fini,
    &kHooks,
    nullptr,  // no transport
};

}  // namespace

extern "C" RAMPART_PLUGIN_EXPORT const rampart_plugin* rampart_plugin_entry(void) { return &kDescriptor; }
