/* The Raft engine adapter. See raft_adapter.h for the contract and
 * docs/store.md ("Engine adapter") for why each guard exists. This is the
 * only file that includes libraft's headers. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include "cluster/raft_adapter.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <raft.h>
#include <raft/uv.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include "cluster/lost_log_watch.h"
#include "util/crc32c.h"

/* ------------------------------------------------------------------ */
/* Defaults                                                            */

enum {
    DEFAULT_ELECTION_MS = 500, /* as cluster.election_timeout_ms */
    DEFAULT_HEARTBEAT_MS = 50, /* as cluster.heartbeat_ms */
    DEFAULT_INSTALL_SNAPSHOT_MS = 3000,
    DEFAULT_MAX_INFLIGHT = 256,
    DEFAULT_SNAPSHOT_THRESHOLD = 1024,
    DEFAULT_SNAPSHOT_WRITE_TIMEOUT_MS = 30000,
    DEFAULT_SNAPSHOT_TRAILING = 128,
    /* The daemon's per-peer supervised task paces redials (cluster/peer_dial_tasks.h):
     * the engine only asks again this often. */
    DEFAULT_CONNECT_RETRY_MS = 100,
    HANDSHAKE_FIXED = 24,      /* magic, id, address length: three u64 */
    HANDSHAKE_MAX_ADDR = 1024, /* padded address bytes accepted from a peer */
};

#define FRAME_TAG 0x31454d52u        /* "RME1" little endian: entry format 1 */
#define HANDSHAKE_MAGIC "RMPRAFT1"   /* 8 bytes, protocol 1 */
#define SNAPSHOT_MAGIC "RMPSNAP\x01" /* 8 bytes */
#define SNAPSHOT_FORMAT 1u

/* ------------------------------------------------------------------ */
/* Little-endian helpers                                               */

static void put32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t* p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t get64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* CRC32C: util/crc32c.h picks the CPU's instruction when it has one. The
 * name stays for the store's callers and the tests. */
uint32_t rampart_raft_crc32c(uint32_t crc, const void* data, size_t len) { return rampart_crc32c(crc, data, len); }

/* ------------------------------------------------------------------ */
/* Node                                                                */

struct apply_req {
    struct raft_apply req;
    struct rampart_raft* node;
    rampart_raft_apply_cb cb;
    void* ctx;
    uint64_t submitted_ns;  /* uv_hrtime() at submit, for the observer */
    struct apply_req* next; /* in node->applies, oldest first */
    struct apply_req* prev;
};

struct barrier_req {
    struct raft_barrier req;
    struct rampart_raft* node;
    rampart_raft_barrier_cb cb;
    void* ctx;
};

/* An outgoing connection: waiting for the core, then writing our handshake. */
struct rampart_raft_connect {
    struct rampart_raft* node;
    struct raft_uv_connect* req; /* the engine's request */
    raft_uv_connect_cb cb;
    uv_timer_t defer; /* delivers failures on a later loop turn */
    uv_pipe_t* pipe;  /* raft_malloc'ed: the engine frees it with raft_free */
    uv_write_t write;
    uint8_t hello[HANDSHAKE_FIXED + HANDSHAKE_MAX_ADDR];
    int status;
    bool waiting_core; /* connect_done not yet called */
    bool finished;     /* the engine's cb has fired */
    struct rampart_raft_connect* next;
};

/* An incoming connection whose handshake is being read. */
struct handshake {
    struct rampart_raft* node;
    uv_pipe_t* pipe;
    uint64_t expected_id;
    bool named;      /* accepted with accept_named(): verify decides */
    char* peer_name; /* the certificate's name (NULL: insecure) */
    size_t need, got;
    uint8_t buf[HANDSHAKE_FIXED + HANDSHAKE_MAX_ADDR + 1];
    struct handshake* next;
};

/* A snapshot whose payload the core serialises on the thread pool before
 * the engine's own snapshot_put sees it (io_snapshot_put_after_fill). */
struct snapshot_fill {
    uv_work_t work;
    bool pending; /* fsm_snapshot pinned a state: the payload is still to make */
    bool running; /* queued on the thread pool */
    unsigned trailing;
    struct raft_io_snapshot_put* req;
    const struct raft_snapshot* snapshot;
    raft_io_snapshot_put_cb cb; /* the engine's */
    void* engine_data;          /* req->data, while the adapter borrows it */
};

struct rampart_raft {
    uv_loop_t* loop;
    struct raft raft;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft_uv_transport transport;
    struct raft_tracer tracer;
    struct rampart_raft_config cfg;
    char* address;
    char* data_dir;
    bool io_ready, raft_ready, started, closing;

    /* Transport state. */
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb transport_close_cb;
    bool transport_closing;
    struct rampart_raft_connect* connects;
    struct handshake* handshakes;
    uv_timer_t transport_timer; /* fires the transport close cb off-stack */

    struct apply_req* applies; /* waiting requests, oldest first */
    struct apply_req* applies_tail;
    uint64_t last_applied_seen;
    void* snapshot_token;
    struct raft_buffer* snapshot_bufs;
    uint64_t snapshot_index; /* the index snapshot_bufs covers */
    struct snapshot_fill fill;
    rampart_raft_snapshot_cb snapshot_listener;
    void* snapshot_listener_user;
    bool snapshots_paused;
    bool snapshot_stalled;           /* the own write in flight is past its timeout */
    uv_timer_t snapshot_stall_timer; /* armed while an own write is in flight */

    rampart_raft_close_cb close_cb;
    void* close_ctx;

    /* Observation (status and metrics): the engine has no state callback, so
     * the adapter wraps raft_uv's start() to see every tick and message and
     * compares the state and the known leader after each. */
    int (*io_start)(struct raft_io*, unsigned, raft_io_tick_cb, raft_io_recv_cb);
    /* Wrapped too, to serialise snapshots off the loop (fsm_snapshot). */
    int (*io_snapshot_put)(struct raft_io*, unsigned, struct raft_io_snapshot_put*, const struct raft_snapshot*,
                           raft_io_snapshot_put_cb);
    void (*io_close)(struct raft_io*, raft_io_close_cb);
    int (*io_snapshot_get)(struct raft_io*, struct raft_io_snapshot_get*, raft_io_snapshot_get_cb);
    raft_io_close_cb engine_io_closed; /* held while a fill runs */
    bool io_closed;
    raft_io_tick_cb engine_tick;
    raft_io_recv_cb engine_recv;
    struct rampart_raft_observer observer;
    int seen_state;
    raft_id known_leader; /* as of the last observation (0: none) */
    raft_id last_leader;  /* the last leader seen, and in which term */
    raft_term last_leader_term;
    uint64_t leader_changes;
    int progress_layout; /* 0 unchecked, 1 matches the engine, -1 does not */

    /* An InstallSnapshot that arrived while this node was writing its own
     * snapshot, held back until that write is over (hold_install_while_taking). */
    struct raft_message held_install;
    bool install_held;

    /* A member answering below what it had acknowledged (watch_for_lost_log). */
    struct rampart_lost_log_watch lost_log;
};

/* The engine owns the `data` fields of the structs it is handed (raft_uv
 * sets the transport's), so find the node from the embedded struct. */
static struct rampart_raft* node_of_transport(struct raft_uv_transport* t) {
    return (struct rampart_raft*)((char*)t - offsetof(struct rampart_raft, transport));
}
static struct rampart_raft* node_of_fsm(struct raft_fsm* f) {
    return (struct rampart_raft*)((char*)f - offsetof(struct rampart_raft, fsm));
}

static void logf_(struct rampart_raft* n, int level, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
static void logf_(struct rampart_raft* n, int level, const char* fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n != NULL && n->cfg.log != NULL)
        n->cfg.log(n->cfg.log_user, level, msg);
    else
        fprintf(stderr, "raft: %s\n", msg);
}

/* The engine reports an error we cannot reason about: the buffer ownership
 * or the log state is unknown, so the only safe move is to stop and let the
 * supervisor restart us from disk. */
static void fatal(struct rampart_raft* n, const char* what, int rv) {
    logf_(n, 1, "FATAL: %s: %s (%d); aborting so the node restarts from its log", what, raft_strerror(rv), rv);
    abort();
}

static int map_status(int rv) {
    switch (rv) {
        case 0: return RAMPART_RAFT_OK;
        case RAFT_NOTLEADER: return RAMPART_RAFT_NOT_LEADER;
        case RAFT_LEADERSHIPLOST: return RAMPART_RAFT_LEADERSHIP_LOST;
        case RAFT_NOSPACE: return RAMPART_RAFT_NO_SPACE;
        case RAFT_SHUTDOWN:
        case RAFT_CANCELED: return RAMPART_RAFT_SHUTDOWN;
        case RAFT_TOOBIG: return RAMPART_RAFT_TOO_BIG;
        case RAFT_INVALID:
        case RAFT_BADID:
        case RAFT_BADROLE:
        case RAFT_DUPLICATEID:
        case RAFT_DUPLICATEADDRESS:
        case RAFT_NAMETOOLONG:
        case RAFT_NOTFOUND: return RAMPART_RAFT_INVALID;
        case RAFT_CORRUPT:
        case RAFT_MALFORMED: return RAMPART_RAFT_CORRUPT;
        case RAFT_IOERR: return RAMPART_RAFT_IO;
        case RAFT_NOMEM: return RAMPART_RAFT_NOMEM;
        case RAFT_CANTBOOTSTRAP: return RAMPART_RAFT_EXISTS;
        default: return RAMPART_RAFT_ERROR;
    }
}

const char* rampart_raft_status_name(int status) {
    static const char* const names[] = {"ok",      "not_leader", "no_space", "shutdown", "leadership_lost", "too_big",
                                        "invalid", "corrupt",    "io",       "nomem",    "exists",          "error"};
    if (status < 0 || (size_t)status >= sizeof names / sizeof names[0]) return "unknown";
    return names[status];
}

/* ------------------------------------------------------------------ */
/* Entry framing                                                       */

size_t rampart_raft_frame_size(size_t payload_len) {
    return (RAMPART_RAFT_FRAME_HEADER + payload_len + 7u) & ~(size_t)7u;
}

void rampart_raft_frame_encode(const void* payload, size_t len, void* out) {
    uint8_t* p = out;
    size_t total = rampart_raft_frame_size(len);
    put32(p, (uint32_t)len);
    put32(p + 4, FRAME_TAG);
    if (len > 0) memcpy(p + RAMPART_RAFT_FRAME_HEADER, payload, len);
    memset(p + RAMPART_RAFT_FRAME_HEADER + len, 0, total - RAMPART_RAFT_FRAME_HEADER - len);
}

int rampart_raft_frame_decode(const void* frame, size_t frame_len, const void** payload, size_t* len) {
    const uint8_t* p = frame;
    if (frame == NULL || frame_len < RAMPART_RAFT_FRAME_HEADER || frame_len % 8 != 0) return RAMPART_RAFT_CORRUPT;
    if (get32(p + 4) != FRAME_TAG) return RAMPART_RAFT_CORRUPT;
    size_t n = get32(p);
    /* The padding is exact: a frame one word too long is as wrong as one too
     * short, because it means the length header and the entry disagree. */
    if (rampart_raft_frame_size(n) != frame_len) return RAMPART_RAFT_CORRUPT;
    for (size_t i = RAMPART_RAFT_FRAME_HEADER + n; i < frame_len; i++)
        if (p[i] != 0) return RAMPART_RAFT_CORRUPT;
    *payload = p + RAMPART_RAFT_FRAME_HEADER;
    *len = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Snapshot envelope: magic[8] format u32 crc32c u32 length u64 index u64 */

static void snapshot_header(void* out, const void* data, size_t len, uint64_t index) {
    uint8_t* h = out;
    memcpy(h, SNAPSHOT_MAGIC, 8);
    put32(h + 8, SNAPSHOT_FORMAT);
    put32(h + 12, rampart_raft_crc32c(0, data, len));
    put64(h + 16, (uint64_t)len);
    put64(h + 24, index);
}

int rampart_raft_snapshot_check(const void* data, size_t len, const void** payload, size_t* payload_len) {
    const uint8_t* h = data;
    if (data == NULL || len < RAMPART_RAFT_SNAPSHOT_HEADER) return RAMPART_RAFT_CORRUPT;
    if (memcmp(h, SNAPSHOT_MAGIC, 8) != 0 || get32(h + 8) != SNAPSHOT_FORMAT) return RAMPART_RAFT_CORRUPT;
    uint64_t n = get64(h + 16);
    if (n != len - RAMPART_RAFT_SNAPSHOT_HEADER) return RAMPART_RAFT_CORRUPT;
    const uint8_t* body = h + RAMPART_RAFT_SNAPSHOT_HEADER;
    if (rampart_raft_crc32c(0, body, (size_t)n) != get32(h + 12)) return RAMPART_RAFT_CORRUPT;
    *payload = body;
    *payload_len = (size_t)n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* State machine trampolines                                           */

static struct apply_req* take_waiter(struct rampart_raft* n, uint64_t index) {
    for (struct apply_req* a = n->applies; a != NULL; a = a->next)
        if (a->req.index == index) return a;
    return NULL;
}

static void unlink_apply(struct rampart_raft* n, struct apply_req* a) {
    if (a->prev)
        a->prev->next = a->next;
    else
        n->applies = a->next;
    if (a->next)
        a->next->prev = a->prev;
    else
        n->applies_tail = a->prev;
    a->next = a->prev = NULL;
}

static int fsm_apply(struct raft_fsm* fsm, const struct raft_buffer* buf, void** result) {
    struct rampart_raft* n = node_of_fsm(fsm);
    /* The engine sets last_applied only after this returns, so the entry
     * being applied is the next one. */
    uint64_t index = raft_last_applied(&n->raft) + 1;
    const void* payload;
    size_t len;
    if (rampart_raft_frame_decode(buf->base, buf->len, &payload, &len) != 0) {
        /* The log is CRC-checked by the engine, so a bad frame is a bug or
         * foreign data: never apply garbage. */
        logf_(n, 1, "FATAL: entry %llu has a bad frame (%zu bytes)", (unsigned long long)index, buf->len);
        abort();
    }
    if (index <= n->last_applied_seen) {
        logf_(n, 1, "FATAL: entry %llu applied after %llu", (unsigned long long)index,
              (unsigned long long)n->last_applied_seen);
        abort();
    }
    n->last_applied_seen = index;
    void* res = NULL;
    n->cfg.fsm.apply(n->cfg.fsm.user, index, payload, len, &res);
    /* Nobody here waits for this entry: the engine would drop the result. */
    if (res != NULL && take_waiter(n, index) == NULL) {
        if (n->cfg.fsm.result_free) n->cfg.fsm.result_free(n->cfg.fsm.user, res);
        res = NULL;
    }
    *result = res;
    return 0;
}

/* The payload goes in bufs[1] and its envelope, CRC included, in bufs[0]. */
static void snapshot_set_payload(struct rampart_raft* n, const void* data, size_t len) {
    snapshot_header(n->snapshot_bufs[0].base, data, len, n->snapshot_index);
    n->snapshot_bufs[1].base = (void*)data;
    n->snapshot_bufs[1].len = len;
}

/* On the loop, inside the engine's snapshot step. With snapshot_fill the
 * core only pins its state here (cheap); the payload and its checksum are
 * made on the thread pool once the engine hands the snapshot to
 * snapshot_put (io_snapshot_put_after_fill). libraft's own fsm v3 hook,
 * snapshot_async, would not help: raft_uv (legacy mode) calls it right
 * after snapshot(), on the loop. */
static int fsm_snapshot(struct raft_fsm* fsm, struct raft_buffer* bufs[], unsigned* n_bufs) {
    struct rampart_raft* n = node_of_fsm(fsm);
    const void* data = NULL;
    size_t len = 0;
    void* token = NULL;
    if (n->cfg.fsm.snapshot == NULL || n->snapshot_bufs != NULL) return RAFT_BUSY;
    if (n->cfg.fsm.snapshot(n->cfg.fsm.user, &data, &len, &token) != 0) return RAFT_BUSY;

    struct raft_buffer* b = raft_calloc(2, sizeof *b);
    uint8_t* h = raft_malloc(RAMPART_RAFT_SNAPSHOT_HEADER);
    if (b == NULL || h == NULL) {
        raft_free(b);
        raft_free(h);
        if (n->cfg.fsm.snapshot_done) n->cfg.fsm.snapshot_done(n->cfg.fsm.user, token);
        return RAFT_NOMEM;
    }
    b[0].base = h;
    b[0].len = RAMPART_RAFT_SNAPSHOT_HEADER;
    n->snapshot_token = token;
    n->snapshot_bufs = b;
    /* Legacy snapshots are taken with commit == last applied. */
    n->snapshot_index = raft_last_applied(&n->raft);
    *bufs = b;
    if (n->cfg.fsm.snapshot_fill != NULL) {
        n->fill.pending = true;
        *n_bufs = 2;
        return 0;
    }
    snapshot_set_payload(n, data, len);
    *n_bufs = len > 0 ? 2 : 1;
    return 0;
}

/* fsm version 2: the engine calls this once it no longer reads the buffers,
 * written or not; the payload belongs to the core, so the engine must not
 * free it. */
static int fsm_snapshot_finalize(struct raft_fsm* fsm, struct raft_buffer* bufs[], unsigned* n_bufs) {
    struct rampart_raft* n = node_of_fsm(fsm);
    if (*bufs != NULL) {
        raft_free((*bufs)[0].base);
        raft_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    n->snapshot_bufs = NULL;
    n->fill.pending = false;
    if (n->cfg.fsm.snapshot_done) n->cfg.fsm.snapshot_done(n->cfg.fsm.user, n->snapshot_token);
    n->snapshot_token = NULL;
    return 0;
}

/* On success the engine hands us ownership of buf->base; on failure it frees
 * the snapshot itself, so we must not. */
static int fsm_restore(struct raft_fsm* fsm, struct raft_buffer* buf) {
    struct rampart_raft* n = node_of_fsm(fsm);
    const void* payload;
    size_t len;
    if (rampart_raft_snapshot_check(buf->base, buf->len, &payload, &len) != 0) {
        logf_(n, 1, "snapshot failed its checksum (%zu bytes): refusing to restore it", buf->len);
        return RAFT_CORRUPT;
    }
    uint64_t index = get64((const uint8_t*)buf->base + 24);
    if (n->cfg.fsm.restore == NULL || n->cfg.fsm.restore(n->cfg.fsm.user, index, payload, len) != 0) {
        logf_(n, 1, "state machine rejected snapshot at index %llu", (unsigned long long)index);
        return RAFT_CORRUPT;
    }
    n->last_applied_seen = index;
    raft_free(buf->base);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Transport: the engine's raft_uv_transport over fds the core supplies */

static void transport_maybe_closed(struct rampart_raft* n);

static void free_pipe_cb(uv_handle_t* h) { raft_free(h); }

static uv_pipe_t* pipe_from_fd(struct rampart_raft* n, int fd) {
    uv_pipe_t* p = raft_malloc(sizeof *p);
    if (p == NULL) return NULL;
    if (uv_pipe_init(n->loop, p, 0) != 0) {
        raft_free(p);
        return NULL;
    }
    if (uv_pipe_open(p, fd) != 0) {
        uv_close((uv_handle_t*)p, free_pipe_cb);
        return NULL;
    }
    return p;
}

static int tr_init(struct raft_uv_transport* t, raft_id id, const char* address) {
    (void)t;
    (void)id;
    (void)address;
    return 0;
}

static int tr_listen(struct raft_uv_transport* t, raft_uv_accept_cb cb) {
    struct rampart_raft* n = node_of_transport(t);
    n->accept_cb = cb;
    return 0;
}

static void connect_unlink(struct rampart_raft_connect* c) {
    struct rampart_raft_connect** pp = &c->node->connects;
    while (*pp && *pp != c) pp = &(*pp)->next;
    if (*pp) *pp = c->next;
}

static void connect_freed_cb(uv_handle_t* h) {
    struct rampart_raft_connect* c = h->data;
    struct rampart_raft* n = c->node;
    free(c);
    transport_maybe_closed(n);
}

/* Fire the engine's callback once and release the request. */
static void connect_finish(struct rampart_raft_connect* c, uv_stream_t* stream, int status) {
    if (c->finished) return;
    c->finished = true;
    connect_unlink(c);
    c->cb(c->req, stream, status);
    uv_close((uv_handle_t*)&c->defer, connect_freed_cb);
}

static void connect_defer_cb(uv_timer_t* t) {
    struct rampart_raft_connect* c = t->data;
    connect_finish(c, NULL, c->status);
}

static void connect_fail_later(struct rampart_raft_connect* c, int status) {
    c->status = status;
    uv_timer_start(&c->defer, connect_defer_cb, 0, 0);
}

static void hello_written_cb(uv_write_t* w, int status) {
    struct rampart_raft_connect* c = w->data;
    uv_pipe_t* p = c->pipe;
    c->pipe = NULL;
    if (status != 0 || c->node->transport_closing) {
        uv_close((uv_handle_t*)p, free_pipe_cb);
        connect_finish(c, NULL, c->node->transport_closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
        return;
    }
    connect_finish(c, (uv_stream_t*)p, 0);
}

static size_t encode_hello(uint8_t* out, uint64_t id, const char* address) {
    size_t alen = strlen(address) + 1;
    size_t padded = (alen + 7u) & ~(size_t)7u;
    memcpy(out, HANDSHAKE_MAGIC, 8);
    put64(out + 8, id);
    put64(out + 16, padded);
    memset(out + HANDSHAKE_FIXED, 0, padded);
    memcpy(out + HANDSHAKE_FIXED, address, alen);
    return HANDSHAKE_FIXED + padded;
}

void rampart_raft_connect_done(rampart_raft_connect* c, int fd, int status) {
    struct rampart_raft* n = c->node;
    if (!c->waiting_core) { /* cancelled or called twice: keep the fd from leaking */
        if (fd >= 0) close(fd);
        return;
    }
    c->waiting_core = false;
    if (status != 0 || fd < 0) {
        if (fd >= 0) close(fd);
        connect_fail_later(c, RAFT_NOCONNECTION);
        return;
    }
    c->pipe = pipe_from_fd(n, fd);
    if (c->pipe == NULL) {
        close(fd);
        connect_fail_later(c, RAFT_NOCONNECTION);
        return;
    }
    /* Tell the peer who we are, as libraft's TCP transport does. */
    uv_buf_t b = uv_buf_init((char*)c->hello, (unsigned)encode_hello(c->hello, n->cfg.id, n->address));
    c->write.data = c;
    if (uv_write(&c->write, (uv_stream_t*)c->pipe, &b, 1, hello_written_cb) != 0) {
        uv_close((uv_handle_t*)c->pipe, free_pipe_cb);
        c->pipe = NULL;
        connect_fail_later(c, RAFT_NOCONNECTION);
    }
}

static int tr_connect(struct raft_uv_transport* t, struct raft_uv_connect* req, raft_id id, const char* address,
                      raft_uv_connect_cb cb) {
    struct rampart_raft* n = node_of_transport(t);
    if (n->cfg.transport.connect == NULL || n->transport_closing) return RAFT_NOCONNECTION;
    if (strlen(address) + 1 > HANDSHAKE_MAX_ADDR) return RAFT_NAMETOOLONG;
    struct rampart_raft_connect* c = calloc(1, sizeof *c);
    if (c == NULL) return RAFT_NOMEM;
    c->node = n;
    c->req = req;
    c->cb = cb;
    c->waiting_core = true;
    uv_timer_init(n->loop, &c->defer);
    c->defer.data = c;
    c->next = n->connects;
    n->connects = c;
    if (n->cfg.transport.connect(n->cfg.transport.user, c, id, address) != 0) {
        c->waiting_core = false;
        c->finished = true; /* the engine sees the error return, not a cb */
        connect_unlink(c);
        uv_close((uv_handle_t*)&c->defer, connect_freed_cb);
        return RAFT_NOCONNECTION;
    }
    return 0;
}

static void handshake_unlink(struct handshake* h) {
    struct handshake** pp = &h->node->handshakes;
    while (*pp && *pp != h) pp = &(*pp)->next;
    if (*pp) *pp = h->next;
}

static void handshake_free(struct handshake* h) {
    free(h->peer_name);
    free(h);
}

static void handshake_fail(struct handshake* h, const char* why) {
    struct rampart_raft* n = h->node;
    logf_(n, 2, "peer handshake refused: %s", why);
    handshake_unlink(h);
    uv_close((uv_handle_t*)h->pipe, free_pipe_cb);
    handshake_free(h);
    transport_maybe_closed(n);
}

/* Hand out exactly the bytes still missing, so that we never read past the
 * handshake into the engine's first message. */
static void handshake_alloc_cb(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) {
    struct handshake* h = handle->data;
    (void)suggested;
    *buf = uv_buf_init((char*)h->buf + h->got, (unsigned)(h->need - h->got));
}

/* Validate a complete handshake; NULL if acceptable, else why not. */
static const char* handshake_check(struct handshake* h, uint64_t id, const char* address) {
    struct rampart_raft* n = h->node;
    if (id == 0) return "id 0";
    if (h->expected_id != 0 && id != h->expected_id) return "peer claims another node's id";
    if (h->named && h->peer_name != NULL) {
        /* An address naming a node must name the certificate's node. */
        const char* at = strchr(address, '@');
        size_t len = strlen(h->peer_name);
        if (at != NULL && ((size_t)(at - address) != len || strncmp(address, h->peer_name, len) != 0))
            return "peer's address names another node";
        if (n->cfg.transport.verify == NULL ||
            n->cfg.transport.verify(n->cfg.transport.user, h->peer_name, id, address) != 0)
            return "peer claims a Raft id its certificate does not own";
    }
    if (n->accept_cb == NULL || n->transport_closing) return "not listening";
    return NULL;
}

static void handshake_read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    struct handshake* h = s->data;
    struct rampart_raft* n = h->node;
    const char* why = NULL;
    (void)buf;
    if (nread == 0) return;
    if (nread < 0) {
        handshake_fail(h, uv_strerror((int)nread));
        return;
    }
    h->got += (size_t)nread;
    if (h->got == HANDSHAKE_FIXED && h->need == HANDSHAKE_FIXED) {
        uint64_t alen = get64(h->buf + 16);
        if (memcmp(h->buf, HANDSHAKE_MAGIC, 8) != 0)
            why = "bad magic";
        else if (alen == 0 || alen % 8 != 0 || alen > HANDSHAKE_MAX_ADDR)
            why = "bad address length";
        if (why != NULL)
            handshake_fail(h, why);
        else
            h->need = HANDSHAKE_FIXED + (size_t)alen;
        return;
    }
    if (h->got < h->need) return;
    uv_read_stop(s);
    uint64_t id = get64(h->buf + 8);
    h->buf[h->need] = 0;
    why = handshake_check(h, id, (const char*)h->buf + HANDSHAKE_FIXED);
    if (why != NULL) {
        char detail[160];
        snprintf(detail, sizeof detail, "%s (%s claims id %llu)", why, h->peer_name ? h->peer_name : "insecure peer",
                 (unsigned long long)id);
        handshake_fail(h, detail);
        return;
    }
    handshake_unlink(h);
    s->data = NULL;
    /* The engine copies the address before returning; free after. */
    n->accept_cb(&n->transport, id, (const char*)h->buf + HANDSHAKE_FIXED, s);
    handshake_free(h);
}

static int accept_stream(rampart_raft* n, int fd, uint64_t expected_id, bool named, const char* peer_name);

int rampart_raft_accept_fd(rampart_raft* n, int fd, uint64_t expected_id) {
    return accept_stream(n, fd, expected_id, false, NULL);
}

int rampart_raft_accept_named(rampart_raft* n, int fd, const char* peer_name) {
    return accept_stream(n, fd, 0, true, peer_name);
}

static int accept_stream(rampart_raft* n, int fd, uint64_t expected_id, bool named, const char* peer_name) {
    if (fd < 0) return RAMPART_RAFT_INVALID;
    if (n->accept_cb == NULL || n->transport_closing) {
        close(fd);
        return n->transport_closing ? RAMPART_RAFT_SHUTDOWN : RAMPART_RAFT_INVALID;
    }
    struct handshake* h = calloc(1, sizeof *h);
    if (h == NULL) {
        close(fd);
        return RAMPART_RAFT_NOMEM;
    }
    h->node = n;
    h->expected_id = expected_id;
    h->named = named;
    h->peer_name = peer_name != NULL ? strdup(peer_name) : NULL;
    h->need = HANDSHAKE_FIXED;
    h->pipe = pipe_from_fd(n, fd);
    if (h->pipe == NULL || (peer_name != NULL && h->peer_name == NULL)) {
        if (h->pipe != NULL)
            uv_close((uv_handle_t*)h->pipe, free_pipe_cb);
        else
            close(fd);
        handshake_free(h);
        return RAMPART_RAFT_IO;
    }
    h->pipe->data = h;
    h->next = n->handshakes;
    n->handshakes = h;
    if (uv_read_start((uv_stream_t*)h->pipe, handshake_alloc_cb, handshake_read_cb) != 0) {
        handshake_fail(h, "read start");
        return RAMPART_RAFT_IO;
    }
    return 0;
}

static void transport_timer_cb(uv_timer_t* t) {
    struct rampart_raft* n = t->data;
    transport_maybe_closed(n);
}

static void transport_maybe_closed(struct rampart_raft* n) {
    if (!n->transport_closing || n->transport_close_cb == NULL) return;
    if (n->connects != NULL || n->handshakes != NULL) return;
    raft_uv_transport_close_cb cb = n->transport_close_cb;
    n->transport_close_cb = NULL;
    cb(&n->transport);
}

static void tr_close(struct raft_uv_transport* t, raft_uv_transport_close_cb cb) {
    struct rampart_raft* n = node_of_transport(t);
    n->transport_closing = true;
    n->accept_cb = NULL;
    for (struct rampart_raft_connect* c = n->connects; c != NULL; c = c->next) {
        if (c->waiting_core) {
            c->waiting_core = false;
            if (n->cfg.transport.cancel) n->cfg.transport.cancel(n->cfg.transport.user, c);
            connect_fail_later(c, RAFT_CANCELED);
        }
        /* A handshake write in flight finishes (or fails) on its own and then
         * sees transport_closing. */
    }
    while (n->handshakes != NULL) {
        struct handshake* h = n->handshakes;
        n->handshakes = h->next; /* popped here; handshake_fail's unlink is then a no-op */
        handshake_fail(h, "closing");
    }
    /* Set only now, so that the frees above cannot fire it re-entrantly. */
    n->transport_close_cb = cb;
    /* Fire the close callback on a later loop turn, never from inside the
     * engine's close call. */
    uv_timer_start(&n->transport_timer, transport_timer_cb, 0, 0);
}

/* ------------------------------------------------------------------ */
/* Tracer: the engine's own diagnostics, errors and warnings only      */

static void tracer_emit(struct raft_tracer* t, int type, const void* info) {
    struct rampart_raft* n = t->impl;
    if (type != RAFT_TRACER_DIAGNOSTIC || info == NULL) return;
    const struct raft_tracer_info* i = info;
    if (i->version < 1 || i->diagnostic.level > 2) return;
    logf_(n, i->diagnostic.level, "engine: %s", i->diagnostic.message);
}

/* ------------------------------------------------------------------ */
/* Observation                                                         */

/* After anything that can change the engine's state: count a leader seen
 * in a new (id, term) and tell the observer about any change. */
static void observe(struct rampart_raft* n) {
    if (!n->started || n->closing) return;
    int state = raft_state(&n->raft);
    raft_id leader = 0;
    const char* address = NULL;
    raft_leader(&n->raft, &leader, &address);
    bool changed = state != n->seen_state || leader != n->known_leader;
    /* A leader known again after a gap in the same term is the same
     * leadership; another id or a new term is a change. */
    if (leader != 0) {
        raft_term term = raft_current_term(&n->raft);
        if (leader != n->last_leader || term != n->last_leader_term) {
            n->leader_changes++;
            n->last_leader = leader;
            n->last_leader_term = term;
        }
    }
    n->seen_state = state;
    n->known_leader = leader;
    if (changed && n->observer.state_changed != NULL) n->observer.state_changed(n->observer.user);
}

static struct rampart_raft* node_of_io(struct raft_io* io) {
    return (struct rampart_raft*)((char*)io - offsetof(struct rampart_raft, io));
}

/* libraft 0.22.1 crashes (a NULL dereference in takeSnapshotCb: it clears
 * legacy.snapshot_pending before reading it) when an InstallSnapshot from the
 * leader arrives while this node is writing a snapshot of its own: the
 * install is parked as "pending" and resumed through the NULL. A follower
 * that restarts behind a compacted leader meets exactly that (a rolling
 * restart killed one node in three). So the adapter never lets the engine
 * park an install: it holds the message itself while a snapshot is being
 * taken, and hands it over at the next tick or message after the write
 * ends. The engine owns the message's payload and configuration from the
 * moment recv_cb is called, so holding a copy of the struct is enough; a
 * second install while one is held replaces it (the leader sends the
 * newest), and a close frees it. */
static bool taking_snapshot(const struct rampart_raft* n) {
    return n->snapshot_bufs != NULL || n->raft.legacy.snapshot_taking;
}

static void drop_install(struct raft_message* msg) {
    raft_configuration_close(&msg->install_snapshot.conf);
    raft_free(msg->install_snapshot.data.base);
    msg->install_snapshot.data.base = NULL;
}

static bool hold_install_while_taking(struct rampart_raft* n, struct raft_message* msg) {
    if (msg->type != RAFT_INSTALL_SNAPSHOT || !taking_snapshot(n)) return false;
    if (n->install_held) drop_install(&n->held_install);
    n->held_install = *msg;
    n->install_held = true;
    logf_(n, 3, "holding a snapshot install (index %llu) until this node's own snapshot is written",
          (unsigned long long)msg->install_snapshot.last_index);
    return true;
}

static void release_held_install(struct rampart_raft* n) {
    if (!n->install_held || taking_snapshot(n) || n->closing) return;
    struct raft_message msg = n->held_install;
    n->install_held = false;
    n->engine_recv(&n->io, &msg);
}

static void io_tick_observed(struct raft_io* io) {
    struct rampart_raft* n = node_of_io(io);
    release_held_install(n);
    n->engine_tick(io);
    observe(n);
}

/* The engine refuses every (pre-)vote while this follower still knows a
 * leader, and it forgets the leader only when its own randomized election
 * timer fires (1 to 2 election timeouts after the last message). So when the
 * leader dies, the first survivor to time out is refused by the other, and
 * the election waits for the later of the survivors' timers: failover took
 * 1.5-3.7 s with a 1 s election timeout (bench/cluster_vs_etcd.py). The Raft
 * thesis (4.2.3) only refuses votes "within the minimum election timeout of
 * hearing from a current leader": past that, let the vote through with the
 * flag the engine honours for leadership transfers. Terms and log checks
 * still apply, and a live leader's heartbeats keep every follower inside
 * the window, so no healthy leader is disrupted. */
static void allow_votes_after_leader_silence(struct rampart_raft* n, struct raft_message* msg) {
    if (msg->type != RAFT_REQUEST_VOTE || raft_state(&n->raft) != RAFT_FOLLOWER) return;
    raft_time now = n->io.time(&n->io);
    if (now >= n->raft.election_timer_start && now - n->raft.election_timer_start >= n->raft.election_timeout)
        msg->request_vote.disrupt_leader = true;
}

/* A member that lost its log: see cluster/lost_log_watch.h. */
static raft_id best_other_voter(struct rampart_raft* n, raft_id except) {
    const struct raft_configuration* c = &n->raft.configuration;
    raft_id best = 0;
    raft_index best_match = 0;
    for (unsigned i = 0; i < c->n; i++) {
        raft_index match = 0;
        if (c->servers[i].role != RAFT_VOTER || c->servers[i].id == n->raft.id || c->servers[i].id == except) continue;
        if (raft_match_index(&n->raft, c->servers[i].id, &match) == 0 && (best == 0 || match > best_match)) {
            best = c->servers[i].id;
            best_match = match;
        }
    }
    return best;
}

static void watch_for_lost_log(struct rampart_raft* n, const struct raft_message* msg) {
    if (msg->type != RAFT_APPEND_ENTRIES_RESULT || raft_state(&n->raft) != RAFT_LEADER) return;
    const struct raft_append_entries_result* r = &msg->append_entries_result;
    raft_index match = 0;
    if (r->term != n->raft.current_term || raft_match_index(&n->raft, msg->server_id, &match) != 0) return;
    if (!rampart_lost_log_observe(&n->lost_log, n->raft.current_term, msg->server_id, r->last_log_index, match)) return;
    raft_id to = best_other_voter(n, msg->server_id);
    logf_(n, 2,
          "member %llu answers below the index it acknowledged (its last %llu, acknowledged %llu): its log was "
          "lost; %s",
          (unsigned long long)msg->server_id, (unsigned long long)r->last_log_index, (unsigned long long)match,
          to != 0 ? "handing leadership over so that a new leader refills it"
                  : "no other voter to hand leadership to: give it a join token (docs/cluster.md)");
    if (to != 0) rampart_raft_transfer(n, to, NULL, NULL);
}

static void io_recv_observed(struct raft_io* io, struct raft_message* msg) {
    struct rampart_raft* n = node_of_io(io);
    allow_votes_after_leader_silence(n, msg);
    watch_for_lost_log(n, msg);
    release_held_install(n);
    if (!hold_install_while_taking(n, msg)) n->engine_recv(io, msg);
    observe(n);
}

static int io_start_observed(struct raft_io* io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv) {
    struct rampart_raft* n = node_of_io(io);
    n->engine_tick = tick;
    n->engine_recv = recv;
    return n->io_start(io, msecs, io_tick_observed, io_recv_observed);
}

/* Serialising off the loop. The engine calls snapshot_put right after
 * fsm_snapshot and, for raft_uv, only reads the buffers from its thread
 * pool; so the adapter takes that call, has the core fill the payload and
 * the CRC on the thread pool, and hands the filled snapshot to raft_uv in
 * the after-work callback with the engine's own request and callback. The
 * engine marks itself "taking a snapshot" as soon as snapshot_put returns
 * 0, and the adapter's snapshot_bufs stays set until finalize, so
 * taking_snapshot() holds from fsm_snapshot to the end of the write. */
static void fill_work_cb(uv_work_t* work) {
    struct rampart_raft* n = work->data;
    const void* data = NULL;
    size_t len = 0;
    n->cfg.fsm.snapshot_fill(n->cfg.fsm.user, n->snapshot_token, &data, &len);
    snapshot_set_payload(n, data, len);
}

static void io_closed_after_fill(struct rampart_raft* n) {
    if (!n->io_closed || n->fill.running || n->engine_io_closed == NULL) return;
    raft_io_close_cb cb = n->engine_io_closed;
    n->engine_io_closed = NULL;
    cb(&n->io);
}

/* raft_uv finished writing this node's own snapshot: tell the listener
 * (the supervisor's "snapshots" task), then the engine. A failed write is
 * dropped by the engine, which keeps its log and tries again at its next
 * step while the threshold is passed. */
static void report_snapshot(struct rampart_raft* n, int status, const char* why) {
    if (n->snapshot_listener != NULL && !n->closing) n->snapshot_listener(n->snapshot_listener_user, status, why);
}

static void own_snapshot_put_cb(struct raft_io_snapshot_put* req, int status) {
    struct rampart_raft* n = req->data;
    struct snapshot_fill* f = &n->fill;
    req->data = f->engine_data;
    uv_timer_stop(&n->snapshot_stall_timer);
    n->snapshot_stalled = false;
    if (status != RAFT_CANCELED) {
        char why[320] = "";
        if (status != 0 && n->io.errmsg[0] != '\0') {
            snprintf(why, sizeof why, "%s: %s", raft_strerror(status), n->io.errmsg);
        } else if (status != 0) {
            snprintf(why, sizeof why, "%s", raft_strerror(status));
        }
        report_snapshot(n, status, why);
    }
    f->cb(req, status);
}

/* raft_uv writes the whole snapshot while "allocating" it and retries that
 * step every 5 s after any failure (ENOSPC, EIO) without telling anyone;
 * the engine meanwhile takes no other snapshot and the log only grows. */
static void snapshot_stall_cb(uv_timer_t* t) {
    struct rampart_raft* n = t->data;
    n->snapshot_stalled = true;
    char why[160];
    snprintf(why, sizeof why,
             "snapshot write stalled: not finished after %u ms (the engine retries it every 5 s: full disk or I/O "
             "error?)",
             n->cfg.snapshot_write_timeout_ms);
    report_snapshot(n, RAMPART_RAFT_IO, why);
}

static void fill_after_work_cb(uv_work_t* work, int status) {
    struct rampart_raft* n = work->data;
    struct snapshot_fill* f = &n->fill;
    f->running = false;
    f->pending = false;
    /* The engine's struct; only the count changes, for an empty payload. */
    if (n->snapshot_bufs[1].len == 0) ((struct raft_snapshot*)f->snapshot)->n_bufs = 1;
    /* The request's data field is the caller's: borrowed until the write
     * ends, so that its callback finds this node. */
    f->engine_data = f->req->data;
    f->req->data = n;
    int rv = status == 0 && !n->closing
                 ? n->io_snapshot_put(&n->io, f->trailing, f->req, f->snapshot, own_snapshot_put_cb)
                 : RAFT_CANCELED;
    if (rv == 0) uv_timer_start(&n->snapshot_stall_timer, snapshot_stall_cb, n->cfg.snapshot_write_timeout_ms, 0);
    if (rv != 0) f->req->data = f->engine_data;
    if (rv != 0 && !n->closing) fatal(n, "snapshot_put", rv); /* the engine asserts a close on failure */
    if (rv != 0) f->cb(f->req, RAFT_CANCELED);
    io_closed_after_fill(n);
}

static int io_snapshot_put_after_fill(struct raft_io* io, unsigned trailing, struct raft_io_snapshot_put* req,
                                      const struct raft_snapshot* snapshot, raft_io_snapshot_put_cb cb) {
    struct rampart_raft* n = node_of_io(io);
    struct snapshot_fill* f = &n->fill;
    /* Installs from the leader and unfilled-free snapshots go straight on. */
    if (!f->pending || f->running || snapshot->bufs != n->snapshot_bufs)
        return n->io_snapshot_put(io, trailing, req, snapshot, cb);
    f->trailing = trailing;
    f->req = req;
    f->snapshot = snapshot;
    f->cb = cb;
    f->work.data = n;
    if (uv_queue_work(n->loop, &f->work, fill_work_cb, fill_after_work_cb) != 0) return RAFT_NOMEM;
    f->running = true;
    return 0;
}

/* raft_uv does not know of a fill in flight: the engine's close callback
 * (which frees the engine) waits for it. */
static void io_closed_cb(struct raft_io* io) {
    struct rampart_raft* n = node_of_io(io);
    n->io_closed = true;
    io_closed_after_fill(n);
}

static void io_close_after_fill(struct raft_io* io, raft_io_close_cb cb) {
    struct rampart_raft* n = node_of_io(io);
    n->engine_io_closed = cb;
    n->io_close(io, io_closed_cb);
}

/* ------------------------------------------------------------------ */
/* Loading a snapshot to send: a failure never reaches the engine      */

/* A leader loads its newest snapshot to send it to a follower that is too
 * far behind (raft_uv's snapshot_get lists the files on the thread pool,
 * then reads the newest). With a low snapshot threshold the node's own
 * snapshots come so fast that the listed one can be deleted (raft_uv keeps
 * the last two) before it is read. 0.22.1's legacyLoadSnapshotCb then frees
 * the message's configuration and data, which sendSnapshot never set:
 * "double free or corruption" and SIGABRT (a CI rehearsal,
 * test_snapshot_install, killed the leader so). So the adapter takes the
 * load's answer first: a failure is loaded again, a few times; if it still
 * fails, the engine never hears of it, and its install timeout (about 3 s)
 * sends the snapshot again from scratch. The engine's request is then never
 * completed: a few hundred bytes, once per such failure. */
enum { SNAPSHOT_GET_ATTEMPTS = 4 };

struct snapshot_get {
    struct raft_io_snapshot_get proxy; /* what raft_uv sees */
    struct rampart_raft* node;
    struct raft_io_snapshot_get* engine_req;
    raft_io_snapshot_get_cb engine_cb;
    unsigned attempts;
};

static void snapshot_get_cb(struct raft_io_snapshot_get* proxy, struct raft_snapshot* snapshot, int status) {
    struct snapshot_get* g = proxy->data;
    struct rampart_raft* n = g->node;
    if (status == 0) {
        g->engine_req->cb = g->engine_cb;
        g->engine_cb(g->engine_req, snapshot, 0);
        free(g);
        return;
    }
    raft_free(snapshot); /* raft_uv allocated it; on a failure nobody else frees it */
    if (++g->attempts < SNAPSHOT_GET_ATTEMPTS && !n->closing &&
        n->io_snapshot_get(&n->io, &g->proxy, snapshot_get_cb) == 0) {
        logf_(n, 3, "loading the snapshot to send failed (%s); loading it again", raft_strerror(status));
        return;
    }
    logf_(n, 2,
          "loading the snapshot to send failed %u times (%s): the install is dropped; the leader sends it again "
          "after its install timeout",
          g->attempts, raft_strerror(status));
    free(g);
}

static int io_snapshot_get_guarded(struct raft_io* io, struct raft_io_snapshot_get* req, raft_io_snapshot_get_cb cb) {
    struct rampart_raft* n = node_of_io(io);
    struct snapshot_get* g = calloc(1, sizeof *g);
    if (g == NULL) return RAFT_NOMEM;
    g->proxy.data = g;
    g->node = n;
    g->engine_req = req;
    g->engine_cb = cb;
    int rv = n->io_snapshot_get(io, &g->proxy, snapshot_get_cb);
    if (rv != 0) free(g);
    return rv;
}

/* ------------------------------------------------------------------ */
/* raft_uv's AIO contexts: destroyed off the loop                      */

/* raft_uv gives every open log segment its own kernel AIO context and
 * calls io_destroy() on the loop when it closes one, which happens at every
 * snapshot (the snapshot's barrier closes the open segment) and every
 * segment roll. io_destroy waits for an RCU grace period: 25-40 ms measured
 * with strace here, during which no request is served (the /health stalls
 * of tests/integration/test_snapshot_latency.py after the payload had
 * already moved off the loop). libraft reaches it through libc's syscall(),
 * which this definition interposes (the executable's symbol wins over
 * libc's for libraft.so's PLT call): io_destroy goes to a detached thread,
 * every other call straight to libc. The context is idle by then (the
 * segment's writer waits for its writes before closing), and nothing uses
 * it again. On any failure to start the thread, it is destroyed in place. */
typedef long (*syscall_fn)(long, ...);
static syscall_fn libc_syscall;
static pthread_once_t libc_syscall_once = PTHREAD_ONCE_INIT;

static void find_libc_syscall(void) { libc_syscall = (syscall_fn)dlsym(RTLD_NEXT, "syscall"); }

static void* io_destroy_later(void* ctx) {
    libc_syscall(SYS_io_destroy, (long)(uintptr_t)ctx);
    return NULL;
}

static bool io_destroy_off_loop(long ctx) {
    pthread_attr_t attr;
    pthread_t t;
    if (pthread_attr_init(&attr) != 0) return false;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    bool ok = pthread_create(&t, &attr, io_destroy_later, (void*)(uintptr_t)ctx) == 0;
    pthread_attr_destroy(&attr);
    return ok;
}

long syscall(long number, ...) {
    va_list ap;
    long a[6];
    va_start(ap, number);
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long); /* as libc's own: six registers */
    va_end(ap);
    pthread_once(&libc_syscall_once, find_libc_syscall);
    if (number == SYS_io_destroy && io_destroy_off_loop(a[0])) return 0;
    return libc_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */

static void ignore_sigpipe(void) {
    /* The engine writes to peers that may have died; the default action
     * killed surviving nodes. EPIPE is handled as a write error instead. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
}

static unsigned or_default(unsigned v, unsigned def) { return v != 0 ? v : def; }

static void apply_engine_settings(struct rampart_raft* n) {
    struct rampart_raft_config* c = &n->cfg;
    c->election_timeout_ms = or_default(c->election_timeout_ms, DEFAULT_ELECTION_MS);
    c->heartbeat_timeout_ms = or_default(c->heartbeat_timeout_ms, DEFAULT_HEARTBEAT_MS);
    c->install_snapshot_timeout_ms = or_default(c->install_snapshot_timeout_ms, DEFAULT_INSTALL_SNAPSHOT_MS);
    c->max_inflight_entries = or_default(c->max_inflight_entries, DEFAULT_MAX_INFLIGHT);
    c->snapshot_threshold = or_default(c->snapshot_threshold, DEFAULT_SNAPSHOT_THRESHOLD);
    c->snapshot_trailing = or_default(c->snapshot_trailing, DEFAULT_SNAPSHOT_TRAILING);
    c->snapshot_write_timeout_ms = or_default(c->snapshot_write_timeout_ms, DEFAULT_SNAPSHOT_WRITE_TIMEOUT_MS);
    c->connect_retry_ms = or_default(c->connect_retry_ms, DEFAULT_CONNECT_RETRY_MS);

    raft_set_election_timeout(&n->raft, c->election_timeout_ms);
    raft_set_heartbeat_timeout(&n->raft, c->heartbeat_timeout_ms);
    raft_set_install_snapshot_timeout(&n->raft, c->install_snapshot_timeout_ms);
    raft_set_max_inflight_entries(&n->raft, c->max_inflight_entries);
    raft_set_snapshot_threshold(&n->raft, c->snapshot_threshold);
    raft_set_snapshot_trailing(&n->raft, c->snapshot_trailing);
    /* A node back from a partition must not depose a healthy leader. */
    raft_set_pre_vote(&n->raft, true);
    raft_uv_set_connect_retry_delay(&n->io, c->connect_retry_ms);
}

static void node_free(struct rampart_raft* n) {
    free(n->address);
    free(n->data_dir);
    free(n);
}

static void node_free_timer_cb(uv_handle_t* h) {
    struct rampart_raft* n = h->data;
    rampart_raft_close_cb cb = n->close_cb;
    void* ctx = n->close_ctx;
    node_free(n);
    if (cb) cb(ctx);
}

int rampart_raft_create(uv_loop_t* loop, const struct rampart_raft_config* cfg, rampart_raft** out) {
    *out = NULL;
    if (loop == NULL || cfg == NULL || cfg->id == 0 || cfg->address == NULL || cfg->data_dir == NULL ||
        cfg->fsm.apply == NULL)
        return RAMPART_RAFT_INVALID;
    if (strlen(cfg->address) + 1 > HANDSHAKE_MAX_ADDR) return RAMPART_RAFT_INVALID;
    ignore_sigpipe();

    struct rampart_raft* n = calloc(1, sizeof *n);
    if (n == NULL) return RAMPART_RAFT_NOMEM;
    n->loop = loop;
    n->cfg = *cfg;
    n->address = strdup(cfg->address);
    n->data_dir = strdup(cfg->data_dir);
    n->cfg.address = n->address;
    n->cfg.data_dir = n->data_dir;
    if (n->address == NULL || n->data_dir == NULL) {
        node_free(n);
        return RAMPART_RAFT_NOMEM;
    }

    /* The engine reads new methods only if version says they exist. */
    n->transport.version = 1;
    n->transport.data = n;
    n->transport.init = tr_init;
    n->transport.listen = tr_listen;
    n->transport.connect = tr_connect;
    n->transport.close = tr_close;

    n->fsm.version = 2; /* snapshot_finalize: the payload stays the core's */
    n->fsm.data = n;
    n->fsm.apply = fsm_apply;
    n->fsm.snapshot = fsm_snapshot;
    n->fsm.restore = fsm_restore;
    n->fsm.snapshot_finalize = fsm_snapshot_finalize;

    int rv = raft_uv_init(&n->io, loop, n->data_dir, &n->transport);
    if (rv != 0) {
        logf_(n, 1, "raft_uv_init(%s): %s", n->data_dir, n->io.errmsg);
        node_free(n);
        return map_status(rv);
    }
    n->io_ready = true;
    n->io_start = n->io.start;
    n->io.start = io_start_observed;
    n->io_snapshot_put = n->io.snapshot_put;
    n->io.snapshot_put = io_snapshot_put_after_fill;
    n->io_close = n->io.close;
    n->io.close = io_close_after_fill;
    n->io_snapshot_get = n->io.snapshot_get;
    n->io.snapshot_get = io_snapshot_get_guarded;
    /* Never let the engine "repair" a damaged log by dropping entries. */
    raft_uv_set_auto_recovery(&n->io, false);
    /* Snapshot files stay plain, so that start can check our envelope on
     * disk and set a corrupt one aside before the engine loads it
     * (store/snapshot_recovery.h); the engine still reads LZ4 ones. */
    raft_uv_set_snapshot_compression(&n->io, false);

    rv = raft_init(&n->raft, &n->io, &n->fsm, cfg->id, n->address);
    if (rv != 0) {
        logf_(n, 1, "raft_init: %s", raft_errmsg(&n->raft));
        raft_uv_close(&n->io);
        node_free(n);
        return map_status(rv);
    }
    n->raft_ready = true;
    n->raft.data = n;
    n->tracer.impl = n;
    n->tracer.version = 2;
    n->tracer.emit = tracer_emit;
    n->raft.tracer = &n->tracer;
    apply_engine_settings(n);

    uv_timer_init(loop, &n->transport_timer);
    n->transport_timer.data = n;
    uv_timer_init(loop, &n->snapshot_stall_timer);
    n->snapshot_stall_timer.data = n;
    *out = n;
    return 0;
}

int rampart_raft_bootstrap(rampart_raft* n, unsigned count, const uint64_t* ids, const char* const* addresses) {
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = 0;
    for (unsigned i = 0; i < count && rv == 0; i++)
        rv = raft_configuration_add(&conf, ids[i], addresses[i], RAFT_VOTER);
    if (rv == 0) rv = raft_bootstrap(&n->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) logf_(n, 1, "bootstrap: %s", raft_errmsg(&n->raft));
    return map_status(rv);
}

/* Whether libraft's syscall() calls reach the one above: only if the
 * executable exports it (a link with -Wl,--exclude-libs or a static core
 * library hidden another way would silently put io_destroy back on the
 * loop, measured as a 30 ms stall at every snapshot). */
static bool io_destroy_interposed(void) { return dlsym(RTLD_DEFAULT, "syscall") == (void*)syscall; }

int rampart_raft_start(rampart_raft* n) {
    if (!io_destroy_interposed())
        logf_(n, 2,
              "io_destroy runs on the loop: rampartd does not export its syscall() (built with "
              "-Wl,--exclude-libs?); each snapshot will stall requests for ~30 ms");
    int rv = raft_start(&n->raft);
    if (rv != 0) {
        logf_(n, 1, "start: %s (%s)", raft_strerror(rv), raft_errmsg(&n->raft));
        return map_status(rv);
    }
    n->started = true;
    observe(n); /* a one-node cluster has just elected itself */
    return 0;
}

static void apply_done_cb(struct raft_apply* req, int status, void* result) {
    struct apply_req* a = req->data;
    struct rampart_raft* n = a->node;
    unlink_apply(n, a);
    uint64_t index = req->index;
    if (n->observer.applied != NULL)
        n->observer.applied(n->observer.user, map_status(status), (double)(uv_hrtime() - a->submitted_ns) / 1e9);
    if (status != 0 && result != NULL && n->cfg.fsm.result_free) n->cfg.fsm.result_free(n->cfg.fsm.user, result);
    a->cb(a->ctx, map_status(status), index, status == 0 ? result : NULL);
    free(a);
}

int rampart_raft_apply(rampart_raft* n, const void* data, size_t len, rampart_raft_apply_cb cb, void* ctx) {
    if (n->closing) return RAMPART_RAFT_SHUTDOWN;
    if (!n->started) return RAMPART_RAFT_NOT_LEADER;
    if (len > (n->cfg.max_command > RAMPART_RAFT_MAX_COMMAND ? n->cfg.max_command : RAMPART_RAFT_MAX_COMMAND))
        return RAMPART_RAFT_TOO_BIG;
    /* No early leadership check: the engine's own NOT_LEADER answer is the
     * path whose buffer ownership matters, and it must stay exercised. */

    struct apply_req* a = calloc(1, sizeof *a);
    struct raft_buffer buf;
    buf.len = rampart_raft_frame_size(len);
    buf.base = raft_malloc(buf.len);
    if (a == NULL || buf.base == NULL) {
        free(a);
        raft_free(buf.base);
        return RAMPART_RAFT_NOMEM;
    }
    rampart_raft_frame_encode(data, len, buf.base);
    a->node = n;
    a->cb = cb;
    a->ctx = ctx;
    a->submitted_ns = uv_hrtime();
    a->req.data = a;
    /* Exactly one buffer: with several, 0.22.1 reports success and keeps
     * only the first. */
    int rv = raft_apply(&n->raft, &a->req, &buf, 1, apply_done_cb);
    if (rv != 0) {
        if (rv != RAFT_NOTLEADER && rv != RAFT_NOSPACE) fatal(n, "raft_apply", rv);
        /* Only these two errors leave the buffer with us. */
        raft_free(buf.base);
        free(a);
        return map_status(rv);
    }
    a->prev = n->applies_tail;
    if (n->applies_tail)
        n->applies_tail->next = a;
    else
        n->applies = a;
    n->applies_tail = a;
    return 0;
}

static void barrier_done_cb(struct raft_barrier* req, int status) {
    struct barrier_req* b = req->data;
    b->cb(b->ctx, map_status(status), req->index);
    free(b);
}

int rampart_raft_barrier(rampart_raft* n, rampart_raft_barrier_cb cb, void* ctx) {
    if (n->closing) return RAMPART_RAFT_SHUTDOWN;
    if (!n->started || raft_state(&n->raft) != RAFT_LEADER) return RAMPART_RAFT_NOT_LEADER;
    struct barrier_req* b = calloc(1, sizeof *b);
    if (b == NULL) return RAMPART_RAFT_NOMEM;
    b->node = n;
    b->cb = cb;
    b->ctx = ctx;
    b->req.data = b;
    int rv = raft_barrier(&n->raft, &b->req, barrier_done_cb);
    if (rv != 0) {
        free(b);
        return map_status(rv);
    }
    return 0;
}

struct transfer_req {
    struct raft_transfer req;
    struct rampart_raft* node;
    rampart_raft_transfer_cb cb;
    void* ctx;
};

static void transfer_done_cb(struct raft_transfer* req) {
    struct transfer_req* t = req->data;
    raft_id id = 0;
    const char* address = NULL;
    raft_leader(&t->node->raft, &id, &address);
    if (t->cb) t->cb(t->ctx, id);
    free(t);
}

int rampart_raft_transfer(rampart_raft* n, uint64_t to, rampart_raft_transfer_cb cb, void* ctx) {
    if (n->closing) return RAMPART_RAFT_SHUTDOWN;
    if (!n->started || raft_state(&n->raft) != RAFT_LEADER) return RAMPART_RAFT_NOT_LEADER;
    struct transfer_req* t = calloc(1, sizeof *t);
    if (t == NULL) return RAMPART_RAFT_NOMEM;
    t->node = n;
    t->cb = cb;
    t->ctx = ctx;
    t->req.data = t;
    int rv = raft_transfer(&n->raft, &t->req, to, transfer_done_cb);
    if (rv != 0) {
        free(t);
        /* No voter to hand over to is a configuration fact, not an error. */
        return rv == RAFT_NOTFOUND ? RAMPART_RAFT_INVALID : map_status(rv);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Membership changes                                                  */

struct change_req {
    struct raft_change req;
    rampart_raft_change_cb cb;
    void* ctx;
};

static void change_done_cb(struct raft_change* req, int status) {
    struct change_req* c = req->data;
    if (c->cb) c->cb(c->ctx, map_status(status));
    free(c);
}

static struct change_req* change_new(struct rampart_raft* n, rampart_raft_change_cb cb, void* ctx, int* rv) {
    *rv = 0;
    if (n->closing)
        *rv = RAMPART_RAFT_SHUTDOWN;
    else if (!n->started || raft_state(&n->raft) != RAFT_LEADER)
        *rv = RAMPART_RAFT_NOT_LEADER;
    if (*rv != 0) return NULL;
    struct change_req* c = calloc(1, sizeof *c);
    if (c == NULL) {
        *rv = RAMPART_RAFT_NOMEM;
        return NULL;
    }
    c->cb = cb;
    c->ctx = ctx;
    c->req.data = c;
    return c;
}

static int change_submitted(struct rampart_raft* n, struct change_req* c, int rv, const char* what) {
    if (rv == 0) return 0;
    free(c);
    logf_(n, 2, "%s refused: %s", what, raft_errmsg(&n->raft));
    return map_status(rv);
}

int rampart_raft_add(rampart_raft* n, uint64_t id, const char* address, rampart_raft_change_cb cb, void* ctx) {
    int rv;
    if (id == 0 || address == NULL || strlen(address) + 1 > HANDSHAKE_MAX_ADDR) return RAMPART_RAFT_INVALID;
    struct change_req* c = change_new(n, cb, ctx, &rv);
    if (c == NULL) return rv;
    return change_submitted(n, c, raft_add(&n->raft, &c->req, id, address, change_done_cb), "add member");
}

int rampart_raft_assign(rampart_raft* n, uint64_t id, int role, rampart_raft_change_cb cb, void* ctx) {
    int rv;
    int engine_role = role == RAMPART_RAFT_MEMBER_VOTER     ? RAFT_VOTER
                      : role == RAMPART_RAFT_MEMBER_STANDBY ? RAFT_STANDBY
                      : role == RAMPART_RAFT_MEMBER_SPARE   ? RAFT_SPARE
                                                            : -1;
    if (engine_role < 0) return RAMPART_RAFT_INVALID;
    struct change_req* c = change_new(n, cb, ctx, &rv);
    if (c == NULL) return rv;
    return change_submitted(n, c, raft_assign(&n->raft, &c->req, id, engine_role, change_done_cb), "assign role");
}

int rampart_raft_remove(rampart_raft* n, uint64_t id, rampart_raft_change_cb cb, void* ctx) {
    int rv;
    struct change_req* c = change_new(n, cb, ctx, &rv);
    if (c == NULL) return rv;
    return change_submitted(n, c, raft_remove(&n->raft, &c->req, id, change_done_cb), "remove member");
}

int rampart_raft_state(const rampart_raft* n) {
    switch (raft_state((struct raft*)&n->raft)) {
        case RAFT_FOLLOWER: return RAMPART_RAFT_FOLLOWER;
        case RAFT_CANDIDATE: return RAMPART_RAFT_CANDIDATE;
        case RAFT_LEADER: return RAMPART_RAFT_LEADER;
        default: return RAMPART_RAFT_UNAVAILABLE;
    }
}

int rampart_raft_is_leader(const rampart_raft* n) { return rampart_raft_state(n) == RAMPART_RAFT_LEADER; }

/* "<name>@<address>": the address part (the whole string without '@'). */
static const char* address_part(const char* address) {
    const char* at = address != NULL ? strchr(address, '@') : NULL;
    return at != NULL ? at + 1 : (address != NULL ? address : "");
}

static void name_part(const char* address, char* out, size_t out_len) {
    const char* at = address != NULL ? strchr(address, '@') : NULL;
    size_t len = at != NULL ? (size_t)(at - address) : 0;
    if (len >= out_len) len = 0; /* not one of ours: no name rather than a cut one */
    memcpy(out, address, len);
    out[len] = 0;
}

uint64_t rampart_raft_leader(const rampart_raft* n, char* buf, size_t buf_len) {
    raft_id id = 0;
    const char* address = NULL;
    raft_leader((struct raft*)&n->raft, &id, &address);
    if (buf != NULL && buf_len > 0) snprintf(buf, buf_len, "%s", address_part(address));
    return id;
}

uint64_t rampart_raft_id(const rampart_raft* n) { return n->raft.id; }

uint64_t rampart_raft_term(const rampart_raft* n) { return raft_current_term(&n->raft); }
uint64_t rampart_raft_commit_index(const rampart_raft* n) { return raft_commit_index(&n->raft); }
uint64_t rampart_raft_applied_index(const rampart_raft* n) { return raft_last_applied((struct raft*)&n->raft); }
uint64_t rampart_raft_last_index(const rampart_raft* n) { return raft_last_index((struct raft*)&n->raft); }

int rampart_raft_sole_voter(const rampart_raft* n) {
    const struct raft_configuration* c = &n->raft.configuration;
    unsigned voters = 0;
    bool self = false;
    for (unsigned i = 0; i < c->n; i++) {
        if (c->servers[i].role != RAFT_VOTER) continue;
        voters++;
        if (c->servers[i].id == n->raft.id) self = true;
    }
    return voters == 1 && self;
}

void rampart_raft_set_snapshot_listener(rampart_raft* n, rampart_raft_snapshot_cb cb, void* user) {
    n->snapshot_listener = cb;
    n->snapshot_listener_user = user;
}

/* The engine asks its threshold at every step: past UINT_MAX entries it
 * never is. */
void rampart_raft_pause_snapshots(rampart_raft* n, int paused) {
    n->snapshots_paused = paused != 0;
    if (n->raft_ready) raft_set_snapshot_threshold(&n->raft, paused ? UINT_MAX : n->cfg.snapshot_threshold);
}

int rampart_raft_snapshots_paused(const rampart_raft* n) { return n->snapshots_paused ? 1 : 0; }

int rampart_raft_snapshot_stalled(const rampart_raft* n) { return n->snapshot_stalled ? 1 : 0; }

void rampart_raft_settings(const rampart_raft* n, struct rampart_raft_settings* out) {
    memset(out, 0, sizeof *out);
    out->pre_vote = n->raft.pre_vote;
    out->auto_recovery = 0; /* set off in create(); raft_uv has no getter */
    out->transport_version = n->transport.version;
    out->install_snapshot_timeout_ms = n->raft.install_snapshot_timeout;
    out->max_inflight_entries = n->raft.max_inflight_entries;
    out->snapshot_threshold = n->cfg.snapshot_threshold;
    out->snapshot_trailing = n->cfg.snapshot_trailing;
    out->election_timeout_ms = n->raft.election_timeout;
    out->heartbeat_timeout_ms = n->raft.heartbeat_timeout;
}

/* ------------------------------------------------------------------ */
/* Membership and replication progress                                 */

/* libraft 0.22.1 keeps the leader's per-member progress in a private struct
 * (src/progress.h) that raft.h only declares. Its layout, checked against
 * the shipped library's code: 56-byte elements, raft_match_index() reads
 * match_index at offset 16, and the progress initialiser stores -1 ("never")
 * in last_send and last_recv at offsets 24 and 32. Only last_recv is read
 * from it; match indexes come from the public raft_match_index(), and the
 * two are compared on first use so that another engine build shows "last
 * contact unknown" instead of garbage. */
struct progress_0_22 {
    unsigned short state, catch_up, features, capacity;
    raft_index next_index;
    raft_index match_index;
    raft_time last_send;
    raft_time last_recv; /* when the last AppendEntries result came in */
    struct {
        raft_index index;
        raft_time last_send;
    } snapshot;
};
_Static_assert(sizeof(struct progress_0_22) == 56, "libraft 0.22.1 progress layout");

static const struct progress_0_22* leader_progress(struct rampart_raft* n) {
#if RAFT_VERSION_NUMBER == 2201
    if (raft_state(&n->raft) != RAFT_LEADER || n->raft.leader_state.progress == NULL) return NULL;
    const struct progress_0_22* p = (const struct progress_0_22*)(const void*)n->raft.leader_state.progress;
    if (n->progress_layout == 0) {
        n->progress_layout = 1;
        const struct raft_configuration* c = &n->raft.configuration;
        for (unsigned i = 0; i < c->n; i++) {
            raft_index match = 0;
            if (raft_match_index(&n->raft, c->servers[i].id, &match) == 0 && match != p[i].match_index)
                n->progress_layout = -1;
        }
        if (n->progress_layout < 0)
            logf_(n, 2, "engine progress layout differs from libraft 0.22.1: last contact unknown");
    }
    return n->progress_layout > 0 ? p : NULL;
#else
    (void)n;
    return NULL;
#endif
}

unsigned rampart_raft_members(const rampart_raft* cn, struct rampart_raft_member* out, unsigned max) {
    struct rampart_raft* n = (struct rampart_raft*)cn; /* the engine's getters take non-const */
    const struct raft_configuration* c = &n->raft.configuration;
    raft_id leader = 0;
    const char* leader_address = NULL;
    raft_leader(&n->raft, &leader, &leader_address);
    bool leading = n->started && raft_state(&n->raft) == RAFT_LEADER;
    const struct progress_0_22* progress = leading ? leader_progress(n) : NULL;
    raft_time now = n->io.time(&n->io);
    raft_index last = raft_last_index(&n->raft);
    for (unsigned i = 0; i < c->n && i < max; i++) {
        const struct raft_server* s = &c->servers[i];
        struct rampart_raft_member* m = &out[i];
        memset(m, 0, sizeof *m);
        m->id = s->id;
        m->address = address_part(s->address);
        name_part(s->address, m->name, sizeof m->name);
        m->role = s->role == RAFT_VOTER     ? RAMPART_RAFT_MEMBER_VOTER
                  : s->role == RAFT_STANDBY ? RAMPART_RAFT_MEMBER_STANDBY
                                            : RAMPART_RAFT_MEMBER_SPARE;
        m->is_self = s->id == n->raft.id;
        m->is_leader = leader != 0 && s->id == leader;
        m->last_contact_ms = -1;
        if (!leading) continue;
        m->progress_known = 1;
        if (m->is_self) {
            m->match_index = last;
            m->last_contact_ms = 0;
            continue;
        }
        raft_index match = 0;
        if (raft_match_index(&n->raft, s->id, &match) == 0) m->match_index = match;
        if (progress != NULL && progress[i].last_recv != (raft_time)-1)
            m->last_contact_ms = progress[i].last_recv >= now ? 0 : (int64_t)(now - progress[i].last_recv);
    }
    return c->n;
}

int64_t rampart_raft_leader_contact_ms(const rampart_raft* cn) {
    struct rampart_raft* n = (struct rampart_raft*)cn;
    if (!n->started) return -1;
    int state = raft_state(&n->raft);
    if (state == RAFT_LEADER) return 0;
    raft_id leader = 0;
    const char* address = NULL;
    raft_leader(&n->raft, &leader, &address);
    if (state != RAFT_FOLLOWER || leader == 0) return -1;
    /* A follower restarts its election timer on each message from its
     * leader, so the timer's start is when it last heard from it. */
    raft_time now = n->io.time(&n->io);
    return n->raft.election_timer_start >= now ? 0 : (int64_t)(now - n->raft.election_timer_start);
}

unsigned rampart_raft_voters(const rampart_raft* n) {
    const struct raft_configuration* c = &n->raft.configuration;
    unsigned voters = 0;
    for (unsigned i = 0; i < c->n; i++)
        if (c->servers[i].role == RAFT_VOTER) voters++;
    return voters;
}

uint64_t rampart_raft_leader_changes(const rampart_raft* n) { return n->leader_changes; }

void rampart_raft_set_observer(rampart_raft* n, const struct rampart_raft_observer* observer) {
    if (observer != NULL)
        n->observer = *observer;
    else
        memset(&n->observer, 0, sizeof n->observer);
}

/* The node's last two handles close in turn: its memory goes with the second. */
static void stall_timer_closed_cb(uv_handle_t* h) {
    struct rampart_raft* n = h->data;
    n->transport_timer.data = n;
    uv_close((uv_handle_t*)&n->transport_timer, node_free_timer_cb);
}

static void raft_closed_cb(struct raft* r) {
    struct rampart_raft* n = r->data;
    if (n->install_held) drop_install(&n->held_install);
    n->install_held = false;
    raft_uv_close(&n->io);
    uv_close((uv_handle_t*)&n->snapshot_stall_timer, stall_timer_closed_cb);
}

void rampart_raft_close(rampart_raft* n, rampart_raft_close_cb cb, void* ctx) {
    if (n->closing) return;
    n->closing = true;
    uv_timer_stop(&n->snapshot_stall_timer);
    n->close_cb = cb;
    n->close_ctx = ctx;
    raft_close(&n->raft, raft_closed_cb);
}

/* ---- Recovery after permanent quorum loss (issue 6). Kept apart from the
 * rest: offline, on a node that was created and never started. */

int rampart_raft_recover(rampart_raft* n, unsigned count, const uint64_t* ids, const char* const* addresses) {
    if (n == NULL || n->started || count == 0 || ids == NULL || addresses == NULL) return RAMPART_RAFT_INVALID;
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = 0;
    for (unsigned i = 0; i < count && rv == 0; i++) {
        if (ids[i] == 0 || addresses[i] == NULL) rv = RAFT_INVALID;
        if (rv == 0) rv = raft_configuration_add(&conf, ids[i], addresses[i], RAFT_VOTER);
    }
    if (rv == 0) rv = raft_recover(&n->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0) {
        logf_(n, 1, "recover: %s (%s)", raft_strerror(rv), raft_errmsg(&n->raft));
        return map_status(rv);
    }
    logf_(n, 3, "recover: the configuration is now %u voter(s)", count);
    return 0;
}
