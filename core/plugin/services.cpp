// The host-services table (rampart_host): what a plugin may ask of the
// core. Every function checks its arguments: a plugin bug returns an
// error instead of corrupting the daemon.
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

#include "http/exchange.h"
#include "http/router.h"
#include "log.h"
#include "metrics/registry.h"
#include "net/transport.h"
#include "peer/peer_network.h"
#include "plugin/context.h"
#include "plugin/task_services.h"
#include "rampart_version.h"

namespace rampart::plugin {
namespace {

LoadedPlugin* plugin_of(rampart_plugin_ctx* ctx) { return ctx ? ctx->plugin : nullptr; }

// ---- logging and configuration ------------------------------------------

void svc_log(rampart_plugin_ctx* ctx, rampart_log_level level, const char* msg) {
    if (ctx == nullptr || msg == nullptr) return;
    auto lvl =
        static_cast<log::Level>(level < RAMPART_LOG_DEBUG || level > RAMPART_LOG_ERROR ? RAMPART_LOG_ERROR : level);
    if (!log::enabled(lvl)) return;
    log::write(lvl, msg, {{"plugin", ctx->plugin->name}});
}

const std::vector<std::string>* config_values(rampart_plugin_ctx* ctx, const char* key) {
    LoadedPlugin* p = plugin_of(ctx);
    if (p == nullptr || key == nullptr) return nullptr;
    auto it = p->config.find(std::string_view(key));
    return it == p->config.end() ? nullptr : &it->second;
}

const char* svc_config_string(rampart_plugin_ctx* ctx, const char* key) {
    const auto* v = config_values(ctx, key);
    return (v == nullptr || v->empty()) ? "" : v->front().c_str();
}

int64_t svc_config_int(rampart_plugin_ctx* ctx, const char* key) {
    const auto* v = config_values(ctx, key);
    return (v == nullptr || v->empty()) ? 0 : strtoll(v->front().c_str(), nullptr, 10);
}

int svc_config_bool(rampart_plugin_ctx* ctx, const char* key) {
    const auto* v = config_values(ctx, key);
    if (v == nullptr || v->empty()) return 0;
    const std::string& s = v->front();
    return s == "true" || s == "1" || s == "yes";
}

size_t svc_config_list_size(rampart_plugin_ctx* ctx, const char* key) {
    const auto* v = config_values(ctx, key);
    return v == nullptr ? 0 : v->size();
}

const char* svc_config_list_item(rampart_plugin_ctx* ctx, const char* key, size_t index) {
    const auto* v = config_values(ctx, key);
    return (v == nullptr || index >= v->size()) ? nullptr : (*v)[index].c_str();
}

// ---- metrics -------------------------------------------------------------

std::vector<std::string> to_strings(const char* const* items, size_t count) {
    std::vector<std::string> out;
    for (size_t i = 0; items != nullptr && i < count; ++i) out.emplace_back(items[i] ? items[i] : "");
    return out;
}

rampart_metric* registered(rampart_plugin_ctx* ctx, metrics::Metric* m, const std::string& error) {
    if (m == nullptr) svc_log(ctx, RAMPART_LOG_ERROR, ("metric registration refused: " + error).c_str());
    return reinterpret_cast<rampart_metric*>(m);
}

rampart_metric* svc_counter_register(rampart_plugin_ctx* ctx, const char* name, const char* help,
                                     const char* const* labels, size_t n) {
    if (ctx == nullptr || name == nullptr) return nullptr;
    std::string error;
    auto* m = ctx->host->registry()->counter(name, help ? help : "", to_strings(labels, n), &error);
    return registered(ctx, m, error);
}

rampart_metric* svc_gauge_register(rampart_plugin_ctx* ctx, const char* name, const char* help,
                                   const char* const* labels, size_t n) {
    if (ctx == nullptr || name == nullptr) return nullptr;
    std::string error;
    auto* m = ctx->host->registry()->gauge(name, help ? help : "", to_strings(labels, n), &error);
    return registered(ctx, m, error);
}

rampart_metric* svc_histogram_register(rampart_plugin_ctx* ctx, const char* name, const char* help,
                                       const char* const* labels, size_t n, const double* buckets, size_t nb) {
    if (ctx == nullptr || name == nullptr || buckets == nullptr) return nullptr;
    std::string error;
    auto* m = ctx->host->registry()->histogram(name, help ? help : "", to_strings(labels, n),
                                               std::vector<double>(buckets, buckets + nb), &error);
    return registered(ctx, m, error);
}

// Views of a plugin's label values, without allocating (at most
// Registry::kMaxLabels labels).
struct LabelViews {
    std::array<std::string_view, metrics::Registry::kMaxLabels> items{};
    size_t count = 0;
    metrics::LabelValues span() const { return {items.data(), count}; }
};

LabelViews label_views(const metrics::Metric* m, const char* const* values) {
    LabelViews out;
    out.count = std::min(m->label_names().size(), out.items.size());
    for (size_t i = 0; values != nullptr && i < out.count; ++i) out.items[i] = values[i] ? values[i] : "";
    return out;
}

void svc_counter_add(rampart_metric* metric, const char* const* values, double delta) {
    auto* m = reinterpret_cast<metrics::Metric*>(metric);
    if (m != nullptr) m->add(label_views(m, values).span(), delta);
}

void svc_gauge_set(rampart_metric* metric, const char* const* values, double value) {
    auto* m = reinterpret_cast<metrics::Metric*>(metric);
    if (m != nullptr) m->set(label_views(m, values).span(), value);
}

void svc_histogram_observe(rampart_metric* metric, const char* const* values, double value) {
    auto* m = reinterpret_cast<metrics::Metric*>(metric);
    if (m != nullptr) m->observe(label_views(m, values).span(), value);
}

const char* svc_metrics_render(rampart_plugin_ctx* ctx, size_t* len) {
    LoadedPlugin* p = plugin_of(ctx);
    if (p == nullptr) return nullptr;
    p->render_buffer = ctx->host->registry()->render();
    if (len != nullptr) *len = p->render_buffer.size();
    return p->render_buffer.c_str();
}

// ---- timers and clocks ---------------------------------------------------

// uv_close completes on a later loop turn, by which time the owning plugin
// may be gone (unload, failed init): the close callback owns the timer,
// not the plugin's list.
void free_timer(uv_handle_t* handle) {
    std::unique_ptr<rampart_timer> owned(static_cast<rampart_timer*>(handle->data));
}

void retire_timer(rampart_timer* t) {
    if (t->stopped) return;
    t->stopped = true;
    uv_timer_stop(&t->handle);
    // libuv owns the timer until its close callback, which frees it.
    (void)t->self->release();
    t->owner->timers.erase(t->self);
    uv_close(reinterpret_cast<uv_handle_t*>(&t->handle), free_timer);
}

void cb_timer(uv_timer_t* handle) {
    auto* t = static_cast<rampart_timer*>(handle->data);
    bool one_shot = !t->repeating;
    try {
        t->fn(t->arg);
    } catch (...) {
        log::error("plugin timer callback threw an exception", {{"plugin", t->owner->name}});
    }
    if (one_shot) retire_timer(t);
}

rampart_timer* svc_timer_start(rampart_plugin_ctx* ctx, uint64_t timeout_ms, uint64_t repeat_ms, rampart_timer_fn fn,
                               void* arg) {
    LoadedPlugin* p = plugin_of(ctx);
    if (p == nullptr || fn == nullptr) return nullptr;
    auto timer = std::make_unique<rampart_timer>();
    rampart_timer* t = timer.get();
    t->owner = p;
    t->fn = fn;
    t->arg = arg;
    t->repeating = repeat_ms > 0;
    p->timers.push_back(std::move(timer));
    t->self = std::prev(p->timers.end());
    uv_timer_init(ctx->host->loop(), &t->handle);
    t->handle.data = t;
    // Plugin timers are housekeeping: they must not keep uv_run going once
    // the daemon has drained and closed its own handles (a repeating timer
    // would otherwise make SIGTERM hang until SIGKILL). The host stops them
    // when it unloads the plugin after the loop returns.
    uv_unref(reinterpret_cast<uv_handle_t*>(&t->handle));
    uv_timer_start(&t->handle, cb_timer, timeout_ms, repeat_ms);
    return t;
}

void svc_timer_stop(rampart_timer* timer) {
    if (timer != nullptr) retire_timer(timer);
}

uint64_t svc_now_ms(rampart_plugin_ctx* ctx) { return ctx ? uv_now(ctx->host->loop()) : 0; }

int64_t svc_wall_ms(rampart_plugin_ctx*) {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// ---- routes and requests -------------------------------------------------

int svc_route_add(rampart_plugin_ctx* ctx, const char* method, const char* path, rampart_route_fn fn, void* arg,
                  int high_volume) {
    LoadedPlugin* p = plugin_of(ctx);
    if (p == nullptr || method == nullptr || path == nullptr || fn == nullptr || path[0] != '/') return -EINVAL;
    if (!p->in_init) return -EBUSY;
    http::Router* router = ctx->host->router();
    if (router->has_route(method, path)) return -EEXIST;
    router->add(
        method, path,
        [fn, arg, name = p->name](http::Exchange& ex) {
            rampart_request req;
            bind_request(&req, ex);
            req.in_route = true;
            // Like every other plugin callback: an exception must not unwind
            // into the HTTP server and through libuv.
            try {
                fn(arg, &req);
            } catch (...) {
                log::error("plugin route handler threw an exception", {{"plugin", name}, {"route", ex.request().path}});
            }
            if (!ex.responded() && req.deferred == nullptr) {
                ex.respond(http::Response::error(500, "internal_error", "plugin route did not answer"));
            }
        },
        high_volume != 0, p);
    return 0;
}

http::Exchange* exchange_of(rampart_request* req) { return req ? req->exchange : nullptr; }

const char* svc_request_method(rampart_request* req) {
    auto* ex = exchange_of(req);
    return ex ? ex->request().method.c_str() : "";
}

const char* svc_request_path(rampart_request* req) {
    auto* ex = exchange_of(req);
    return ex ? ex->request().path.c_str() : "";
}

const char* svc_request_query(rampart_request* req) {
    auto* ex = exchange_of(req);
    return ex ? ex->request().query.c_str() : "";
}

const char* svc_request_header(rampart_request* req, const char* name) {
    auto* ex = exchange_of(req);
    if (ex == nullptr || name == nullptr) return nullptr;
    const std::string* v = ex->request().header(name);
    return v ? v->c_str() : nullptr;
}

const char* svc_request_body(rampart_request* req, size_t* len) {
    auto* ex = exchange_of(req);
    if (ex == nullptr) {
        if (len) *len = 0;
        return "";
    }
    if (len) *len = ex->request().body.size();
    return ex->request().body.data();
}

const char* svc_request_id(rampart_request* req) {
    auto* ex = exchange_of(req);
    return ex ? ex->request_id().c_str() : "";
}

const char* svc_request_route(rampart_request* req) {
    auto* ex = exchange_of(req);
    return (ex && ex->route()) ? ex->route()->pattern.c_str() : nullptr;
}

const rampart_identity* svc_request_identity(rampart_request* req) { return req ? &req->identity : nullptr; }

int svc_respond(rampart_request* req, int status, const char* content_type, const char* body, size_t len) {
    auto* ex = exchange_of(req);
    if (ex == nullptr || status < 100 || status > 599) return -EINVAL;
    // A deferred request (request_defer) ends with its answer.
    std::unique_ptr<rampart_request> deferred(req->holder ? req : nullptr);
    if (ex->responded()) return -EALREADY;
    http::Response r;
    r.status = status;
    r.content_type = content_type ? content_type : "application/json";
    if (body != nullptr) r.body.assign(body, len);
    ex->respond(std::move(r));
    return 0;
}

rampart_request* svc_request_defer(rampart_request* req) {
    auto* ex = exchange_of(req);
    if (ex == nullptr || !req->in_route || ex->responded()) return nullptr;
    if (req->deferred != nullptr) return req->deferred;
    auto held = std::make_unique<rampart_request>();
    bind_request(held.get(), *ex);
    held->holder = ex->shared_from_this();
    req->deferred = held.release();
    return req->deferred;
}

// Header names and values a plugin adds end up on the wire: refuse
// anything that could split the response.
bool header_safe(const char* s, bool is_name) {
    if (s == nullptr || (is_name && *s == '\0')) return false;
    for (const char* c = s; *c; ++c) {
        if (*c == '\r' || *c == '\n' || (is_name && (*c == ':' || *c == ' '))) return false;
    }
    return true;
}

int svc_response_header_add(rampart_request* req, const char* name, const char* value) {
    auto* ex = exchange_of(req);
    if (ex == nullptr || !header_safe(name, true) || !header_safe(value, false)) return -EINVAL;
    ex->add_response_header(name, value);
    return 0;
}

uint64_t svc_request_serial(rampart_request* req) {
    auto* ex = exchange_of(req);
    return ex ? ex->serial() : 0;
}

int svc_config_is_set(rampart_plugin_ctx* ctx, const char* key) {
    LoadedPlugin* p = plugin_of(ctx);
    if (p == nullptr || key == nullptr) return 0;
    for (const auto& k : p->explicit_config) {
        if (k == key) return 1;
    }
    return 0;
}

// ---- transports, worker threads and peer connections (ABI 1.1) ----------

int64_t svc_stream_send(rampart_stream* stream, const char* data, size_t len) {
    if (stream == nullptr || stream->sink == nullptr || (data == nullptr && len > 0)) return -EINVAL;
    return stream->sink->wire_send(data, len);
}

void svc_stream_deliver(rampart_stream* stream, const char* data, size_t len) {
    if (stream == nullptr || stream->sink == nullptr || data == nullptr || len == 0) return;
    stream->sink->plaintext(data, len);
}

void svc_stream_handshake_done(rampart_stream* stream, const rampart_handshake_result* result) {
    if (stream == nullptr || stream->sink == nullptr || result == nullptr) return;
    stream->sink->handshake_done(*result);
}

void svc_stream_closed(rampart_stream* stream, rampart_transport_error error, const char* reason) {
    if (stream == nullptr || stream->sink == nullptr) return;
    stream->sink->transport_closed(error, reason ? reason : "");
}

struct WorkItem {
    uv_work_t req{};
    rampart_work_fn work = nullptr;
    rampart_work_fn done = nullptr;
    void* arg = nullptr;
    LoadedPlugin* owner = nullptr;
};

void cb_work(uv_work_t* req) {
    auto* w = static_cast<WorkItem*>(req->data);
    try {
        w->work(w->arg);
    } catch (...) {
        // Logged on the loop thread would be nicer; a throwing job is a
        // plugin bug and must not terminate the daemon.
    }
}

void cb_work_done(uv_work_t* req, int) {
    std::unique_ptr<WorkItem> w(static_cast<WorkItem*>(req->data));
    w->owner->pending_work--;
    if (w->done == nullptr) return;
    try {
        w->done(w->arg);
    } catch (...) {
        log::error("plugin callback threw an exception", {{"plugin", w->owner->name}, {"callback", "work done"}});
    }
}

int svc_work_submit(rampart_plugin_ctx* ctx, rampart_work_fn work, rampart_work_fn done, void* arg) {
    LoadedPlugin* p = plugin_of(ctx);
    if (p == nullptr || work == nullptr) return -EINVAL;
    auto w = std::make_unique<WorkItem>();
    w->work = work;
    w->done = done;
    w->arg = arg;
    w->owner = p;
    w->req.data = w.get();
    int rc = uv_queue_work(ctx->host->loop(), &w->req, cb_work, cb_work_done);
    if (rc != 0) return rc;
    p->pending_work++;
    (void)w.release();  // owned by libuv until cb_work_done
    return 0;
}

bool callbacks_valid(const rampart_conn_callbacks* cb) {
    return cb != nullptr && cb->struct_size >= offsetof(rampart_conn_callbacks, on_close) + sizeof(void*);
}

peer::Handler make_handler(LoadedPlugin* owner, const rampart_conn_callbacks* cb, void* arg) {
    peer::Handler h;
    std::memcpy(&h.callbacks, cb, std::min<size_t>(cb->struct_size, sizeof h.callbacks));
    h.callbacks.struct_size = sizeof h.callbacks;
    h.arg = arg;
    h.owner = owner;
    return h;
}

rampart_conn* svc_peer_dial(rampart_plugin_ctx* ctx, const char* address, const char* expected_node_id,
                            const char* protocol, const rampart_conn_callbacks* callbacks, void* arg) {
    LoadedPlugin* p = plugin_of(ctx);
    peer::PeerNetwork* network = p ? ctx->host->peer_network() : nullptr;
    if (network == nullptr || address == nullptr || protocol == nullptr || *protocol == '\0' ||
        std::strchr(protocol, '\n') != nullptr || std::strlen(protocol) > 64 || !callbacks_valid(callbacks)) {
        return nullptr;
    }
    return network->dial(address, expected_node_id ? expected_node_id : "", protocol, make_handler(p, callbacks, arg))
        ->handle();
}

int svc_peer_protocol_add(rampart_plugin_ctx* ctx, const char* protocol, const rampart_conn_callbacks* callbacks,
                          void* arg) {
    LoadedPlugin* p = plugin_of(ctx);
    if (p == nullptr || protocol == nullptr || *protocol == '\0' || std::strlen(protocol) > 64 ||
        std::strpbrk(protocol, " \r\n") != nullptr || !callbacks_valid(callbacks)) {
        return -EINVAL;
    }
    if (!p->in_init) return -EBUSY;
    peer::PeerNetwork* network = ctx->host->peer_network();
    if (network == nullptr) return -ENOTSUP;
    return network->add_protocol(protocol, make_handler(p, callbacks, arg)) ? 0 : -EEXIST;
}

int64_t svc_conn_write(rampart_conn* conn, const char* data, size_t len) {
    if (conn == nullptr || conn->conn == nullptr || (data == nullptr && len > 0)) return -EINVAL;
    return conn->conn->write(data, len);
}

void svc_conn_close(rampart_conn* conn) {
    if (conn != nullptr && conn->conn != nullptr) conn->conn->close_graceful();
}

const rampart_peer_identity* svc_conn_peer(rampart_conn* conn) {
    if (conn == nullptr || conn->conn == nullptr) return nullptr;
    return conn->conn->identity_view();
}

int svc_listener_add(rampart_plugin_ctx* ctx, const char* address) {
    LoadedPlugin* p = plugin_of(ctx);
    if (p == nullptr || address == nullptr) return -EINVAL;
    if (!p->in_init) return -EBUSY;
    std::string error;
    int rc = ctx->host->add_listener(*p, address, &error);
    if (rc != 0) {
        log::error("plugin listener refused", {{"plugin", p->name}, {"address", address}, {"error", error}});
    }
    return rc;
}

void svc_conn_pause_reading(rampart_conn* conn, int paused) {
    if (conn != nullptr && conn->conn != nullptr) conn->conn->pause_reading(paused != 0);
}

rampart_host make_services() {
    rampart_host h{};
    h.struct_size = sizeof h;
    h.abi_major = RAMPART_ABI_MAJOR;
    h.abi_minor = RAMPART_ABI_MINOR;
    h.host_version = RAMPART_VERSION;
    h.log = svc_log;
    h.config_string = svc_config_string;
    h.config_int = svc_config_int;
    h.config_bool = svc_config_bool;
    h.config_list_size = svc_config_list_size;
    h.config_list_item = svc_config_list_item;
    h.counter_register = svc_counter_register;
    h.gauge_register = svc_gauge_register;
    h.histogram_register = svc_histogram_register;
    h.counter_add = svc_counter_add;
    h.gauge_set = svc_gauge_set;
    h.histogram_observe = svc_histogram_observe;
    h.metrics_render = svc_metrics_render;
    h.timer_start = svc_timer_start;
    h.timer_stop = svc_timer_stop;
    h.now_ms = svc_now_ms;
    h.wall_ms = svc_wall_ms;
    h.route_add = svc_route_add;
    h.request_method = svc_request_method;
    h.request_path = svc_request_path;
    h.request_query = svc_request_query;
    h.request_header = svc_request_header;
    h.request_body = svc_request_body;
    h.request_id = svc_request_id;
    h.request_route = svc_request_route;
    h.request_identity = svc_request_identity;
    h.respond = svc_respond;
    h.response_header_add = svc_response_header_add;
    h.request_serial = svc_request_serial;
    h.config_is_set = svc_config_is_set;
    h.stream_send = svc_stream_send;
    h.stream_deliver = svc_stream_deliver;
    h.stream_handshake_done = svc_stream_handshake_done;
    h.stream_closed = svc_stream_closed;
    h.work_submit = svc_work_submit;
    h.peer_dial = svc_peer_dial;
    h.peer_protocol_add = svc_peer_protocol_add;
    h.conn_write = svc_conn_write;
    h.conn_close = svc_conn_close;
    h.conn_peer = svc_conn_peer;
    h.conn_pause_reading = svc_conn_pause_reading;
    h.request_defer = svc_request_defer;
    h.listener_add = svc_listener_add;
    h.task_register = svc_task_register;
    h.task_failed = svc_task_failed;
    h.task_ok = svc_task_ok;
    return h;
}

rampart_identity_kind identity_kind(auth::IdentityKind k) {
    switch (k) {
        case auth::IdentityKind::Token: return RAMPART_IDENTITY_TOKEN;
        case auth::IdentityKind::Certificate: return RAMPART_IDENTITY_CERTIFICATE;
        case auth::IdentityKind::Peer: return RAMPART_IDENTITY_PEER;
        default: return RAMPART_IDENTITY_NONE;
    }
}

}  // namespace

const rampart_host* host_services() {
    static const rampart_host services = make_services();
    return &services;
}

void bind_request(rampart_request* req, http::Exchange& ex) {
    req->exchange = &ex;
    const auth::Identity& id = ex.identity();
    req->identity.struct_size = sizeof(rampart_identity);
    req->identity.kind = identity_kind(id.kind);
    req->identity.name = id.name.c_str();
    req->identity.role = id.role.c_str();
    req->identity.source_ip = ex.source_ip().c_str();
}

void stop_all_timers(LoadedPlugin& plugin) {
    while (!plugin.timers.empty()) retire_timer(plugin.timers.front().get());
}

}  // namespace rampart::plugin
