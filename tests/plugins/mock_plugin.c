/*
 * Mock plugins for tests/unit/test_plugin_host.cpp. One source, built as
 * several modules; a -DMOCK_<VARIANT> flag picks the behaviour and
 * -DMOCK_NAME the descriptor name:
 *
 *   MOCK_GOOD      everything a well-behaved plugin does (see below)
 *   MOCK_ABI       abi_major = RAMPART_ABI_MAJOR + 1
 *   MOCK_NOENTRY   no rampart_plugin_entry symbol at all
 *   MOCK_BADNAME   the descriptor names itself differently from the file
 *   MOCK_INITFAIL  registers a route and a timer, then fails init (-EINVAL)
 *   MOCK_SMALL     descriptor struct_size smaller than ABI 1.0's descriptor
 *   MOCK_OLDHOOKS  a hooks struct whose struct_size ends before on_admission,
 *                  though on_admission is set: the host must not call it
 *
 * The plugin shows what it saw through the only channels a real plugin has:
 * metrics (read back from the registry) and log lines (captured by the
 * test). Plain C, and only the public ABI header.
 */
#include <rampart/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MOCK_NAME
#error "MOCK_NAME must name the module"
#endif

#if defined(MOCK_GOOD)

/* mock_good:
 *   metrics   rampart_mock_responses_total{status}  (on_response)
 *             rampart_mock_hello_total              (GET /mock/hello)
 *             rampart_mock_denied_total             (on_admission answered)
 *             rampart_mock_timer_fires_total        (the repeating timer)
 *             rampart_mock_limit                    (config_int("limit"), set at init,
 *                                                    reload and on every /mock/hello)
 *             rampart_mock_late_route_rc            (route_add from the timer: -EBUSY)
 *             rampart_mock_second_respond_rc        (respond twice: -EALREADY)
 *             rampart_mock_bad_header_rc            (a header value with CRLF: -EINVAL)
 *             rampart_mock_render_ok                (metrics_render holds our counter)
 *   log       "config limit=%d greeting=%s loud=%d tags=%zu[:a,b]" at init,
 *             reload and /mock/hello; "fini" at fini; "reload" at reload;
 *             "request method=... path=... ..." at /mock/hello
 *   route     GET /mock/hello -> 200 text/plain "<greeting>"
 *   hooks     on_admission: 429 when the request has X-Mock-Deny
 *             on_response: counts by status
 *   reload    fails with -EINVAL when greeting is "fail-reload"
 */

struct mock_state {
    rampart_plugin_ctx* ctx;
    const rampart_host* host;
    rampart_metric* responses;
    rampart_metric* hello;
    rampart_metric* denied;
    rampart_metric* timer_fires;
    rampart_metric* limit;
    rampart_metric* late_route_rc;
    rampart_metric* second_respond_rc;
    rampart_metric* bad_header_rc;
    rampart_metric* render_ok;
    rampart_timer* timer;
    int late_route_tried;
};

static const rampart_config_key mock_schema[] = {
    {"limit", RAMPART_CONFIG_INT, "10", 1, 100, "requests per window"},
    {"greeting", RAMPART_CONFIG_STRING, "hi", 0, 32, "what GET /mock/hello answers"},
    {"loud", RAMPART_CONFIG_BOOL, NULL, 0, 0, "shout the greeting"},
    {"tags", RAMPART_CONFIG_STRING_LIST, "", 0, 0, "free-form tags"},
    {NULL, 0, NULL, 0, 0, NULL},
};

/* Log the configuration as the plugin sees it through the host services. */
static void log_config(struct mock_state* s, const char* when) {
    char line[512];
    char tags[256] = "";
    size_t n = s->host->config_list_size(s->ctx, "tags");
    for (size_t i = 0; i < n; ++i) {
        const char* item = s->host->config_list_item(s->ctx, "tags", i);
        size_t used = strlen(tags);
        snprintf(tags + used, sizeof tags - used, "%s%s", i ? "," : ":", item ? item : "(null)");
    }
    snprintf(line, sizeof line, "%s config limit=%lld greeting=%s loud=%d tags=%zu%s", when,
             (long long)s->host->config_int(s->ctx, "limit"), s->host->config_string(s->ctx, "greeting"),
             s->host->config_bool(s->ctx, "loud"), n, tags);
    s->host->log(s->ctx, RAMPART_LOG_INFO, line);
    s->host->gauge_set(s->limit, NULL, (double)s->host->config_int(s->ctx, "limit"));
}

static void cb_hello(void* arg, rampart_request* req) {
    struct mock_state* s = arg;
    const rampart_host* h = s->host;
    const char* greeting = h->config_string(s->ctx, "greeting");
    h->counter_add(s->hello, NULL, 1);
    log_config(s, "hello");

    /* Everything the request accessors return, in one line. */
    size_t body_len = 0;
    const char* body = h->request_body(req, &body_len);
    const rampart_identity* id = h->request_identity(req);
    const char* route = h->request_route(req);
    const char* agent = h->request_header(req, "user-agent");
    char line[512];
    snprintf(line, sizeof line,
             "request method=%s path=%s query=%s id=%s ip=%s kind=%d name=%s role=%s route=%s agent=%s body=%.*s",
             h->request_method(req), h->request_path(req), h->request_query(req), h->request_id(req),
             id ? id->source_ip : "(none)", id ? (int)id->kind : -1, id ? id->name : "(none)", id ? id->role : "(none)",
             route ? route : "(none)", agent ? agent : "(none)", (int)body_len, body);
    h->log(s->ctx, RAMPART_LOG_INFO, line);

    size_t len = 0;
    const char* text = h->metrics_render(s->ctx, &len);
    h->gauge_set(s->render_ok, NULL,
                 text != NULL && len == strlen(text) && strstr(text, "rampart_mock_hello_total 1") != NULL);
    s->host->respond(req, 200, "text/plain", greeting, strlen(greeting));
}

static void cb_late_route(void* arg, rampart_request* req) {
    struct mock_state* s = arg;
    s->host->respond(req, 200, "text/plain", "late", 4);
}

static void cb_tick(void* arg) {
    struct mock_state* s = arg;
    s->host->counter_add(s->timer_fires, NULL, 1);
    if (!s->late_route_tried) {
        /* Routes may be added only during init: this must be refused. */
        s->late_route_tried = 1;
        int rc = s->host->route_add(s->ctx, "GET", "/mock/late", cb_late_route, s, 0);
        s->host->gauge_set(s->late_route_rc, NULL, (double)rc);
    }
}

static rampart_verdict cb_admission(void* state, rampart_request* req) {
    struct mock_state* s = state;
    if (s->host->request_header(req, "X-Mock-Deny") == NULL) return RAMPART_CONTINUE;
    static const char body[] = "{\"error\":\"denied by mock\",\"code\":\"mock_denied\"}";
    if (RAMPART_HOST_HAS(s->host, response_header_add)) s->host->response_header_add(req, "Retry-After", "1");
    s->host->gauge_set(s->bad_header_rc, NULL,
                       (double)s->host->response_header_add(req, "X-Split", "a\r\nInjected: 1"));
    if (s->host->respond(req, 429, "application/json", body, sizeof body - 1) != 0) return RAMPART_CONTINUE;
    s->host->gauge_set(s->second_respond_rc, NULL, (double)s->host->respond(req, 200, NULL, NULL, 0));
    s->host->counter_add(s->denied, NULL, 1);
    return RAMPART_ANSWERED;
}

static void cb_response(void* state, rampart_request* req, const rampart_response_view* resp) {
    struct mock_state* s = state;
    (void)req;
    char status[16];
    snprintf(status, sizeof status, "%d", resp->status);
    const char* values[] = {status};
    s->host->counter_add(s->responses, values, 1);
}

static int mock_init(rampart_plugin_ctx* ctx, const rampart_host* host, void** state) {
    struct mock_state* s = calloc(1, sizeof *s);
    if (s == NULL) return -ENOMEM;
    s->ctx = ctx;
    s->host = host;
    static const char* const status_label[] = {"status"};
    s->responses =
        host->counter_register(ctx, "rampart_mock_responses_total", "Responses seen by mock_good.", status_label, 1);
    s->hello = host->counter_register(ctx, "rampart_mock_hello_total", "Calls of GET /mock/hello.", NULL, 0);
    s->denied = host->counter_register(ctx, "rampart_mock_denied_total", "Requests mock_good answered 429.", NULL, 0);
    s->timer_fires = host->counter_register(ctx, "rampart_mock_timer_fires_total", "Ticks of the mock timer.", NULL, 0);
    s->limit = host->gauge_register(ctx, "rampart_mock_limit", "The limit mock_good was configured with.", NULL, 0);
    s->late_route_rc = host->gauge_register(ctx, "rampart_mock_late_route_rc", "route_add after init.", NULL, 0);
    s->second_respond_rc = host->gauge_register(ctx, "rampart_mock_second_respond_rc", "respond twice.", NULL, 0);
    s->bad_header_rc = host->gauge_register(ctx, "rampart_mock_bad_header_rc", "A CRLF header value.", NULL, 0);
    s->render_ok = host->gauge_register(ctx, "rampart_mock_render_ok", "metrics_render worked.", NULL, 0);
    if (!s->responses || !s->hello || !s->denied || !s->timer_fires || !s->limit || !s->late_route_rc ||
        !s->second_respond_rc || !s->bad_header_rc || !s->render_ok) {
        free(s);
        return -EINVAL;
    }
    int rc = host->route_add(ctx, "GET", "/mock/hello", cb_hello, s, 0);
    if (rc != 0) {
        free(s);
        return rc;
    }
    s->timer = host->timer_start(ctx, 5, 5, cb_tick, s);
    if (s->timer == NULL) {
        free(s);
        return -ENOMEM;
    }
    log_config(s, "init");
    *state = s;
    return 0;
}

static int mock_reload(void* state, rampart_plugin_ctx* ctx) {
    struct mock_state* s = state;
    (void)ctx;
    s->host->log(s->ctx, RAMPART_LOG_INFO, "reload");
    if (strcmp(s->host->config_string(s->ctx, "greeting"), "fail-reload") == 0) return -EINVAL;
    log_config(s, "reload");
    return 0;
}

static void mock_fini(void* state) {
    struct mock_state* s = state;
    s->host->log(s->ctx, RAMPART_LOG_INFO, "fini");
    free(s);
}

static const rampart_hooks mock_hooks = {
    .struct_size = sizeof(rampart_hooks),
    .on_admission = cb_admission,
    .on_response = cb_response,
};

#define MOCK_ABI_MAJOR RAMPART_ABI_MAJOR
#define MOCK_DESCRIPTOR_NAME MOCK_NAME
#define MOCK_SCHEMA mock_schema
#define MOCK_RELOAD mock_reload
#define MOCK_FINI mock_fini
#define MOCK_HOOKS (&mock_hooks)

#elif defined(MOCK_INITFAIL)

/* mock_initfail: registers a route, a metric and a repeating timer, then
 * fails. The host must roll the route and the timer back: the timer must
 * never fire (rampart_mock_initfail_ticks_total stays 0). The state stays
 * static so a stray callback would not touch freed memory. */
static rampart_metric* initfail_ticks;
static const rampart_host* initfail_host;

static void cb_initfail_route(void* arg, rampart_request* req) {
    (void)arg;
    initfail_host->respond(req, 200, "text/plain", "should not exist", 16);
}

static void cb_initfail_tick(void* arg) {
    (void)arg;
    initfail_host->counter_add(initfail_ticks, NULL, 1);
}

static int mock_init(rampart_plugin_ctx* ctx, const rampart_host* host, void** state) {
    (void)state;
    initfail_host = host;
    initfail_ticks = host->counter_register(ctx, "rampart_mock_initfail_ticks_total",
                                            "Ticks of a timer whose plugin failed init.", NULL, 0);
    if (host->route_add(ctx, "GET", "/mock/initfail", cb_initfail_route, NULL, 0) != 0) return -EEXIST;
    if (host->timer_start(ctx, 1, 1, cb_initfail_tick, NULL) == NULL) return -ENOMEM;
    return -EINVAL;
}

#define MOCK_ABI_MAJOR RAMPART_ABI_MAJOR
#define MOCK_DESCRIPTOR_NAME MOCK_NAME
#define MOCK_SCHEMA NULL
#define MOCK_RELOAD NULL
#define MOCK_FINI NULL
#define MOCK_HOOKS NULL

#elif defined(MOCK_OLDHOOKS)

/* mock_oldhooks: built against an older rampart_hooks that ended after
 * on_accept. The bytes past struct_size are not the plugin's to give: the
 * host must not call on_admission even though the pointer is set here. */
static rampart_metric* oldhooks_calls;
static const rampart_host* oldhooks_host;

static void count_call(const char* hook) {
    const char* values[] = {hook};
    oldhooks_host->counter_add(oldhooks_calls, values, 1);
}

static int cb_old_accept(void* state, const char* ip) {
    (void)state;
    (void)ip;
    count_call("on_accept");
    return 0;
}

static rampart_verdict cb_old_admission(void* state, rampart_request* req) {
    (void)state;
    count_call("on_admission");
    oldhooks_host->respond(req, 403, "text/plain", "no", 2);
    return RAMPART_ANSWERED;
}

static int mock_init(rampart_plugin_ctx* ctx, const rampart_host* host, void** state) {
    (void)state;
    static const char* const hook_label[] = {"hook"};
    oldhooks_host = host;
    oldhooks_calls =
        host->counter_register(ctx, "rampart_mock_oldhooks_calls_total", "Hooks the host called.", hook_label, 1);
    return oldhooks_calls ? 0 : -EINVAL;
}

static const rampart_hooks mock_hooks = {
    .struct_size = offsetof(rampart_hooks, on_admission),
    .on_accept = cb_old_accept,
    .on_admission = cb_old_admission,
};

#define MOCK_ABI_MAJOR RAMPART_ABI_MAJOR
#define MOCK_DESCRIPTOR_NAME MOCK_NAME
#define MOCK_SCHEMA NULL
#define MOCK_RELOAD NULL
#define MOCK_FINI NULL
#define MOCK_HOOKS (&mock_hooks)

#else /* MOCK_ABI, MOCK_NOENTRY, MOCK_BADNAME, MOCK_SMALL: the loader refuses these before init */

static int mock_init(rampart_plugin_ctx* ctx, const rampart_host* host, void** state) {
    (void)ctx;
    (void)host;
    (void)state;
    return 0;
}

#if defined(MOCK_ABI)
#define MOCK_ABI_MAJOR (RAMPART_ABI_MAJOR + 1)
#else
#define MOCK_ABI_MAJOR RAMPART_ABI_MAJOR
#endif
#if defined(MOCK_BADNAME)
#define MOCK_DESCRIPTOR_NAME "mock_other"
#else
#define MOCK_DESCRIPTOR_NAME MOCK_NAME
#endif
#define MOCK_SCHEMA NULL
#define MOCK_RELOAD NULL
#define MOCK_FINI NULL
#define MOCK_HOOKS NULL

#endif

#if defined(MOCK_SMALL)
#define MOCK_DESCRIPTOR_SIZE offsetof(rampart_plugin, hooks)
#else
#define MOCK_DESCRIPTOR_SIZE sizeof(rampart_plugin)
#endif

static const rampart_plugin mock_descriptor = {
    .abi_major = MOCK_ABI_MAJOR,
    .struct_size = MOCK_DESCRIPTOR_SIZE,
    .name = MOCK_DESCRIPTOR_NAME,
    .version = "0.0.1",
    .description = "test double for the plugin host",
    .config_schema = MOCK_SCHEMA,
    .policy_data = NULL,
    .init = mock_init,
    .reload = MOCK_RELOAD,
    .fini = MOCK_FINI,
    .hooks = MOCK_HOOKS,
};

/* Built with -fvisibility=hidden like the shipped plugins: only what
 * RAMPART_PLUGIN_EXPORT marks is visible to dlsym(). */
#if defined(MOCK_NOENTRY)
/* Exported under another name: the loader must not find the entry. */
RAMPART_PLUGIN_EXPORT const rampart_plugin* rampart_plugin_entry_missing(void);
RAMPART_PLUGIN_EXPORT const rampart_plugin* rampart_plugin_entry_missing(void) { return &mock_descriptor; }
#else
RAMPART_PLUGIN_EXPORT const rampart_plugin* rampart_plugin_entry(void);
RAMPART_PLUGIN_EXPORT const rampart_plugin* rampart_plugin_entry(void) { return &mock_descriptor; }
#endif
