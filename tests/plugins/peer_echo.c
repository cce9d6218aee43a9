/*
 * peer_echo: a test plugin for the host's peer connections (ABI 1.1).
 *
 * Accept side: peer-port connections whose preamble is "RAMPART/1 echo"
 * get every byte echoed back.
 * Dial side: POST /peer-echo?addr=HOST:PORT&node=NODE_ID dials that peer
 * port (mutual TLS through the transport plugin, expecting NODE_ID in the
 * server's certificate), sends the request body, waits for it to come
 * back, and answers 200 with {"reply": ..., "peer": <first DNS SAN>,
 * "spki": ...}, or 502 with the error class and reason of the failure.
 * Used by tests/integration/test_tls.py.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/plugin.h"

static const rampart_host* g_host;
static rampart_plugin_ctx* g_ctx;

/* ---- accept side: echo ---- */

static void echo_open(void* arg, rampart_conn* conn, const rampart_handshake_result* result) {
    (void)arg, (void)conn, (void)result;
}

static void echo_data(void* arg, rampart_conn* conn, const char* data, size_t len) {
    (void)arg;
    g_host->conn_write(conn, data, len);
}

static void echo_close(void* arg, rampart_conn* conn, const char* error_class) {
    (void)arg, (void)conn, (void)error_class;
}

static const rampart_conn_callbacks kEchoCallbacks = {sizeof(rampart_conn_callbacks), echo_open, echo_data, echo_close,
                                                      NULL};

/* ---- dial side ---- */

typedef struct dial_call {
    rampart_request* req; /* deferred; NULL once answered */
    char* body;
    size_t body_len;
    char* reply;
    size_t reply_len;
    char peer[128];
    char spki[80];
} dial_call;

static void answer(dial_call* call, int status, const char* json) {
    if (call->req == NULL) return;
    g_host->respond(call->req, status, "application/json", json, strlen(json));
    call->req = NULL;
}

static void answer_error(dial_call* call, const char* error_class, const char* reason) {
    char buf[512];
    snprintf(buf, sizeof buf, "{\"error\":\"%s\",\"reason\":\"%s\"}\n", error_class, reason ? reason : "");
    answer(call, 502, buf);
}

static void dial_open(void* arg, rampart_conn* conn, const rampart_handshake_result* result) {
    dial_call* call = arg;
    if (result->error != RAMPART_TRANSPORT_OK) {
        const char* cls = result->error == RAMPART_TRANSPORT_TLS_ERROR ? "tls_error"
                          : result->error == RAMPART_TRANSPORT_TIMEOUT ? "timeout"
                                                                       : "network_error";
        answer_error(call, cls, result->reason);
        return;
    }
    const rampart_peer_identity* peer = g_host->conn_peer(conn);
    if (peer != NULL && peer->dns_san_count > 0) snprintf(call->peer, sizeof call->peer, "%s", peer->dns_sans[0]);
    if (peer != NULL) snprintf(call->spki, sizeof call->spki, "%s", peer->spki_sha256);
    if (g_host->conn_write(conn, call->body, call->body_len) < 0) answer_error(call, "network_error", "write");
}

static void dial_data(void* arg, rampart_conn* conn, const char* data, size_t len) {
    dial_call* call = arg;
    char* grown = realloc(call->reply, call->reply_len + len + 1);
    if (grown == NULL) return;
    call->reply = grown;
    memcpy(call->reply + call->reply_len, data, len);
    call->reply_len += len;
    call->reply[call->reply_len] = '\0';
    if (call->reply_len < call->body_len) return;
    size_t need = call->reply_len + strlen(call->peer) + strlen(call->spki) + 64;
    char* json = malloc(need);
    if (json != NULL) {
        snprintf(json, need, "{\"reply\":\"%s\",\"peer\":\"%s\",\"spki\":\"%s\"}\n", call->reply, call->peer,
                 call->spki);
        answer(call, 200, json);
        free(json);
    }
    g_host->conn_close(conn);
}

static void dial_close(void* arg, rampart_conn* conn, const char* error_class) {
    (void)conn;
    dial_call* call = arg;
    answer_error(call, error_class[0] ? error_class : "network_error", "closed before the echo came back");
    free(call->body);
    free(call->reply);
    free(call);
}

static const rampart_conn_callbacks kDialCallbacks = {sizeof(rampart_conn_callbacks), dial_open, dial_data, dial_close,
                                                      NULL};

/* Copy query parameter `name` (no decoding needed for the tests). */
static int query_param(const char* query, const char* name, char* out, size_t out_len) {
    size_t n = strlen(name);
    for (const char* p = query; p && *p;) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            const char* v = p + n + 1;
            size_t len = strcspn(v, "&");
            if (len >= out_len) return -1;
            memcpy(out, v, len);
            out[len] = '\0';
            return 0;
        }
        p = strchr(p, '&');
        if (p) p++;
    }
    return -1;
}

static void route_dial(void* arg, rampart_request* req) {
    (void)arg;
    char addr[128], node[128];
    const char* query = g_host->request_query(req);
    if (query_param(query, "addr", addr, sizeof addr) != 0) {
        const char* msg = "{\"error\":\"addr required\"}\n";
        g_host->respond(req, 400, "application/json", msg, strlen(msg));
        return;
    }
    if (query_param(query, "node", node, sizeof node) != 0) node[0] = '\0';
    size_t len = 0;
    const char* body = g_host->request_body(req, &len);
    dial_call* call = calloc(1, sizeof *call);
    if (call == NULL || len == 0 || (call->body = malloc(len)) == NULL) {
        free(call);
        const char* msg = "{\"error\":\"a non-empty body is required\"}\n";
        g_host->respond(req, 400, "application/json", msg, strlen(msg));
        return;
    }
    memcpy(call->body, body, len);
    call->body_len = len;
    call->req = g_host->request_defer(req);
    if (g_host->peer_dial(g_ctx, addr, node, "echo", &kDialCallbacks, call) == NULL) {
        answer_error(call, "network_error", "peer_dial refused its arguments");
        free(call->body);
        free(call);
    }
}

static int cb_init(rampart_plugin_ctx* ctx, const rampart_host* host, void** state) {
    (void)state;
    g_host = host;
    g_ctx = ctx;
    if (!RAMPART_HOST_HAS(host, request_defer)) return -ENOTSUP;
    int rc = host->peer_protocol_add(ctx, "echo", &kEchoCallbacks, NULL);
    if (rc != 0) return rc;
    return host->route_add(ctx, "POST", "/peer-echo", route_dial, NULL, 0);
}

static const rampart_plugin kDescriptor = {
    RAMPART_ABI_MAJOR,
    sizeof(rampart_plugin),
    "peer_echo",
    "0.1.0",
    "test plugin: echo over peer connections",
    NULL,
    NULL,
    cb_init,
    NULL,
    NULL,
    NULL,
    NULL,
};

RAMPART_PLUGIN_EXPORT const rampart_plugin* rampart_plugin_entry(void) { return &kDescriptor; }
