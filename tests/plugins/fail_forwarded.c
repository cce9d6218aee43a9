/*
 * fail_forwarded: a test plugin that makes a leader answer forwarded
 * requests with an error for as long as a flag file exists (ABI 1.0).
 *
 * While `flag_file` (relative to the daemon's working directory) exists,
 * every request another node forwarded here (it carries
 * X-Rampart-Forwarded-By) is answered `status` in the admission step, with
 * `Retry-After: retry_after` when that is not 0, and counted in
 * rampart_test_failed_forwarded_total. Requests from clients pass. Removing
 * the file heals the node at once. Used by tests/integration/
 * test_peer_retry.py to make a peer answer 5xx for a while, honestly: the
 * answers travel over the real peer connection like any other.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rampart/plugin.h"

typedef struct fail_state {
    const rampart_host* host;
    char flag_file[1024];
    int status;
    char retry_after[24];
    rampart_metric* failed;
} fail_state;

static fail_state g_state;

static rampart_verdict cb_admission(void* state, rampart_request* req) {
    fail_state* s = state;
    if (s->host->request_header(req, "X-Rampart-Forwarded-By") == NULL) return RAMPART_CONTINUE;
    if (access(s->flag_file, F_OK) != 0) return RAMPART_CONTINUE;
    if (s->retry_after[0] != '\0') s->host->response_header_add(req, "Retry-After", s->retry_after);
    char body[160];
    int n = snprintf(body, sizeof body,
                     "{\"error\":\"failing forwarded requests while the flag file exists\","
                     "\"code\":\"test_failure\"}\n");
    s->host->respond(req, s->status, "application/json", body, (size_t)n);
    if (s->failed != NULL) s->host->counter_add(s->failed, NULL, 1);
    return RAMPART_ANSWERED;
}

static int cb_init(rampart_plugin_ctx* ctx, const rampart_host* host, void** state) {
    fail_state* s = &g_state;
    memset(s, 0, sizeof *s);
    s->host = host;
    snprintf(s->flag_file, sizeof s->flag_file, "%s", host->config_string(ctx, "flag_file"));
    s->status = (int)host->config_int(ctx, "status");
    int64_t retry_after = host->config_int(ctx, "retry_after");
    if (retry_after > 0) snprintf(s->retry_after, sizeof s->retry_after, "%lld", (long long)retry_after);
    s->failed = host->counter_register(ctx, "rampart_test_failed_forwarded_total",
                                       "Forwarded requests failed on purpose (fail_forwarded test plugin)", NULL, 0);
    *state = s;
    return 0;
}

static const rampart_config_key kSchema[] = {
    {"flag_file", RAMPART_CONFIG_STRING, "fail-forwarded", 1, 1000, "fail forwarded requests while this file exists"},
    {"status", RAMPART_CONFIG_INT, "503", 500, 599, "the status of the failures"},
    {"retry_after", RAMPART_CONFIG_INT, "0", 0, 3600, "Retry-After seconds on the failures (0: none)"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static const rampart_hooks kHooks = {sizeof(rampart_hooks), NULL, cb_admission, NULL, NULL, NULL, NULL};

static const rampart_plugin kDescriptor = {
    RAMPART_ABI_MAJOR,
    sizeof(rampart_plugin),
    "fail_forwarded",
    "0.1.0",
    "test plugin: answer forwarded requests with an error while a flag file exists",
    kSchema,
    NULL,
    cb_init,
    NULL,
    NULL,
    &kHooks,
    NULL,
};

RAMPART_PLUGIN_EXPORT const rampart_plugin* rampart_plugin_entry(void) { return &kDescriptor; }
