/*
 * echo_write: a test-only plugin giving the idempotency integration tests
 * write routes to deduplicate (the daemon has none of its own yet). Every
 * handled request bumps one counter that every answer reports, so a test
 * can tell a replay (counter unchanged) from a second execution.
 *
 *   PUT|POST|PATCH|DELETE|GET /test/echo
 *       200 {"count":N,"method":"PUT","body_len":L}
 *       headers X-Echo-Count: N, X-Echo-Static: kept, RateLimit-Remaining: N
 *       (the last one stands for a per-exchange header that must not replay)
 *   PUT /test/status?code=NNN   answers NNN (100..599) {"count":N}
 *   PUT /test/big?n=BYTES       200 with a body of BYTES 'x' (at most 1 MiB)
 *   GET /test/count             {"count":N} without counting itself
 */
#include <rampart/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct echo {
    const rampart_host* host;
    unsigned long count;
};

static long query_number(const char* query, const char* name) {
    size_t n = strlen(name);
    for (const char* p = query; p && *p;) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') return strtol(p + n + 1, NULL, 10);
        p = strchr(p, '&');
        if (p) p++;
    }
    return -1;
}

static void answer(struct echo* e, rampart_request* req, int status, const char* body, size_t len) {
    e->host->respond(req, status, "application/json", body, len);
}

static void cb_echo(void* arg, rampart_request* req) {
    struct echo* e = arg;
    size_t len = 0;
    e->host->request_body(req, &len);
    e->count++;
    char n[32], body[160];
    snprintf(n, sizeof n, "%lu", e->count);
    e->host->response_header_add(req, "X-Echo-Count", n);
    e->host->response_header_add(req, "X-Echo-Static", "kept");
    e->host->response_header_add(req, "RateLimit-Remaining", n);
    int w = snprintf(body, sizeof body, "{\"count\":%lu,\"method\":\"%s\",\"body_len\":%zu}\n", e->count,
                     e->host->request_method(req), len);
    answer(e, req, 200, body, (size_t)w);
}

static void cb_status(void* arg, rampart_request* req) {
    struct echo* e = arg;
    long code = query_number(e->host->request_query(req), "code");
    if (code < 100 || code > 599) code = 400;
    e->count++;
    char body[64];
    int w = snprintf(body, sizeof body, "{\"count\":%lu}\n", e->count);
    answer(e, req, (int)code, body, (size_t)w);
}

static void cb_big(void* arg, rampart_request* req) {
    struct echo* e = arg;
    long n = query_number(e->host->request_query(req), "n");
    if (n < 0 || n > (1L << 20)) n = 0;
    e->count++;
    char* body = malloc((size_t)n + 1);
    if (body == NULL) {
        answer(e, req, 500, "{}", 2);
        return;
    }
    memset(body, 'x', (size_t)n);
    e->host->respond(req, 200, "text/plain", body, (size_t)n);
    free(body);
}

static void cb_count(void* arg, rampart_request* req) {
    struct echo* e = arg;
    char body[64];
    int w = snprintf(body, sizeof body, "{\"count\":%lu}\n", e->count);
    answer(e, req, 200, body, (size_t)w);
}

static int cb_init(rampart_plugin_ctx* ctx, const rampart_host* host, void** state) {
    struct echo* e = calloc(1, sizeof *e);
    if (e == NULL) return -ENOMEM;
    e->host = host;
    static const char* const methods[] = {"PUT", "POST", "PATCH", "DELETE", "GET"};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof methods / sizeof methods[0]; i++) {
        rc = host->route_add(ctx, methods[i], "/test/echo", cb_echo, e, 0);
    }
    if (rc == 0) rc = host->route_add(ctx, "PUT", "/test/status", cb_status, e, 0);
    if (rc == 0) rc = host->route_add(ctx, "PUT", "/test/big", cb_big, e, 0);
    if (rc == 0) rc = host->route_add(ctx, "GET", "/test/count", cb_count, e, 0);
    if (rc != 0) {
        free(e);
        return rc;
    }
    *state = e;
    return 0;
}

static void cb_fini(void* state) { free(state); }

static const rampart_plugin descriptor = {
    .abi_major = RAMPART_ABI_MAJOR,
    .struct_size = sizeof(rampart_plugin),
    .name = "echo_write",
    .version = "0.0.1",
    .description = "test only: write routes with a request counter",
    .init = cb_init,
    .fini = cb_fini,
};

RAMPART_PLUGIN_EXPORT const rampart_plugin* rampart_plugin_entry(void) { return &descriptor; }
