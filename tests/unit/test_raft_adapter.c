/* The Raft engine adapter against the real libraft 0.22.1, with real fsync on
 * a real disk (a directory under /var/tmp, never tmpfs, which takes another
 * I/O path). One test per guard in issue 5 ("Engine"), plus one-node
 * durability (replay, snapshot, corrupt snapshot) and a three-node cluster
 * over socketpairs through the injected transport. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "cluster/raft_adapter.h"

/* cmocka last, after the headers it needs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* ------------------------------------------------------------------ */
/* A test state machine: the ordered list of counters it has applied.   */

enum { MAX_ENTRIES = 4096 };

struct fsm {
    uint64_t counters[MAX_ENTRIES]; /* state: counters in apply order */
    uint64_t indexes[MAX_ENTRIES];  /* the index each was applied at (this run) */
    size_t n;
    size_t applied_calls;
    uint64_t restored_index; /* 0: no restore this run */
    int restores;
    int snapshots;
    int snapshots_done;
    uint64_t snapshot_first_index;
    int results_freed;
    int bad_payloads;
    size_t restored_n; /* entries the last restore brought */
    /* snapshot_fill (thread pool) tests: see test_snapshot_filled_off_the_loop. */
    size_t applied_atomic; /* f->n, published for the fill thread */
    size_t fill_wait_more; /* a fill waits until this many more entries applied */
    int fill_release;      /* or until this is set (atomic) */
    int fills, fills_off_loop;
    size_t fill_pinned_n, fill_seen_n;
    uint64_t fill_pinned_index;
    uv_thread_t loop_thread;
};

/* Payload: the counter (8 bytes LE) then (counter % 13) filler bytes, so the
 * entry sizes are odd and even and the padding is exercised on every path. */
static size_t make_payload(uint64_t counter, uint8_t* out) {
    size_t extra = (size_t)(counter % 13);
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(counter >> (8 * i));
    for (size_t i = 0; i < extra; i++) out[8 + i] = (uint8_t)(0xa0 + i);
    return 8 + extra;
}

static void fsm_apply(void* user, uint64_t index, const void* data, size_t len, void** result) {
    struct fsm* f = user;
    const uint8_t* p = data;
    f->applied_calls++;
    uint64_t counter = 0;
    for (int i = 7; i >= 0 && len >= 8; i--) counter = (counter << 8) | p[i];
    /* The exact payload comes back: length from the header, no padding. */
    if (len < 8 || len != 8 + counter % 13) {
        f->bad_payloads++;
        return;
    }
    if (f->n < MAX_ENTRIES) {
        f->counters[f->n] = counter;
        f->indexes[f->n] = index;
        f->n++;
        __atomic_store_n(&f->applied_atomic, f->n, __ATOMIC_RELEASE);
    }
    uint64_t* r = malloc(sizeof *r);
    *r = index * 2;
    *result = r;
}

static void fsm_result_free(void* user, void* result) {
    struct fsm* f = user;
    f->results_freed++;
    free(result);
}

static int fsm_snapshot(void* user, const void** data, size_t* len, void** token) {
    struct fsm* f = user;
    size_t bytes = f->n * 8;
    uint8_t* copy = malloc(bytes + 1);
    for (size_t i = 0; i < f->n; i++)
        for (int b = 0; b < 8; b++) copy[i * 8 + b] = (uint8_t)(f->counters[i] >> (8 * b));
    if (f->snapshots == 0) f->snapshot_first_index = f->n ? f->indexes[f->n - 1] : 0;
    f->snapshots++;
    *data = copy;
    *len = bytes;
    *token = copy;
    return 0;
}

static void fsm_snapshot_done(void* user, void* token) {
    struct fsm* f = user;
    f->snapshots_done++;
    free(token);
}

static int fsm_restore(void* user, uint64_t index, const void* data, size_t len) {
    struct fsm* f = user;
    const uint8_t* p = data;
    if (len % 8 != 0 || len / 8 > MAX_ENTRIES) return -1;
    f->n = len / 8;
    f->restored_n = f->n;
    for (size_t i = 0; i < f->n; i++) {
        uint64_t v = 0;
        for (int b = 7; b >= 0; b--) v = (v << 8) | p[i * 8 + b];
        f->counters[i] = v;
        f->indexes[i] = 0; /* unknown: restored, not applied */
    }
    f->restored_index = index;
    f->restores++;
    return 0;
}

/* The same state machine with snapshot_fill: snapshot() pins how many
 * counters there are (the list only grows, so its first n never change: an
 * immutable version), and the fill serialises them on the thread pool. The
 * fill first waits until the loop has applied fill_wait_more more entries
 * (or fill_release is set), which it can only see if the loop is not the
 * thread running it. */
struct fill_token {
    struct fsm* f;
    size_t n;
    uint8_t* bytes;
};

static int fsm_snapshot_pin(void* user, const void** data, size_t* len, void** token) {
    struct fsm* f = user;
    struct fill_token* t = calloc(1, sizeof *t);
    t->f = f;
    t->n = f->n;
    if (f->snapshots == 0) {
        f->snapshot_first_index = f->n ? f->indexes[f->n - 1] : 0;
        f->fill_pinned_n = f->n;
        f->fill_pinned_index = f->snapshot_first_index;
    }
    f->snapshots++;
    *data = NULL;
    *len = 0;
    *token = t;
    return 0;
}

static void fsm_snapshot_fill(void* user, void* token, const void** data, size_t* len) {
    struct fill_token* t = token;
    struct fsm* f = t->f;
    (void)user;
    uv_thread_t self = uv_thread_self();
    int first = __atomic_fetch_add(&f->fills, 1, __ATOMIC_ACQ_REL) == 0;
    if (!uv_thread_equal(&self, &f->loop_thread)) __atomic_fetch_add(&f->fills_off_loop, 1, __ATOMIC_ACQ_REL);
    for (int waited = 0; first && waited < 10000; waited++) {
        if (__atomic_load_n(&f->fill_release, __ATOMIC_ACQUIRE)) break;
        if (f->fill_wait_more && __atomic_load_n(&f->applied_atomic, __ATOMIC_ACQUIRE) >= t->n + f->fill_wait_more)
            break;
        uv_sleep(1);
    }
    if (first)
        __atomic_store_n(&f->fill_seen_n, __atomic_load_n(&f->applied_atomic, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
    t->bytes = malloc(t->n * 8 + 1);
    for (size_t i = 0; i < t->n; i++)
        for (int b = 0; b < 8; b++) t->bytes[i * 8 + b] = (uint8_t)(f->counters[i] >> (8 * b));
    *data = t->bytes;
    *len = t->n * 8;
}

static void fsm_snapshot_unpin(void* user, void* token) {
    struct fsm* f = user;
    struct fill_token* t = token;
    f->snapshots_done++;
    free(t->bytes);
    free(t);
}

/* ------------------------------------------------------------------ */
/* Loop helpers                                                        */

typedef int (*pred_fn)(void* ctx);

static void wake_cb(uv_timer_t* t) { (void)t; }

/* Run the loop until pred(ctx) or ms elapse; returns pred's last value. */
static int run_until(uv_loop_t* loop, pred_fn pred, void* ctx, uint64_t ms) {
    uv_timer_t wake;
    uv_timer_init(loop, &wake);
    uv_timer_start(&wake, wake_cb, 5, 5);
    uint64_t deadline = uv_now(loop) + ms;
    int ok = pred(ctx);
    while (!ok && uv_now(loop) < deadline) {
        uv_run(loop, UV_RUN_ONCE);
        ok = pred(ctx);
    }
    uv_close((uv_handle_t*)&wake, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static int closed_flag;
static void on_closed(void* ctx) { *(int*)ctx = 1; }
static int is_set(void* ctx) { return *(int*)ctx != 0; }

static void close_node(uv_loop_t* loop, rampart_raft* node) {
    int done = 0;
    rampart_raft_close(node, on_closed, &done);
    assert_true(run_until(loop, is_set, &done, 5000));
}

static int is_leader(void* ctx) { return rampart_raft_is_leader(ctx); }

static char* make_dir(void) {
    char tmpl[] = "/var/tmp/rampart-raft-test-XXXXXX";
    char* d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void remove_dir(char* dir) {
    DIR* d = opendir(dir);
    if (d != NULL) {
        struct dirent* e;
        char path[512];
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

static void quiet_log(void* user, int level, const char* msg) {
    (void)user;
    if (level <= 1) fprintf(stdout, "# raft log: %s\n", msg);
}

static struct rampart_raft_config base_config(uint64_t id, const char* address, const char* dir, struct fsm* f) {
    struct rampart_raft_config c;
    memset(&c, 0, sizeof c);
    c.id = id;
    c.address = address;
    c.data_dir = dir;
    c.election_timeout_ms = 300;
    c.heartbeat_timeout_ms = 50;
    c.snapshot_threshold = 100000;
    c.snapshot_trailing = 64;
    c.fsm.user = f;
    c.fsm.apply = fsm_apply;
    c.fsm.result_free = fsm_result_free;
    c.fsm.snapshot = fsm_snapshot;
    c.fsm.snapshot_done = fsm_snapshot_done;
    c.fsm.restore = fsm_restore;
    c.log = quiet_log;
    return c;
}

/* Create, bootstrap (first run) and start a one-node cluster; wait to lead. */
static rampart_raft* start_one(uv_loop_t* loop, struct rampart_raft_config* c, int expect_bootstrap) {
    rampart_raft* node = NULL;
    assert_int_equal(rampart_raft_create(loop, c, &node), 0);
    uint64_t id = c->id;
    const char* addr = c->address;
    int rv = rampart_raft_bootstrap(node, 1, &id, &addr);
    assert_int_equal(rv, expect_bootstrap ? RAMPART_RAFT_OK : RAMPART_RAFT_EXISTS);
    assert_int_equal(rampart_raft_start(node), 0);
    assert_true(run_until(loop, is_leader, node, 5000));
    return node;
}

/* ------------------------------------------------------------------ */
/* Submitting commands                                                 */

struct batch {
    rampart_raft* node;
    int done, failed;
    uint64_t last_index;
    uint64_t prev_index;
    int out_of_order;
    int bad_results;
};

static void on_applied(void* ctx, int status, uint64_t index, void* result) {
    struct batch* b = ctx;
    if (status != 0) {
        b->failed++;
    } else {
        if (index <= b->prev_index) b->out_of_order++;
        b->prev_index = index;
        b->last_index = index;
        /* The state machine's own result for this very entry. */
        if (result == NULL || *(uint64_t*)result != index * 2) b->bad_results++;
    }
    free(result);
    b->done++;
}

struct want {
    struct batch* b;
    int n;
};
static int batch_done(void* ctx) {
    struct want* w = ctx;
    return w->b->done >= w->n;
}

/* Apply counters [from, to) in windows so the pipeline stays full. */
static void apply_range(uv_loop_t* loop, rampart_raft* node, struct batch* b, uint64_t from, uint64_t to) {
    uint8_t payload[32];
    const uint64_t window = 128;
    const int base = b->done; /* results counted before this range */
    for (uint64_t c = from; c < to;) {
        uint64_t end = c + window < to ? c + window : to;
        for (; c < end; c++) {
            size_t len = make_payload(c, payload);
            assert_int_equal(rampart_raft_apply(node, payload, len, on_applied, b), 0);
        }
        struct want w = {b, base + (int)(end - from)};
        assert_true(run_until(loop, batch_done, &w, 10000));
    }
    assert_int_equal(b->failed, 0);
    assert_int_equal(b->out_of_order, 0);
    assert_int_equal(b->bad_results, 0);
}

static void assert_counters(const struct fsm* f, uint64_t n) {
    assert_int_equal(f->n, n);
    for (uint64_t i = 0; i < n; i++) assert_int_equal(f->counters[i], i);
    assert_int_equal(f->bad_payloads, 0);
}

/* ------------------------------------------------------------------ */
/* Pure pieces                                                         */

static void test_frame_padding_round_trip(void** state) {
    (void)state;
    uint8_t in[1100], out[1200];
    for (size_t i = 0; i < sizeof in; i++) in[i] = (uint8_t)(i * 7 + 1);
    for (size_t len = 0; len <= 1025; len += (len < 40 ? 1 : 97)) {
        size_t fs = rampart_raft_frame_size(len);
        assert_int_equal(fs % 8, 0);
        assert_true(fs >= len + RAMPART_RAFT_FRAME_HEADER && fs < len + RAMPART_RAFT_FRAME_HEADER + 8);
        memset(out, 0xee, sizeof out);
        rampart_raft_frame_encode(in, len, out);
        /* The explicit length header. */
        assert_int_equal(out[0] | out[1] << 8 | out[2] << 16 | (uint32_t)out[3] << 24, len);
        const void* p;
        size_t got;
        assert_int_equal(rampart_raft_frame_decode(out, fs, &p, &got), 0);
        assert_int_equal(got, len);
        assert_memory_equal(p, in, len);
        /* Every malformed variant is refused. */
        assert_int_not_equal(rampart_raft_frame_decode(out, fs - 8, &p, &got), 0);
        assert_int_not_equal(rampart_raft_frame_decode(out, fs + 8, &p, &got), 0);
        if (fs > len + RAMPART_RAFT_FRAME_HEADER) {
            out[fs - 1] = 1; /* non-zero padding */
            assert_int_not_equal(rampart_raft_frame_decode(out, fs, &p, &got), 0);
            out[fs - 1] = 0;
        }
        out[4] ^= 1; /* format tag */
        assert_int_not_equal(rampart_raft_frame_decode(out, fs, &p, &got), 0);
    }
    const void* p;
    size_t got;
    assert_int_not_equal(rampart_raft_frame_decode(out, 7, &p, &got), 0);
    assert_int_not_equal(rampart_raft_frame_decode(NULL, 0, &p, &got), 0);
}

static void test_crc32c_and_envelope(void** state) {
    (void)state;
    /* The standard CRC-32C check value. */
    assert_int_equal(rampart_raft_crc32c(0, "123456789", 9), 0xe3069283u);
    uint8_t junk[40] = {0};
    const void* p;
    size_t n;
    assert_int_not_equal(rampart_raft_snapshot_check(junk, sizeof junk, &p, &n), 0);
    assert_int_not_equal(rampart_raft_snapshot_check(junk, 3, &p, &n), 0);
}

/* ------------------------------------------------------------------ */
/* Guards                                                              */

static void test_sigpipe_ignored_after_create(void** state) {
    (void)state;
    signal(SIGPIPE, SIG_DFL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    char* dir = make_dir();
    struct fsm* f = calloc(1, sizeof *f);
    struct rampart_raft_config c = base_config(1, "n1", dir, f);
    rampart_raft* node = NULL;
    assert_int_equal(rampart_raft_create(&loop, &c, &node), 0);
    struct sigaction sa;
    sigaction(SIGPIPE, NULL, &sa);
    assert_true(sa.sa_handler == SIG_IGN);
    close_node(&loop, node);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(f);
    remove_dir(dir);
}

static void test_engine_settings(void** state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char* dir = make_dir();
    struct fsm* f = calloc(1, sizeof *f);
    struct rampart_raft_config c = base_config(1, "n1", dir, f);
    c.snapshot_threshold = 777;
    c.snapshot_trailing = 55;
    rampart_raft* node = NULL;
    assert_int_equal(rampart_raft_create(&loop, &c, &node), 0);
    struct rampart_raft_settings s;
    rampart_raft_settings(node, &s);
    assert_int_equal(s.pre_vote, 1);
    assert_int_equal(s.auto_recovery, 0);
    assert_int_equal(s.transport_version, 1);
    assert_int_equal(s.install_snapshot_timeout_ms, 3000);
    assert_true(s.max_inflight_entries > 32);
    assert_int_equal(s.snapshot_threshold, 777);
    assert_int_equal(s.snapshot_trailing, 55);
    assert_int_equal(s.election_timeout_ms, 300);
    close_node(&loop, node);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(f);
    remove_dir(dir);
}

static void never_called(void* ctx, int status, uint64_t index, void* result) {
    (void)status;
    (void)index;
    (void)result;
    (*(int*)ctx)++;
}
static void barrier_never(void* ctx, int status, uint64_t index) {
    (void)status;
    (void)index;
    (*(int*)ctx)++;
}

/* A started node with no configuration is a follower forever: the engine
 * answers NOT_LEADER and the adapter frees the buffer (ASan builds catch a
 * leak or a double free here). */
static void test_not_leader(void** state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char* dir = make_dir();
    struct fsm* f = calloc(1, sizeof *f);
    struct rampart_raft_config c = base_config(2, "n2", dir, f);
    rampart_raft* node = NULL;
    assert_int_equal(rampart_raft_create(&loop, &c, &node), 0);
    int calls = 0;
    assert_int_equal(rampart_raft_apply(node, "x", 1, never_called, &calls), RAMPART_RAFT_NOT_LEADER);
    assert_int_equal(rampart_raft_start(node), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(rampart_raft_apply(node, "abc", 3, never_called, &calls), RAMPART_RAFT_NOT_LEADER);
    assert_int_equal(rampart_raft_barrier(node, barrier_never, &calls), RAMPART_RAFT_NOT_LEADER);
    assert_int_equal(rampart_raft_is_leader(node), 0);
    assert_int_equal(rampart_raft_leader(node, NULL, 0), 0);
    uint8_t big[16];
    (void)big;
    close_node(&loop, node);
    assert_int_equal(calls, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(f);
    remove_dir(dir);
}

/* ------------------------------------------------------------------ */
/* One node: apply, replay, snapshot, corrupt snapshot                 */

struct barrier_wait {
    int done, status;
    uint64_t index;
};
static void on_barrier(void* ctx, int status, uint64_t index) {
    struct barrier_wait* w = ctx;
    w->done = 1;
    w->status = status;
    w->index = index;
}
static int barrier_done(void* ctx) { return ((struct barrier_wait*)ctx)->done; }

struct applied_wait {
    rampart_raft* node;
    struct fsm* f;
    size_t n;
};
static int fsm_has(void* ctx) {
    struct applied_wait* w = ctx;
    return w->f->n >= w->n;
}

static void test_one_node_apply_and_replay(void** state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char* dir = make_dir();
    struct fsm* f = calloc(1, sizeof *f);
    struct rampart_raft_config c = base_config(1, "n1", dir, f);
    rampart_raft* node = start_one(&loop, &c, 1);
    assert_true(rampart_raft_term(node) >= 1);
    assert_int_equal(rampart_raft_leader(node, NULL, 0), 1);

    struct batch b = {.node = node};
    apply_range(&loop, node, &b, 0, 1000);
    assert_counters(f, 1000);
    /* Indexes are the engine's, strictly increasing, and match the apply
     * callbacks' (checked in on_applied via the result). */
    for (size_t i = 1; i < f->n; i++) assert_true(f->indexes[i] > f->indexes[i - 1]);
    assert_int_equal(f->indexes[999], b.last_index);
    assert_true(rampart_raft_commit_index(node) >= b.last_index);
    assert_true(rampart_raft_applied_index(node) >= b.last_index);

    /* A barrier completes after everything before it is applied. */
    struct barrier_wait bw = {0};
    assert_int_equal(rampart_raft_barrier(node, on_barrier, &bw), 0);
    assert_true(run_until(&loop, barrier_done, &bw, 5000));
    assert_int_equal(bw.status, 0);
    assert_true(bw.index > b.last_index);
    assert_int_equal(f->results_freed, 0); /* every result had a waiter */

    uint64_t indexes[1000];
    memcpy(indexes, f->indexes, sizeof indexes);
    close_node(&loop, node);

    /* Restart from the same directory with an empty state machine: the log
     * replays every command, in order, at the same indexes. */
    struct fsm* g = calloc(1, sizeof *g);
    c.fsm.user = g;
    node = start_one(&loop, &c, 0);
    struct applied_wait w = {node, g, 1000};
    assert_true(run_until(&loop, fsm_has, &w, 10000));
    assert_counters(g, 1000);
    assert_memory_equal(g->indexes, indexes, sizeof indexes);
    assert_int_equal(g->restores, 0);
    /* Replayed results have no waiter: all handed back to result_free. */
    assert_int_equal(g->results_freed, 1000);
    close_node(&loop, node);

    assert_int_equal(uv_loop_close(&loop), 0);
    free(f);
    free(g);
    remove_dir(dir);
}

static int snapshots_settled(void* ctx) {
    struct fsm* f = ctx;
    return f->snapshots > 0 && f->snapshots_done == f->snapshots;
}

/* Newest snapshot data file: "snapshot-<term>-<index>-<ts>" without ".meta". */
static int newest_snapshot(const char* dir, char* out, size_t out_len) {
    DIR* d = opendir(dir);
    struct dirent* e;
    unsigned long long best = 0;
    int found = 0;
    while ((e = readdir(d)) != NULL) {
        unsigned long long term, index, ts;
        if (strncmp(e->d_name, "snapshot-", 9) != 0 || strstr(e->d_name, ".meta") != NULL) continue;
        if (sscanf(e->d_name, "snapshot-%llu-%llu-%llu", &term, &index, &ts) != 3) continue;
        if (!found || index > best) {
            best = index;
            snprintf(out, out_len, "%s/%s", dir, e->d_name);
            found = 1;
        }
    }
    closedir(d);
    return found;
}

static void test_snapshot_restore_and_corruption(void** state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char* dir = make_dir();
    struct fsm* f = calloc(1, sizeof *f);
    struct rampart_raft_config c = base_config(1, "n1", dir, f);
    c.snapshot_threshold = 200;
    c.snapshot_trailing = 20;
    rampart_raft* node = start_one(&loop, &c, 1);

    struct batch b = {.node = node};
    /* In steps of the threshold, each snapshot written before the next
     * step: the engine takes no snapshot while one is being written, so on
     * a loaded machine a single run of 1000 could end with only two. */
    for (uint64_t from = 0; from < 1000; from += 200) {
        apply_range(&loop, node, &b, from, from + 200);
        assert_true(run_until(&loop, snapshots_settled, f, 10000));
    }
    assert_counters(f, 1000);
    /* Taken at the threshold, not before and not much later. */
    assert_true(f->snapshots >= 3);
    assert_true(f->snapshot_first_index >= 200 && f->snapshot_first_index < 200 + 128 + 2);
    close_node(&loop, node);

    /* Restart: the newest snapshot is restored, then the trailing log. */
    struct fsm* g = calloc(1, sizeof *g);
    c.fsm.user = g;
    node = start_one(&loop, &c, 0);
    struct applied_wait w = {node, g, 1000};
    assert_true(run_until(&loop, fsm_has, &w, 10000));
    assert_int_equal(g->restores, 1);
    assert_true(g->restored_index >= 600);
    assert_counters(g, 1000);
    assert_true(g->applied_calls < 1000); /* most came from the snapshot */
    close_node(&loop, node);

    /* Flip one payload byte of the newest snapshot: restore must refuse it
     * and never hand the state machine garbage. */
    char path[600];
    assert_true(newest_snapshot(dir, path, sizeof path));
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t byte;
    off_t at = RAMPART_RAFT_SNAPSHOT_HEADER + 40;
    assert_int_equal(pread(fd, &byte, 1, at), 1);
    byte ^= 0x5a;
    assert_int_equal(pwrite(fd, &byte, 1, at), 1);
    close(fd);

    struct fsm* h = calloc(1, sizeof *h);
    c.fsm.user = h;
    rampart_raft* broken = NULL;
    assert_int_equal(rampart_raft_create(&loop, &c, &broken), 0);
    assert_int_equal(rampart_raft_start(broken), RAMPART_RAFT_CORRUPT);
    assert_int_equal(h->restores, 0);
    assert_int_equal(h->n, 0);
    close_node(&loop, broken);

    assert_int_equal(uv_loop_close(&loop), 0);
    free(f);
    free(g);
    free(h);
    remove_dir(dir);
}

/* Last closed segment ("<first>-<last>") in the data dir. */
static void use_fill(struct rampart_raft_config* c, struct fsm* f) {
    c->fsm.snapshot = fsm_snapshot_pin;
    c->fsm.snapshot_fill = fsm_snapshot_fill;
    c->fsm.snapshot_done = fsm_snapshot_unpin;
    f->loop_thread = uv_thread_self();
}

/* Issue 5: the snapshot is serialised (and checksummed) off the loop, from
 * the version pinned at its index, while the loop applies on; restoring it
 * gives exactly the state at that index. One snapshot only (threshold 200,
 * 350 entries), so the restart restores this one. */
static void test_snapshot_filled_off_the_loop(void** state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char* dir = make_dir();
    struct fsm* f = calloc(1, sizeof *f);
    struct rampart_raft_config c = base_config(1, "n1", dir, f);
    c.snapshot_threshold = 200;
    c.snapshot_trailing = 20;
    use_fill(&c, f);
    f->fill_wait_more = 60;
    rampart_raft* node = start_one(&loop, &c, 1);

    struct batch b = {.node = node};
    apply_range(&loop, node, &b, 0, 350);
    assert_counters(f, 350);
    assert_true(run_until(&loop, snapshots_settled, f, 10000));
    assert_int_equal(f->snapshots, 1);
    assert_int_equal(f->fills, 1);
    assert_int_equal(f->fills_off_loop, 1);
    /* The loop applied at least 60 more entries while the fill ran. */
    assert_true(f->fill_seen_n >= f->fill_pinned_n + 60);
    close_node(&loop, node);

    struct fsm* g = calloc(1, sizeof *g);
    c.fsm.user = g;
    use_fill(&c, g);
    node = start_one(&loop, &c, 0);
    struct applied_wait w = {node, g, 350};
    assert_true(run_until(&loop, fsm_has, &w, 10000));
    assert_int_equal(g->restores, 1);
    /* Exactly the state at the snapshot's index: every counter applied at
     * or before it in the first run, none after. */
    assert_true(g->restored_index >= f->fill_pinned_index);
    size_t at_index = 0;
    while (at_index < f->n && f->indexes[at_index] <= g->restored_index) at_index++;
    assert_int_equal(g->restored_n, f->fill_pinned_n);
    assert_int_equal(g->restored_n, at_index);
    assert_counters(g, 350);
    assert_int_equal(g->applied_calls, 350 - at_index);
    close_node(&loop, node);

    assert_int_equal(uv_loop_close(&loop), 0);
    free(f);
    free(g);
    remove_dir(dir);
}

static int snapshot_started(void* ctx) { return ((struct fsm*)ctx)->snapshots > 0; }

struct written {
    int calls;
    int last_status;
};

static void on_snapshot_written(void* user, int status, const char* error) {
    struct written* w = user;
    w->calls++;
    w->last_status = status;
    assert_non_null(error);
}

static int snapshot_reported(void* ctx) { return ((struct written*)ctx)->calls > 0; }

/* Paused snapshots (the supervisor's "snapshots" task after a failed
 * write): the engine takes none past its threshold, keeps every entry, and
 * takes one at its next step once resumed; the listener hears how the
 * write ended. */
static void test_snapshots_paused_then_resumed(void** state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char* dir = make_dir();
    struct fsm* f = calloc(1, sizeof *f);
    struct rampart_raft_config c = base_config(1, "n1", dir, f);
    c.snapshot_threshold = 50;
    c.snapshot_trailing = 10;
    use_fill(&c, f);
    f->fill_release = 1; /* the fill runs at once */
    rampart_raft* node = start_one(&loop, &c, 1);
    struct written w = {0, -1};
    rampart_raft_set_snapshot_listener(node, on_snapshot_written, &w);
    rampart_raft_pause_snapshots(node, 1);
    assert_int_equal(rampart_raft_snapshots_paused(node), 1);

    struct batch b = {.node = node};
    apply_range(&loop, node, &b, 0, 150);
    assert_counters(f, 150);
    assert_false(run_until(&loop, snapshot_started, f, 300));
    assert_int_equal(f->snapshots, 0);

    rampart_raft_pause_snapshots(node, 0);
    apply_range(&loop, node, &b, 150, 151); /* the engine's next step */
    assert_true(run_until(&loop, snapshot_reported, &w, 10000));
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.last_status, 0);
    assert_int_equal(f->snapshots, 1);
    close_node(&loop, node);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(f);
    remove_dir(dir);
}

/* A close while a fill runs waits for it: the engine's snapshot request is
 * cancelled, the pinned state released exactly once, nothing freed under
 * the fill. */
static void test_close_waits_for_a_running_fill(void** state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char* dir = make_dir();
    struct fsm* f = calloc(1, sizeof *f);
    struct rampart_raft_config c = base_config(1, "n1", dir, f);
    c.snapshot_threshold = 50;
    c.snapshot_trailing = 10;
    use_fill(&c, f);
    rampart_raft* node = start_one(&loop, &c, 1);

    struct batch b = {.node = node};
    apply_range(&loop, node, &b, 0, 60);
    assert_true(run_until(&loop, snapshot_started, f, 5000));
    int done = 0;
    rampart_raft_close(node, on_closed, &done);
    assert_false(run_until(&loop, is_set, &done, 300)); /* held by the fill */
    assert_int_equal(f->snapshots_done, 0);
    __atomic_store_n(&f->fill_release, 1, __ATOMIC_RELEASE);
    assert_true(run_until(&loop, is_set, &done, 5000));
    assert_int_equal(f->fills, 1);
    assert_int_equal(f->snapshots_done, 1);
    char path[600];
    assert_false(newest_snapshot(dir, path, sizeof path)); /* cancelled, not written */

    assert_int_equal(uv_loop_close(&loop), 0);
    free(f);
    remove_dir(dir);
}

static int last_segment(const char* dir, char* out, size_t out_len) {
    DIR* d = opendir(dir);
    struct dirent* e;
    unsigned long long best = 0;
    int found = 0;
    while ((e = readdir(d)) != NULL) {
        unsigned long long first, last;
        char tail;
        if (sscanf(e->d_name, "%llu-%llu%c", &first, &last, &tail) != 2) continue;
        if (!found || first > best) {
            best = first;
            snprintf(out, out_len, "%s/%s", dir, e->d_name);
            found = 1;
        }
    }
    closedir(d);
    return found;
}

/* Auto-recovery off: a damaged closed segment stops the node instead of the
 * engine quietly dropping the entries it cannot read. */
static void test_damaged_log_is_not_auto_recovered(void** state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char* dir = make_dir();
    struct fsm* f = calloc(1, sizeof *f);
    struct rampart_raft_config c = base_config(1, "n1", dir, f);
    rampart_raft* node = start_one(&loop, &c, 1);
    struct batch b = {.node = node};
    apply_range(&loop, node, &b, 0, 300);
    close_node(&loop, node);

    char path[600];
    assert_true(last_segment(dir, path, sizeof path));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t byte;
    off_t at = st.st_size / 2;
    assert_int_equal(pread(fd, &byte, 1, at), 1);
    byte ^= 0xff;
    assert_int_equal(pwrite(fd, &byte, 1, at), 1);
    close(fd);

    struct fsm* g = calloc(1, sizeof *g);
    c.fsm.user = g;
    rampart_raft* again = NULL;
    assert_int_equal(rampart_raft_create(&loop, &c, &again), 0);
    assert_int_not_equal(rampart_raft_start(again), 0);
    close_node(&loop, again);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(f);
    free(g);
    remove_dir(dir);
}

/* ------------------------------------------------------------------ */
/* Three nodes over socketpairs through the injected transport         */

enum { CLUSTER = 3 };

struct member {
    uint64_t id;
    char address[16];
    char* dir;
    struct fsm* f;
    rampart_raft* node;
    struct member* all; /* the cluster array */
    int connects;
};

/* The "core" side of the transport: a socketpair per connection, one end
 * to each node, as the TLS bridge will do. */
static int cb_connect(void* user, rampart_raft_connect* req, uint64_t id, const char* address) {
    struct member* self = user;
    (void)address;
    struct member* peer = NULL;
    for (int i = 0; i < CLUSTER; i++)
        if (self->all[i].id == id && self->all[i].node != NULL) peer = &self->all[i];
    if (peer == NULL) return -1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -1;
    self->connects++;
    if (rampart_raft_accept_fd(peer->node, sv[1], self->id) != 0) {
        close(sv[0]);
        return -1;
    }
    rampart_raft_connect_done(req, sv[0], 0);
    return 0;
}

struct cluster_wait {
    struct member* m;
    size_t n;
};
static int one_leader(void* ctx) {
    struct member* m = ctx;
    int leaders = 0;
    for (int i = 0; i < CLUSTER; i++) leaders += rampart_raft_is_leader(m[i].node);
    return leaders == 1;
}
static int all_applied(void* ctx) {
    struct cluster_wait* w = ctx;
    for (int i = 0; i < CLUSTER; i++)
        if (w->m[i].f->n < w->n) return 0;
    return 1;
}

static void test_three_nodes_over_socketpairs(void** state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct member m[CLUSTER];
    uint64_t ids[CLUSTER];
    const char* addrs[CLUSTER];
    memset(m, 0, sizeof m);
    for (int i = 0; i < CLUSTER; i++) {
        m[i].id = (uint64_t)i + 1;
        snprintf(m[i].address, sizeof m[i].address, "node_%d", i + 1);
        m[i].dir = make_dir();
        m[i].f = calloc(1, sizeof *m[i].f);
        m[i].all = m;
        ids[i] = m[i].id;
        addrs[i] = m[i].address;
    }
    for (int i = 0; i < CLUSTER; i++) {
        struct rampart_raft_config c = base_config(m[i].id, m[i].address, m[i].dir, m[i].f);
        c.transport.user = &m[i];
        c.transport.connect = cb_connect;
        c.connect_retry_ms = 50;
        assert_int_equal(rampart_raft_create(&loop, &c, &m[i].node), 0);
        assert_int_equal(rampart_raft_bootstrap(m[i].node, CLUSTER, ids, addrs), 0);
    }
    for (int i = 0; i < CLUSTER; i++) assert_int_equal(rampart_raft_start(m[i].node), 0);
    assert_true(run_until(&loop, one_leader, m, 10000));

    struct member* leader = NULL;
    for (int i = 0; i < CLUSTER; i++)
        if (rampart_raft_is_leader(m[i].node)) leader = &m[i];
    char addr[32];
    for (int i = 0; i < CLUSTER; i++) {
        if (&m[i] == leader) continue;
        /* Followers know the leader, and refuse writes. */
        struct cluster_wait dummy = {m, 0};
        (void)dummy;
        int calls = 0;
        assert_int_equal(rampart_raft_apply(m[i].node, "x", 1, never_called, &calls), RAMPART_RAFT_NOT_LEADER);
    }

    struct batch b = {.node = leader->node};
    apply_range(&loop, leader->node, &b, 0, 200);
    struct cluster_wait w = {m, 200};
    assert_true(run_until(&loop, all_applied, &w, 10000));
    for (int i = 0; i < CLUSTER; i++) {
        assert_counters(m[i].f, 200);
        /* Same entries at the same indexes on every node. */
        assert_memory_equal(m[i].f->indexes, leader->f->indexes, 200 * sizeof(uint64_t));
        assert_int_equal(rampart_raft_leader(m[i].node, addr, sizeof addr), leader->id);
        assert_string_equal(addr, leader->address);
    }
    /* Followers had no waiter: their results went to result_free. */
    for (int i = 0; i < CLUSTER; i++)
        if (&m[i] != leader) assert_int_equal(m[i].f->results_freed, 200);

    for (int i = 0; i < CLUSTER; i++) {
        /* Forget the node before it closes: the others keep reconnecting
         * meanwhile, and cb_connect must not hand a stream to a node that
         * is going away (ASan caught exactly that). */
        int done = 0;
        rampart_raft* closing = m[i].node;
        m[i].node = NULL;
        rampart_raft_close(closing, on_closed, &done);
        assert_true(run_until(&loop, is_set, &done, 5000));
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    for (int i = 0; i < CLUSTER; i++) {
        free(m[i].f);
        remove_dir(m[i].dir);
    }
}

/* A peer that lies about its id is refused at the handshake. */
static void test_handshake_refuses_wrong_id(void** state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char* dir = make_dir();
    struct fsm* f = calloc(1, sizeof *f);
    struct rampart_raft_config c = base_config(1, "n1", dir, f);
    rampart_raft* node = start_one(&loop, &c, 1);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(rampart_raft_accept_fd(node, sv[1], 7), 0);
    /* A well-formed hello from "id 9". */
    uint8_t hello[32] = {'R', 'M', 'P', 'R', 'A', 'F', 'T', '1', 9,   0,   0, 0, 0, 0, 0, 0,
                         8,   0,   0,   0,   0,   0,   0,   0,   'n', '9', 0, 0, 0, 0, 0, 0};
    assert_int_equal(write(sv[0], hello, sizeof hello), (ssize_t)sizeof hello);
    /* The adapter closes its end: our read sees EOF. */
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    int eof = 0;
    for (int i = 0; i < 200 && !eof; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        char ch;
        if (read(sv[0], &ch, 1) == 0)
            eof = 1;
        else
            usleep(5000);
    }
    assert_true(eof);
    close(sv[0]);
    close_node(&loop, node);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(f);
    remove_dir(dir);
}

/* ------------------------------------------------------------------ */
/* Membership: named accepts, "<name>@" addresses, configuration changes */

struct verify_log {
    int calls;
    char name[32];
    uint64_t id;
    int verdict; /* what verify answers */
};

static int cb_verify(void* user, const char* peer_name, uint64_t id, const char* address) {
    struct verify_log* v = user;
    (void)address;
    v->calls++;
    snprintf(v->name, sizeof v->name, "%s", peer_name);
    v->id = id;
    return v->verdict;
}

/* Feed a hello claiming `id` at `address` to an accept_named() stream;
 * 1 if the adapter closed it (refused), 0 if it kept it. */
static int hello_refused(uv_loop_t* loop, rampart_raft* node, const char* peer_name, uint64_t id, const char* address) {
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(rampart_raft_accept_named(node, sv[1], peer_name), 0);
    uint8_t hello[64] = {'R', 'M', 'P', 'R', 'A', 'F', 'T', '1'};
    size_t alen = strlen(address) + 1, padded = (alen + 7) & ~(size_t)7;
    for (int i = 0; i < 8; i++) {
        hello[8 + i] = (uint8_t)(id >> (8 * i));
        hello[16 + i] = (uint8_t)(padded >> (8 * i));
    }
    memcpy(hello + 24, address, alen);
    assert_int_equal(write(sv[0], hello, 24 + padded), (ssize_t)(24 + padded));
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    int eof = 0;
    for (int i = 0; i < 60 && !eof; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        char ch;
        if (read(sv[0], &ch, 1) == 0)
            eof = 1;
        else
            usleep(5000);
    }
    close(sv[0]);
    return eof;
}

static void test_named_accept_asks_verify(void** state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char* dir = make_dir();
    struct fsm* f = calloc(1, sizeof *f);
    struct verify_log v = {0};
    struct rampart_raft_config c = base_config(1, "node_1@127.0.0.1:1", dir, f);
    c.transport.user = &v;
    c.transport.verify = cb_verify;
    rampart_raft* node = start_one(&loop, &c, 1);
    /* verify refuses: closed, and it was asked with the certificate's name. */
    v.verdict = 1;
    assert_true(hello_refused(&loop, node, "node_2", 9, "node_2@127.0.0.1:2"));
    assert_int_equal(v.calls, 1);
    assert_string_equal(v.name, "node_2");
    assert_int_equal(v.id, 9);
    /* An address naming another node than the certificate: refused before verify. */
    v.verdict = 0;
    assert_true(hello_refused(&loop, node, "node_2", 9, "node_3@127.0.0.1:2"));
    assert_int_equal(v.calls, 1);
    /* verify accepts: the engine keeps the stream. */
    assert_false(hello_refused(&loop, node, "node_2", 9, "node_2@127.0.0.1:2"));
    assert_int_equal(v.calls, 2);
    close_node(&loop, node);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(f);
    remove_dir(dir);
}

struct change_wait {
    int done, status;
};
static void on_change(void* ctx, int status) {
    struct change_wait* w = ctx;
    w->done = 1;
    w->status = status;
}
static int change_done(void* ctx) { return ((struct change_wait*)ctx)->done; }

static struct rampart_raft_member* find_member(struct rampart_raft_member* m, unsigned n, uint64_t id) {
    for (unsigned i = 0; i < n; i++)
        if (m[i].id == id) return &m[i];
    return NULL;
}

static void test_membership_changes_and_names(void** state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char* dir = make_dir();
    struct fsm* f = calloc(1, sizeof *f);
    struct rampart_raft_config c = base_config(1, "node_1@127.0.0.1:1", dir, f);
    rampart_raft* node = start_one(&loop, &c, 1);
    assert_int_equal(rampart_raft_id(node), 1);
    char addr[64];
    assert_int_equal(rampart_raft_leader(node, addr, sizeof addr), 1);
    assert_string_equal(addr, "127.0.0.1:1"); /* the name is reported apart */

    /* Add a spare (the sole voter commits alone), make it a standby, remove it. */
    struct change_wait w = {0};
    assert_int_equal(rampart_raft_add(node, 2, "node_2@127.0.0.1:2", on_change, &w), 0);
    assert_true(run_until(&loop, change_done, &w, 5000));
    assert_int_equal(w.status, 0);
    struct rampart_raft_member m[4];
    unsigned n = rampart_raft_members(node, m, 4);
    assert_int_equal(n, 2);
    struct rampart_raft_member* two = find_member(m, n, 2);
    assert_non_null(two);
    assert_string_equal(two->name, "node_2");
    assert_string_equal(two->address, "127.0.0.1:2");
    assert_int_equal(two->role, RAMPART_RAFT_MEMBER_SPARE);
    assert_string_equal(find_member(m, n, 1)->name, "node_1");

    memset(&w, 0, sizeof w);
    assert_int_equal(rampart_raft_assign(node, 2, RAMPART_RAFT_MEMBER_STANDBY, on_change, &w), 0);
    assert_true(run_until(&loop, change_done, &w, 5000));
    assert_int_equal(w.status, 0);
    n = rampart_raft_members(node, m, 4);
    assert_int_equal(find_member(m, n, 2)->role, RAMPART_RAFT_MEMBER_STANDBY);
    assert_int_equal(rampart_raft_voters(node), 1);
    assert_int_equal(rampart_raft_assign(node, 2, 7, on_change, &w), RAMPART_RAFT_INVALID);

    memset(&w, 0, sizeof w);
    assert_int_equal(rampart_raft_remove(node, 2, on_change, &w), 0);
    assert_true(run_until(&loop, change_done, &w, 5000));
    assert_int_equal(w.status, 0);
    assert_int_equal(rampart_raft_members(node, NULL, 0), 1);
    /* Removing an unknown id is refused at once (no callback). */
    assert_int_not_equal(rampart_raft_remove(node, 42, on_change, &w), 0);
    close_node(&loop, node);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(f);
    remove_dir(dir);
}

int main(void) {
    (void)closed_flag;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_padding_round_trip),
        cmocka_unit_test(test_named_accept_asks_verify),
        cmocka_unit_test(test_membership_changes_and_names),
        cmocka_unit_test(test_crc32c_and_envelope),
        cmocka_unit_test(test_sigpipe_ignored_after_create),
        cmocka_unit_test(test_engine_settings),
        cmocka_unit_test(test_not_leader),
        cmocka_unit_test(test_one_node_apply_and_replay),
        cmocka_unit_test(test_snapshot_restore_and_corruption),
        cmocka_unit_test(test_snapshot_filled_off_the_loop),
        cmocka_unit_test(test_close_waits_for_a_running_fill),
        cmocka_unit_test(test_snapshots_paused_then_resumed),
        cmocka_unit_test(test_damaged_log_is_not_auto_recovered),
        cmocka_unit_test(test_handshake_refuses_wrong_id),
        cmocka_unit_test(test_three_nodes_over_socketpairs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
