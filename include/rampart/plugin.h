/*
 * rampart plugin ABI — the only header a plugin includes.
 *
 * A plugin is a shared object (<name>.so) that exports one function,
 * `rampart_plugin_entry`, returning a constant descriptor. The daemon loads
 * the plugins listed in `plugins.load` from `plugins.dir`, checks the ABI,
 * validates the plugin's configuration section against the schema the
 * plugin declares, and calls `init` with a table of host services.
 *
 * Versioning
 *   RAMPART_ABI_MAJOR must match the host's exactly; otherwise the host
 *   refuses the plugin with "plugin X built for ABI n, host has m: rebuild".
 *   Structs only grow: new fields are appended, never reordered or removed,
 *   and every struct that can grow starts with `struct_size`, so either side
 *   can tell which fields the other one knows. Before using a host service
 *   added after ABI 1.0, test it with RAMPART_HOST_HAS(host, field).
 *
 * Threads and lifetime
 *   Everything here runs on the daemon's single event-loop thread: hooks,
 *   route handlers, timer callbacks, init/reload/fini. No locks are needed
 *   and none may block: a hook that sleeps stalls every connection.
 *   Strings passed to a plugin are borrowed: valid only during the call
 *   unless stated otherwise; copy what you keep. Strings a plugin passes
 *   to the host are copied by the host.
 *
 * Errors
 *   Functions returning int return 0 on success and a negative errno on
 *   failure (-EINVAL, -ENOMEM, -EBUSY ...). No C++ exception may cross this
 *   boundary: a C++ plugin catches everything inside its callbacks.
 *
 * Hook order for every request (fixed; see docs/plugins.md)
 *   1. on_accept        a connection arrived (may refuse it)
 *   2. (core)           the request head is parsed and the core
 *                       authenticates it: identity and role are set, or an
 *                       auth failure is answered 401/403 and reported to
 *                       every plugin's on_auth_failure
 *   3. on_admission     rate limiting and other admission control, in
 *                       load order; a plugin may answer early (e.g. 429)
 *   4. on_dedup         idempotency lookup; may answer early (replay, 409, 422)
 *   5. (core)           the route handler runs (core or plugin route)
 *   6. on_response      every answer, early ones included, right before it
 *                       is sent (idempotency captures it, metrics count it)
 *   Once a plugin answers in step 3 or 4, later plugins' hooks of steps 3-4
 *   are skipped, but every plugin's on_response still runs.
 *
 * Transports (ABI 1.1; see "transport" below and docs/plugins.md)
 *   One loaded plugin may provide a transport: a byte-stream layer (TLS)
 *   the host puts between a socket and its user. The host owns every
 *   socket and all of libuv; the transport only sees bytes:
 *     network -> host -> session_input(ciphertext)
 *                        -> host->stream_deliver(plaintext) -> the user
 *     the user -> host -> session_write(plaintext)
 *                        -> host->stream_send(ciphertext) -> network
 *   A session reports its handshake once, through
 *   host->stream_handshake_done, with an error class and the peer's
 *   identity. Expensive handshake steps may run on the host's worker
 *   threads (host->work_submit); nothing else leaves the loop thread.
 */
#ifndef RAMPART_PLUGIN_H
#define RAMPART_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RAMPART_ABI_MAJOR 1
#define RAMPART_ABI_MINOR 2

/* The symbol every plugin exports. */
#define RAMPART_PLUGIN_ENTRY_SYMBOL "rampart_plugin_entry"

/* True when the host's service table is new enough to hold `field`. */
#define RAMPART_HOST_HAS(host, field) \
    ((host)->struct_size >= offsetof(rampart_host, field) + sizeof((host)->field) && (host)->field != NULL)

/* ---- opaque handles ---------------------------------------------------- */

/* One per loaded plugin; identifies the caller to the host. Owned by the
 * host, valid from init until fini returns. */
typedef struct rampart_plugin_ctx rampart_plugin_ctx;

/* A request in flight. Borrowed: valid only during the hook or handler
 * call it is passed to. */
typedef struct rampart_request rampart_request;

/* A registered metric. Owned by the host's registry and valid for the
 * life of the process: metric families are never unregistered, so a
 * plugin that failed init or was unloaded may leave families behind. */
typedef struct rampart_metric rampart_metric;

/* A timer. Owned by the host; valid until it fires (one-shot), or until
 * timer_stop, or until the plugin is unloaded (the host stops any timer a
 * plugin leaves behind). A plugin's timers never keep the daemon running:
 * shutdown does not wait for them. */
typedef struct rampart_timer rampart_timer;

/* ABI 1.2: background work under the daemon's supervisor (task_register).
 * Owned by the host; valid until the plugin is unloaded. */
typedef struct rampart_task rampart_task;

/* ---- logging ----------------------------------------------------------- */

typedef enum rampart_log_level {
    RAMPART_LOG_DEBUG = 0,
    RAMPART_LOG_INFO = 1,
    RAMPART_LOG_WARN = 2,
    RAMPART_LOG_ERROR = 3
} rampart_log_level;

/* ---- configuration schema ---------------------------------------------- */

typedef enum rampart_config_type {
    RAMPART_CONFIG_STRING = 1,
    RAMPART_CONFIG_INT = 2,
    RAMPART_CONFIG_BOOL = 3,
    RAMPART_CONFIG_STRING_LIST = 4
} rampart_config_type;

/* One key of the plugin's configuration section. The section is the
 * top-level YAML mapping named after the plugin; each key can also be set
 * by the environment as RAMPART_<PLUGIN>_<KEY>. The host rejects unknown
 * keys (listing these), wrong types and out-of-range values, naming
 * file:line:column, before init is called. A plugin declares an array of
 * these terminated by an entry whose `key` is NULL. */
typedef struct rampart_config_key {
    const char* key; /* lower_snake_case */
    rampart_config_type type;
    const char* default_value; /* textual, as in YAML; NULL = "" / 0 / false */
    int64_t min;               /* INT: inclusive bounds; STRING: length bounds (max 0 = 4096),
                                  checked for non-empty values (empty = unset) */
    int64_t max;
    const char* description; /* one line, shown in errors and docs */
} rampart_config_key;

/* ---- request identity -------------------------------------------------- */

typedef enum rampart_identity_kind {
    RAMPART_IDENTITY_NONE = 0,        /* unauthenticated */
    RAMPART_IDENTITY_TOKEN = 1,       /* an API token */
    RAMPART_IDENTITY_CERTIFICATE = 2, /* a verified client certificate */
    RAMPART_IDENTITY_PEER = 3         /* another node of the cluster (internal traffic) */
} rampart_identity_kind;

/* Who sent a request, as the core established it in step 2. Borrowed. */
typedef struct rampart_identity {
    uint32_t struct_size;
    rampart_identity_kind kind;
    const char* name;      /* token name, certificate node id, or "" */
    const char* role;      /* "admin" | "write" | "read" | "" */
    const char* source_ip; /* the client's address, without port */
} rampart_identity;

/* ---- responses --------------------------------------------------------- */

/* A response as on_response sees it. Borrowed. */
typedef struct rampart_response_view {
    uint32_t struct_size;
    int status;
    const char* content_type;
    const char* body;
    size_t body_len;
    size_t header_count; /* extra headers, beyond Content-Type/Length */
    const char* const* header_names;
    const char* const* header_values;
    double duration_seconds; /* from request parsed to this answer */
} rampart_response_view;

/* ---- transport (ABI 1.1) ---------------------------------------------- */

/* The host side of one connection that a transport session wraps. Owned
 * by the host; valid from session_new until session_free. */
typedef struct rampart_stream rampart_stream;

typedef enum rampart_transport_side {
    RAMPART_SIDE_SERVER = 0, /* the host accepted the connection */
    RAMPART_SIDE_CLIENT = 1  /* the host dialled it */
} rampart_transport_side;

/* Outcome classes, shared with the retry policy (policies/retry.lua). */
typedef enum rampart_transport_error {
    RAMPART_TRANSPORT_OK = 0,
    RAMPART_TRANSPORT_TLS_ERROR = 1,     /* "tls_error": protocol, certificate, name or pin failure */
    RAMPART_TRANSPORT_NETWORK_ERROR = 2, /* "network_error": the connection broke */
    RAMPART_TRANSPORT_TIMEOUT = 3        /* "timeout": the handshake did not finish in time */
} rampart_transport_error;

/* The certificate the other side presented. Borrowed. */
typedef struct rampart_peer_identity {
    uint32_t struct_size;
    int verified;                /* 1: chain verified against the CA (and, for a
                                    client, the expected node id matched) */
    const char* subject_cn;      /* "" if none */
    const char* const* dns_sans; /* DNS subjectAltNames, in certificate order */
    size_t dns_san_count;
    const char* cert_sha256; /* lower-case hex of SHA-256 over the DER certificate */
    const char* spki_sha256; /* lower-case hex of SHA-256 over the DER SubjectPublicKeyInfo */
    int64_t not_after_unix;  /* expiry, unix seconds */
} rampart_peer_identity;

/* Delivered once per session by host->stream_handshake_done. Borrowed. */
typedef struct rampart_handshake_result {
    uint32_t struct_size;
    rampart_transport_error error;
    const char* reason;                /* a stable code: "ok", "unknown_ca", "expired", "name_mismatch",
                                          "no_client_certificate", "pin_mismatch", "protocol", ... */
    const char* detail;                /* one human line for the log; never contains key material */
    const rampart_peer_identity* peer; /* NULL when the other side sent no certificate */
    const char* protocol;              /* e.g. "TLSv1.2" */
    const char* cipher;                /* e.g. "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256" */
    int resumed;                       /* 1: an abbreviated (session ticket) handshake */
} rampart_handshake_result;

/* What one transport context is for and where its material lives. The
 * host builds one context for the API port (api.tls) and one for the peer
 * port (peers.yml `tls`), and a new one on every SIGHUP. Borrowed. */
typedef struct rampart_transport_settings {
    uint32_t struct_size;
    const char* purpose;          /* "api" or "peer" (names metrics and errors) */
    const char* cert_file;        /* server certificate chain (PEM) */
    const char* key_file;         /* its private key: mode 0600 or 0400 */
    const char* ca_file;          /* CA bundle that verifies the other side; "" = none */
    const char* client_cert_file; /* certificate for dialling out; "" = cert_file */
    const char* client_key_file;  /* its key; "" = key_file */
    int require_client_cert;      /* server side: refuse clients without a verified certificate */
    const char* pins_file;        /* pinned_certs.json; "" = no pinning */
} rampart_transport_settings;

/* Implemented by a transport plugin; every function runs on the loop
 * thread. A context is immutable once built: sessions keep the context
 * they started with (the plugin reference-counts it), so a reload never
 * touches an established connection. */
typedef struct rampart_transport {
    uint32_t struct_size;
    const char* name; /* e.g. "tls" */

    /* Read and check the material (files exist, key permissions, key
     * matches certificate, not expired, pins parse). On failure return a
     * negative errno and a one-line message in err, naming the file, e.g.
     * "TLS api key etc/k.pem has insecure permissions 0644 (must be 0600)". */
    int (*context_new)(void* state, const rampart_transport_settings* settings, void** context, char* err,
                       size_t err_len);
    /* The host drops its reference; sessions may still hold theirs. */
    void (*context_release)(void* state, void* context);

    /* Wrap a connection. `expected_peer` (client side) is the node id or
     * host name the server's certificate must carry as a DNS SAN; NULL or
     * "" on the server side. A client session starts its handshake at once. */
    int (*session_new)(void* state, void* context, rampart_stream* stream, rampart_transport_side side,
                       const char* expected_peer, void** session);
    /* Ciphertext from the network, in order. Return a negative errno on a
     * fatal protocol error (the host closes the connection). */
    int (*session_input)(void* session, const char* data, size_t len);
    /* Plaintext to send (only after a successful handshake). */
    int (*session_write)(void* session, const char* data, size_t len);
    /* Orderly close: send close_notify through stream_send if possible.
     * The host flushes what was sent, then closes the socket. */
    void (*session_shutdown)(void* session);
    /* Free the session. No host call on its stream is allowed afterwards,
     * and a worker job still running for it must not touch the host. */
    void (*session_free)(void* session);
} rampart_transport;

/* A plaintext connection the host made for a plugin (host->peer_dial, or
 * an accepted peer-port connection handed over by host->peer_protocol_add).
 * Owned by the host; valid until on_close has been called. */
typedef struct rampart_conn rampart_conn;

typedef struct rampart_conn_callbacks {
    uint32_t struct_size;
    /* The connection is ready (handshake done, preamble sent) or failed:
     * then `result->error` is set and on_close follows. */
    void (*on_open)(void* arg, rampart_conn* conn, const rampart_handshake_result* result);
    void (*on_data)(void* arg, rampart_conn* conn, const char* data, size_t len);
    /* Called once. `error_class` is "" for an orderly close, else
     * "network_error", "tls_error" or "timeout". */
    void (*on_close)(void* arg, rampart_conn* conn, const char* error_class);
    /* Everything written so far has been handed to the kernel (the held
     * bytes conn_write reported are down to 0): resume writing. May be NULL. */
    void (*on_writable)(void* arg, rampart_conn* conn);
} rampart_conn_callbacks;

typedef void (*rampart_work_fn)(void* arg);

/* ---- hooks ------------------------------------------------------------- */

typedef enum rampart_verdict {
    RAMPART_CONTINUE = 0, /* go on to the next plugin / the handler */
    RAMPART_ANSWERED = 1  /* the plugin called host->respond(); stop here */
} rampart_verdict;

/* A plugin route handler: answer with host->respond() before returning. */
typedef void (*rampart_route_fn)(void* arg, rampart_request* req);
typedef void (*rampart_timer_fn)(void* arg);
/* Start (or restart) supervised work: arm its timers, open what it needs.
 * Return 0, or a negative errno when it cannot start (counted as a failure
 * of the task). Runs on the loop thread. */
typedef int (*rampart_task_start_fn)(void* arg);

/* Every member may be NULL. `state` is what init stored. */
typedef struct rampart_hooks {
    uint32_t struct_size;
    /* Step 1. Return 0 to accept, a negative errno to refuse: the host
     * closes the connection at once. */
    int (*on_accept)(void* state, const char* source_ip);
    /* Step 3. */
    rampart_verdict (*on_admission)(void* state, rampart_request* req);
    /* Step 4. */
    rampart_verdict (*on_dedup)(void* state, rampart_request* req);
    /* Step 6. */
    void (*on_response)(void* state, rampart_request* req, const rampart_response_view* resp);
    /* An authentication failure (bad, unknown or missing token where one
     * is needed). `reason` is a stable code such as "invalid_token". The
     * token itself is never passed. */
    void (*on_auth_failure)(void* state, const char* source_ip, const char* reason);
    /* A new policy generation was swapped in: `json` holds the data the
     * policy exported under `key` (e.g. policy "ratelimit", key "rules"),
     * as JSON text. Called after init and after every successful reload
     * for the policies the plugin named in its descriptor. */
    void (*on_policy)(void* state, const char* policy, const char* key, const char* json);
} rampart_hooks;

/* ---- host services ----------------------------------------------------- */

typedef struct rampart_host {
    uint32_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;
    const char* host_version; /* "0.1.0" */

    /* Logging: a line attributed to the plugin ("plugin": name). `msg` must
     * not contain secrets; the host adds ts, level and node_id. */
    void (*log)(rampart_plugin_ctx* ctx, rampart_log_level level, const char* msg);

    /* Configuration: the plugin's own section, already validated. Unknown
     * keys return the zero value. The returned string is valid until the
     * next reload of this plugin. */
    const char* (*config_string)(rampart_plugin_ctx* ctx, const char* key);
    int64_t (*config_int)(rampart_plugin_ctx* ctx, const char* key);
    int (*config_bool)(rampart_plugin_ctx* ctx, const char* key);
    size_t (*config_list_size)(rampart_plugin_ctx* ctx, const char* key);
    const char* (*config_list_item)(rampart_plugin_ctx* ctx, const char* key, size_t index);

    /* Metrics (served by the metrics plugin, if loaded). `name` must start
     * with "rampart_"; counters end in "_total". `label_names` has
     * `label_count` entries (at most 8). Histograms take `buckets` upper
     * bounds in increasing order. Registering the same name twice returns
     * the same metric if the shape matches, else NULL. Each metric keeps at
     * most `metrics_max_series` label sets; further ones are folded into
     * one series whose label values are all "_other". */
    rampart_metric* (*counter_register)(rampart_plugin_ctx* ctx, const char* name, const char* help,
                                        const char* const* label_names, size_t label_count);
    rampart_metric* (*gauge_register)(rampart_plugin_ctx* ctx, const char* name, const char* help,
                                      const char* const* label_names, size_t label_count);
    rampart_metric* (*histogram_register)(rampart_plugin_ctx* ctx, const char* name, const char* help,
                                          const char* const* label_names, size_t label_count, const double* buckets,
                                          size_t bucket_count);
    /* `label_values` has as many entries as the metric's label names. */
    void (*counter_add)(rampart_metric* metric, const char* const* label_values, double delta);
    void (*gauge_set)(rampart_metric* metric, const char* const* label_values, double value);
    void (*histogram_observe)(rampart_metric* metric, const char* const* label_values, double value);
    /* The whole registry in the Prometheus text format (0.0.4). The
     * returned buffer is owned by the host and valid until the next call. */
    const char* (*metrics_render)(rampart_plugin_ctx* ctx, size_t* len);

    /* Timers on the event loop. `repeat_ms` 0 = one-shot. */
    rampart_timer* (*timer_start)(rampart_plugin_ctx* ctx, uint64_t timeout_ms, uint64_t repeat_ms, rampart_timer_fn fn,
                                  void* arg);
    void (*timer_stop)(rampart_timer* timer);
    /* Monotonic milliseconds (the loop's clock) and wall-clock unix ms. */
    uint64_t (*now_ms)(rampart_plugin_ctx* ctx);
    int64_t (*wall_ms)(rampart_plugin_ctx* ctx);

    /* Routes: only during init (later calls return -EBUSY). The path is an
     * exact path, or a prefix when it ends in "/" followed by "*". A plugin route gets the
     * same hooks as core routes. `high_volume` routes are sampled in the
     * access log. Returns -EEXIST if the method and path are taken. */
    int (*route_add)(rampart_plugin_ctx* ctx, const char* method, const char* path, rampart_route_fn fn, void* arg,
                     int high_volume);

    /* The request. All strings are borrowed (valid during the call). */
    const char* (*request_method)(rampart_request* req);
    const char* (*request_path)(rampart_request* req);  /* without the query */
    const char* (*request_query)(rampart_request* req); /* without '?', "" if none */
    /* First header with this name (case-insensitive), or NULL. */
    const char* (*request_header)(rampart_request* req, const char* name);
    const char* (*request_body)(rampart_request* req, size_t* len);
    const char* (*request_id)(rampart_request* req);
    /* The matched route's pattern (e.g. the prefix route "/v1/kv/"), or NULL when none matched. */
    const char* (*request_route)(rampart_request* req);
    const rampart_identity* (*request_identity)(rampart_request* req);

    /* Answer the request now (steps 3-5 only; returns -EALREADY if it was
     * answered). The body is copied. */
    int (*respond)(rampart_request* req, int status, const char* content_type, const char* body, size_t len);
    /* Add a header to whatever response this request gets (its own answer
     * or the handler's), e.g. RateLimit headers. Copied. */
    int (*response_header_add)(rampart_request* req, const char* name, const char* value);

    /* A number no other request of this process has had (unlike the
     * request id, which a client may choose). Use it to tell a request's
     * own answer from another one's, e.g. to complete an in-flight record. */
    uint64_t (*request_serial)(rampart_request* req);

    /* 1 when the key of the plugin's section was set by the file or the
     * environment, 0 when it holds its declared default. Lets a plugin give
     * precedence to something else (a policy) over its defaults. */
    int (*config_is_set)(rampart_plugin_ctx* ctx, const char* key);

    /* ---- ABI 1.1: transports and peer connections ---- */

    /* For transport plugins, about one of their sessions' streams. */
    /* Ciphertext to the network (copied). Returns the bytes the host now
     * holds unsent for this stream, or a negative errno if it is closed. */
    int64_t (*stream_send)(rampart_stream* stream, const char* data, size_t len);
    /* Plaintext for the stream's user. The host pauses reading the socket
     * while its user is not keeping up, so deliveries stay bounded. */
    void (*stream_deliver)(rampart_stream* stream, const char* data, size_t len);
    /* The handshake finished (once per session), or failed: the host then
     * closes the connection. */
    void (*stream_handshake_done)(rampart_stream* stream, const rampart_handshake_result* result);
    /* The other side closed the session (close_notify) or a record failed
     * after the handshake; the host closes the connection. */
    void (*stream_closed)(rampart_stream* stream, rampart_transport_error error, const char* reason);

    /* Run `work(arg)` on a worker thread, then `done(arg)` on the loop
     * thread. `work` must not call the host. Returns 0 or a negative errno. */
    int (*work_submit)(rampart_plugin_ctx* ctx, rampart_work_fn work, rampart_work_fn done, void* arg);

    /* Dial a peer port ("host:port"), through the transport's peer
     * context when one is loaded (verifying `expected_node_id`), else plain
     * TCP (only with allow_insecure_peers). After the handshake the host
     * sends the one-line preamble for `protocol` ("RAMPART/1 <protocol>\n")
     * and calls on_open. Returns NULL only for bad arguments. */
    rampart_conn* (*peer_dial)(rampart_plugin_ctx* ctx, const char* address, const char* expected_node_id,
                               const char* protocol, const rampart_conn_callbacks* callbacks, void* arg);
    /* Accept: peer-port connections whose preamble names `protocol` are
     * handed to these callbacks (only during init). -EEXIST if taken. */
    int (*peer_protocol_add)(rampart_plugin_ctx* ctx, const char* protocol, const rampart_conn_callbacks* callbacks,
                             void* arg);
    /* Plaintext out (copied). Returns the bytes held unsent, or a negative
     * errno. Stop writing while that stays above a bound you choose and
     * resume from on_data or a timer: this is the back-pressure signal. */
    int64_t (*conn_write)(rampart_conn* conn, const char* data, size_t len);
    /* Close after what was written is sent; on_close follows. */
    void (*conn_close)(rampart_conn* conn);
    /* The peer's certificate identity, NULL on a plain connection. */
    const rampart_peer_identity* (*conn_peer)(rampart_conn* conn);
    /* Stop (paused = 1) or resume (0) on_data: the host stops reading the
     * socket, so a consumer that cannot keep up holds the sender back. */
    void (*conn_pause_reading)(rampart_conn* conn, int paused);

    /* In a route handler: answer later (after a peer reply, a worker job
     * or a timer). Returns a handle that stays valid until host->respond()
     * is called on it, which must happen exactly once; the other request
     * functions work on it meanwhile. If the client has gone, respond still
     * frees the handle. Returns NULL outside a route handler. */
    rampart_request* (*request_defer)(rampart_request* req);

    /* Only during init, after route_add: serve this plugin's routes on a
     * listener of their own at `address` ("ip:port", port 0 = any) instead
     * of the API port, e.g. /metrics for a scraper on a management
     * network. Plain HTTP with the API's limits and the same hooks.
     * Returns 0, -EBUSY outside init, -EINVAL for a bad address, or a
     * negative errno when the address cannot be bound. */
    int (*listener_add)(rampart_plugin_ctx* ctx, const char* address);

    /* ---- ABI 1.2: supervised background work ---- */

    /* Only during init: put background work under the daemon's supervisor
     * as the task "<plugin>.<name>" (`name`: letters, digits, '_' and '-',
     * at most 32 characters). The host calls start(arg) once init has
     * succeeded, and again each time recovery.lua decides to restart the
     * work after task_failed: at once, after a backoff, or, for work that
     * keeps failing, only after its circuit breaker's cool-down (one trial)
     * or an operator's reset (`rampartctl breaker reset <task>`). Returns
     * NULL outside init, for a bad or taken name, or when the daemon runs
     * no supervisor. */
    rampart_task* (*task_register)(rampart_plugin_ctx* ctx, const char* name, rampart_task_start_fn start, void* arg);
    /* The work failed and has stopped (stop its timers first): the
     * supervisor restarts it as recovery.lua says. `reason` is logged and
     * shown by `rampartctl breaker list`. */
    void (*task_failed)(rampart_task* task, const char* reason);
    /* The work did something useful: a half-open breaker closes, and the
     * next failure's backoff starts again from the first attempt. */
    void (*task_ok)(rampart_task* task);
} rampart_host;

/* ---- the descriptor ---------------------------------------------------- */

typedef struct rampart_plugin {
    uint32_t abi_major;   /* RAMPART_ABI_MAJOR */
    uint32_t struct_size; /* sizeof(rampart_plugin) as the plugin was built */
    const char* name;     /* equals the .so name without ".so" */
    const char* version;  /* the plugin's own semver */
    const char* description;

    /* The plugin's configuration section, NULL-key terminated; may be NULL. */
    const rampart_config_key* config_schema;

    /* Policies whose exported data the plugin wants in on_policy, as
     * "policy:key" strings, NULL-terminated; may be NULL. A listed policy
     * that does not export the key fails the load. */
    const char* const* policy_data;

    /* Called once after the configuration validated. Store the plugin's
     * state in *state. Register routes, metrics and timers here. Return 0,
     * or a negative errno: the host then removes the routes and stops the
     * timers the plugin registered (metrics stay, see rampart_metric) and
     * refuses to start (exit 78). `host` stays valid until fini returns. */
    int (*init)(rampart_plugin_ctx* ctx, const rampart_host* host, void** state);

    /* SIGHUP: the plugin's section changed or was re-read. Keep what can
     * be kept (counters, buckets, records). Return 0, or a negative errno to
     * keep running with the previous configuration. May be NULL. */
    int (*reload)(void* state, rampart_plugin_ctx* ctx);

    /* Free everything. Called only when no request, timer or route of the
     * plugin is live. May be NULL. */
    void (*fini)(void* state);

    const rampart_hooks* hooks;

    /* ABI 1.1: a transport this plugin provides, or NULL. At most one
     * loaded plugin may provide one. */
    const rampart_transport* transport;
} rampart_plugin;

/* The one exported symbol. Declare it with RAMPART_PLUGIN_EXPORT so it
 * stays visible when the plugin is built with -fvisibility=hidden (as the
 * shipped plugins are):
 *     RAMPART_PLUGIN_EXPORT const rampart_plugin* rampart_plugin_entry(void) { return &descriptor; }
 */
typedef const rampart_plugin* (*rampart_plugin_entry_fn)(void);
#if defined(__GNUC__)
#define RAMPART_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define RAMPART_PLUGIN_EXPORT
#endif

#ifdef __cplusplus
}
#endif

#endif /* RAMPART_PLUGIN_H */
