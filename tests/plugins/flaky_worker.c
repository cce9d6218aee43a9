/*
 * flaky_worker: a test plugin whose background work fails on demand
 * (ABI 1.2, supervised tasks). Used by tests/integration/test_supervisor.py.
 *
 * The task "flaky_worker.work" runs one round every `interval_ms` on a host
 * timer. A round that succeeds reports task_ok; a failing round stops the
 * timer and reports task_failed, and the daemon's supervisor restarts the
 * work (start again) as recovery.lua says.
 *
 *   POST /flaky/fail   body "N": the next N rounds (and starts) fail;
 *                      "forever": every one fails; "0": heal
 *   GET  /flaky/stats  {"starts":S,"rounds_ok":R,"failures":F,"running":0|1,
 *                       "late_register_refused":1 (task_register after init is refused)}
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/plugin.h"

static const rampart_host* g_host;
static rampart_plugin_ctx* g_ctx;
static rampart_task* g_task;
static rampart_timer* g_timer;
static long g_fail_left; /* -1: forever */
static long g_starts, g_rounds_ok, g_failures;

static int failing(void) { return g_fail_left != 0; }

static void consume_failure(void) {
    if (g_fail_left > 0) --g_fail_left;
    ++g_failures;
}

static void round_tick(void* arg) {
    (void)arg;
    if (failing()) {
        consume_failure();
        g_host->timer_stop(g_timer);
        g_timer = NULL;
        g_host->task_failed(g_task, "injected failure");
        return;
    }
    ++g_rounds_ok;
    g_host->task_ok(g_task);
}

static int work_start(void* arg) {
    (void)arg;
    ++g_starts;
    if (g_timer != NULL) g_host->timer_stop(g_timer);
    g_timer = NULL;
    /* A start can fail too: the work cannot even begin. */
    if (failing()) {
        consume_failure();
        return -EIO;
    }
    uint64_t interval = (uint64_t)g_host->config_int(g_ctx, "interval_ms");
    g_timer = g_host->timer_start(g_ctx, interval, interval, round_tick, NULL);
    return g_timer != NULL ? 0 : -ENOMEM;
}

static void respond_json(rampart_request* req, int status, const char* json) {
    g_host->respond(req, status, "application/json", json, strlen(json));
}

static void route_fail(void* arg, rampart_request* req) {
    (void)arg;
    size_t len = 0;
    const char* body = g_host->request_body(req, &len);
    char text[32];
    if (len == 0 || len >= sizeof text) {
        respond_json(req, 400, "{\"error\":\"body: a count or forever\"}\n");
        return;
    }
    memcpy(text, body, len);
    text[len] = '\0';
    if (strcmp(text, "forever") == 0) {
        g_fail_left = -1;
    } else {
        char* end = NULL;
        long n = strtol(text, &end, 10);
        if (end == text || *end != '\0' || n < 0) {
            respond_json(req, 400, "{\"error\":\"body: a count or forever\"}\n");
            return;
        }
        g_fail_left = n;
    }
    respond_json(req, 200, "{\"ok\":true}\n");
}

static void route_stats(void* arg, rampart_request* req) {
    (void)arg;
    /* After init the host refuses new tasks (asked once: each refusal is logged). */
    static int late_refused = -1;
    if (late_refused < 0) late_refused = g_host->task_register(g_ctx, "late", work_start, NULL) == NULL;
    char json[192];
    snprintf(json, sizeof json,
             "{\"starts\":%ld,\"rounds_ok\":%ld,\"failures\":%ld,\"running\":%d,\"late_register_refused\":%d}\n",
             g_starts, g_rounds_ok, g_failures, g_timer != NULL, late_refused);
    respond_json(req, 200, json);
}

static const rampart_config_key kSchema[] = {
    {"interval_ms", RAMPART_CONFIG_INT, "50", 1, 60000, "milliseconds between two rounds of work"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static int cb_init(rampart_plugin_ctx* ctx, const rampart_host* host, void** state) {
    (void)state;
    g_host = host;
    g_ctx = ctx;
    if (!RAMPART_HOST_HAS(host, task_ok)) return -ENOTSUP;
    g_task = host->task_register(ctx, "work", work_start, NULL);
    if (g_task == NULL) return -EINVAL;
    /* The host refuses bad and taken names (checked here, so a host that
     * accepted them fails this plugin's init and every test using it). */
    if (host->task_register(ctx, "bad name", work_start, NULL) != NULL) return -EPROTO;
    if (host->task_register(ctx, "work", work_start, NULL) != NULL) return -EPROTO;
    int rc = host->route_add(ctx, "POST", "/flaky/fail", route_fail, NULL, 0);
    if (rc != 0) return rc;
    return host->route_add(ctx, "GET", "/flaky/stats", route_stats, NULL, 0);
}

static void cb_fini(void* state) {
    (void)state;
    g_task = NULL;
    g_timer = NULL; /* the host stopped it */
}

static const rampart_plugin kDescriptor = {
    RAMPART_ABI_MAJOR,
    sizeof(rampart_plugin),
    "flaky_worker",
    "0.1.0",
    "test plugin: background work that fails on demand",
    kSchema,
    NULL,
    cb_init,
    NULL,
    cb_fini,
    NULL,
    NULL,
};

RAMPART_PLUGIN_EXPORT const rampart_plugin* rampart_plugin_entry(void) { return &kDescriptor; }
