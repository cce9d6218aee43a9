/*
 * hello: the smallest useful rampart plugin, built out of tree against the
 * installed header (see docs/plugins.md):
 *
 *   cc -shared -fPIC $(pkg-config --cflags rampart-plugin) hello.c -o hello.so
 *
 * It adds GET /hello and a small write route, PUT /hello/note, which keeps
 * the last note in memory and answers with how many notes it has taken.
 * The write route is what the idempotency tests drive until the store
 * lands: a replayed request does not bump the count.
 */
#include <rampart/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef HELLO_ABI_MAJOR /* tests build a copy for another ABI */
#define HELLO_ABI_MAJOR RAMPART_ABI_MAJOR
#endif

struct hello {
    const rampart_host* host;
    rampart_plugin_ctx* ctx;
    rampart_metric* notes_total;
    char note[256];
    unsigned long count;
};

static void answer_json(struct hello* h, rampart_request* req, int status, const char* json) {
    h->host->respond(req, status, "application/json", json, strlen(json));
}

static void cb_hello(void* arg, rampart_request* req) {
    struct hello* h = arg;
    char body[128];
    snprintf(body, sizeof body, "{\"greeting\":\"%s\"}\n", h->host->config_string(h->ctx, "greeting"));
    answer_json(h, req, 200, body);
}

static void cb_note(void* arg, rampart_request* req) {
    struct hello* h = arg;
    size_t len = 0;
    const char* text = h->host->request_body(req, &len);
    if (len >= sizeof h->note) {
        answer_json(h, req, 413, "{\"error\":\"a note is at most 255 bytes\",\"code\":\"body_too_large\"}\n");
        return;
    }
    memcpy(h->note, text, len);
    h->note[len] = '\0';
    h->count++;
    h->host->counter_add(h->notes_total, NULL, 1);
    char body[64];
    snprintf(body, sizeof body, "{\"notes\":%lu}\n", h->count);
    answer_json(h, req, 200, body);
}

static int cb_init(rampart_plugin_ctx* ctx, const rampart_host* host, void** state) {
    struct hello* h = calloc(1, sizeof *h);
    if (h == NULL) return -ENOMEM;
    h->host = host;
    h->ctx = ctx;
    h->notes_total =
        host->counter_register(ctx, "rampart_hello_notes_total", "Notes taken by the hello plugin", NULL, 0);
    int rc = host->route_add(ctx, "GET", "/hello", cb_hello, h, 0);
    if (rc == 0) rc = host->route_add(ctx, "PUT", "/hello/note", cb_note, h, 0);
    if (rc != 0) {
        free(h);
        return rc;
    }
    *state = h;
    return 0;
}

static void cb_fini(void* state) { free(state); }

static const rampart_config_key config_schema[] = {
    {"greeting", RAMPART_CONFIG_STRING, "hello", 0, 64, "What GET /hello says"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static const rampart_plugin descriptor = {
    .abi_major = HELLO_ABI_MAJOR,
    .struct_size = sizeof(rampart_plugin),
    .name = "hello",
    .version = "1.0.0",
    .description = "example plugin: GET /hello and PUT /hello/note",
    .config_schema = config_schema,
    .init = cb_init,
    .fini = cb_fini,
};

RAMPART_PLUGIN_EXPORT const rampart_plugin* rampart_plugin_entry(void) { return &descriptor; }
