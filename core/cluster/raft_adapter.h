/* The Raft engine adapter: the only code that knows libraft (0.22.1).
 *
 * raft_adapter.c is compiled as C because libraft's raft.h does not compile
 * as C++. This header carries no libraft types, so the C++ core includes it
 * freely and the engine can be swapped or patched behind it.
 *
 * Threading: every function here runs on the libuv loop passed to
 * rampart_raft_create(), and every callback fires on that loop, except
 * fsm.snapshot_fill (thread pool) and rampart_raft_crc32c (any thread).
 *
 * Guards the adapter enforces (issue 5, "Engine"; docs/store.md):
 *  - SIGPIPE is ignored before the engine can write to a peer.
 *  - Every entry is framed with an explicit length and padded to 8 bytes;
 *    raft_apply() always gets exactly one buffer; an apply error other than
 *    NOT_LEADER / NO_SPACE aborts the process (the engine freed the buffer).
 *  - Transport struct versioned, auto-recovery off, pre-vote on, install
 *    snapshot timeout ~3 s, max in-flight entries raised, snapshot threshold
 *    and trailing set explicitly.
 *  - Snapshots carry the adapter's CRC32C over the whole payload; a corrupt
 *    snapshot fails restore loudly and is never handed to the state machine.
 *    With fsm.snapshot_fill, the payload and its CRC are made on the libuv
 *    thread pool, not on the loop (issue 5: "the snapshot hook stays cheap").
 *  - raft_uv's io_destroy() (25-40 ms, once per snapshot) runs on a thread:
 *    the adapter interposes libc's syscall() for that one call.
 *  - Peer traffic goes through an injected transport: the core connects and
 *    accepts (mutual TLS, later) and hands the adapter one end of a socketpair.
 */
#ifndef RAMPART_CLUSTER_RAFT_ADAPTER_H
#define RAMPART_CLUSTER_RAFT_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct uv_loop_s;

/* Result classes. 0 is success; the others are positive and stable. */
enum rampart_raft_status {
    RAMPART_RAFT_OK = 0,
    RAMPART_RAFT_NOT_LEADER = 1,      /* this node cannot accept writes now */
    RAMPART_RAFT_NO_SPACE = 2,        /* the engine refuses entries: disk full */
    RAMPART_RAFT_SHUTDOWN = 3,        /* the node is closing */
    RAMPART_RAFT_LEADERSHIP_LOST = 4, /* submitted, then leadership changed: outcome unknown */
    RAMPART_RAFT_TOO_BIG = 5,         /* command over RAMPART_RAFT_MAX_COMMAND */
    RAMPART_RAFT_INVALID = 6,         /* bad argument or configuration */
    RAMPART_RAFT_CORRUPT = 7,         /* data on disk failed a check */
    RAMPART_RAFT_IO = 8,              /* I/O error */
    RAMPART_RAFT_NOMEM = 9,
    RAMPART_RAFT_EXISTS = 10, /* bootstrap: the data dir already holds state */
    RAMPART_RAFT_ERROR = 11   /* anything else; the log has the detail */
};

/* A stable name for a status, for logs ("not_leader", ...). */
const char* rampart_raft_status_name(int status);

/* Largest command payload accepted by rampart_raft_apply(): a 512 KiB value
 * plus its key and command header. */
#define RAMPART_RAFT_MAX_COMMAND ((size_t)(512u * 1024u + 4096u))

/* Engine state, as rampart_raft_state() reports it. */
enum rampart_raft_role_state {
    RAMPART_RAFT_UNAVAILABLE = 0,
    RAMPART_RAFT_FOLLOWER = 1,
    RAMPART_RAFT_CANDIDATE = 2,
    RAMPART_RAFT_LEADER = 3
};

/* The replicated state machine, supplied by the core. All callbacks run on
 * the loop; `user` is passed back unchanged. */
struct rampart_raft_fsm {
    void* user;

    /* Apply the committed command at `index` (strictly increasing). Must not
     * fail: a command that cannot take effect is a deterministic result.
     * `*result` (may stay NULL) is handed to the apply callback of the request
     * that submitted this entry on this node; if there is none (follower,
     * replay, or the request already failed), result_free() gets it. */
    void (*apply)(void* user, uint64_t index, const void* data, size_t len, void** result);
    /* Release a result nobody waits for. May be NULL if results are never
     * allocated. */
    void (*result_free)(void* user, void* result);

    /* Take a snapshot of the state up to the last applied index, on the
     * loop: keep it cheap. Set an opaque *token and, without snapshot_fill,
     * *data and *len: the bytes must stay valid and unchanged until
     * snapshot_done(token) (the engine writes them from its I/O threads).
     * With snapshot_fill, only pin an immutable version here; *data and
     * *len are ignored. Return 0, or non-zero to skip this snapshot. */
    int (*snapshot)(void* user, const void** data, size_t* len, void** token);
    /* On the loop, once the engine no longer reads the bytes (written,
     * failed or cancelled at close): release what `token` holds. */
    void (*snapshot_done)(void* user, void* token);

    /* Replace the whole state with a snapshot's payload (already checked
     * against its checksum). The bytes are valid only during the call.
     * `index` is the last index the snapshot covers. Return 0, or non-zero
     * if the payload does not parse (restore then fails loudly). */
    int (*restore)(void* user, uint64_t index, const void* data, size_t len);

    /* Optional: serialise the version snapshot() pinned, on a libuv
     * thread-pool thread, while the loop goes on applying entries. Read
     * only what `token` holds (`user` is for finding nothing else: the
     * loop owns it meanwhile). Set *data and *len; the bytes stay valid
     * until snapshot_done(token). Must not fail (out of memory aborts, as
     * in apply). The adapter checksums them on the same thread. */
    void (*snapshot_fill)(void* user, void* token, const void** data, size_t* len);
};

/* Peer transport, injected by the core. The adapter never opens a socket:
 * the core connects to / accepts from peers (mutual TLS in later issues),
 * bridges the secured stream to one end of a socketpair, and hands the other
 * end to the adapter. The adapter runs a small handshake (magic, numeric id,
 * address) on that fd before the engine sees it. */
typedef struct rampart_raft_connect rampart_raft_connect;

struct rampart_raft_transport {
    void* user;
    /* Start connecting to peer `id` at `address`. Return 0 and later call
     * rampart_raft_connect_done(req, fd, status) exactly once, or return
     * non-zero (the engine retries after its connect delay). May call
     * connect_done before returning. */
    int (*connect)(void* user, rampart_raft_connect* req, uint64_t id, const char* address);
    /* The node is closing: forget `req`; connect_done must not be called for
     * it any more (close any fd being prepared for it). May be NULL if the
     * core always completes connect before returning. */
    void (*cancel)(void* user, rampart_raft_connect* req);
    /* A stream accepted with rampart_raft_accept_named() finished its
     * handshake: the peer proved `peer_name` (its certificate) and claims
     * Raft id `id` at `address`. Return 0 to hand it to the engine, non-zero
     * to refuse it (the adapter closes it and logs why). May be NULL when
     * accept_named() is never used. Called on the loop, once per stream. */
    int (*verify)(void* user, const char* peer_name, uint64_t id, const char* address);
};

/* Finish a connect: `fd` is a connected stream socket (e.g. socketpair end)
 * whose ownership passes to the adapter, or -1 with status != 0. */
void rampart_raft_connect_done(rampart_raft_connect* req, int fd, int status);

/* Log sink: level 1 error, 2 warning, 3 info, 4 debug. */
typedef void (*rampart_raft_log_fn)(void* user, int level, const char* msg);

struct rampart_raft_config {
    uint64_t id;          /* this node's Raft id, > 0 */
    const char* address;  /* this node's peer address (opaque to the adapter) */
    const char* data_dir; /* must exist; on a real disk, not tmpfs, in production */

    /* Timing; 0 picks the default shown. */
    unsigned election_timeout_ms;         /* 500 (cluster.election_timeout_ms) */
    unsigned heartbeat_timeout_ms;        /* 50 (cluster.heartbeat_ms) */
    unsigned install_snapshot_timeout_ms; /* 3000: a dropped install otherwise stalls 30 s */
    unsigned max_inflight_entries;        /* 256: the engine's 32 halves pipelined throughput */
    unsigned snapshot_threshold;          /* 1024: entries between snapshots */
    unsigned snapshot_trailing;           /* 128: entries kept after a snapshot */
    unsigned connect_retry_ms;            /* 100: the daemon's per-peer task paces redials */
    unsigned snapshot_write_timeout_ms;   /* 30000: an own snapshot write not finished by then
                                             is reported as failed (raft_uv retries a failed
                                             write every 5 s, silently) */
    size_t max_command;                   /* RAMPART_RAFT_MAX_COMMAND: largest apply() payload
                                             (snapshot restores need more) */

    struct rampart_raft_fsm fsm;
    struct rampart_raft_transport transport; /* connect may be NULL for one node */
    rampart_raft_log_fn log;                 /* NULL: stderr */
    void* log_user;
};

typedef struct rampart_raft rampart_raft;

/* Create a node on `loop`. Ignores SIGPIPE process-wide first. Returns a
 * status; on success *out owns the node until rampart_raft_close(). */
int rampart_raft_create(struct uv_loop_s* loop, const struct rampart_raft_config* cfg, rampart_raft** out);

/* Write the initial configuration (before start, on a pristine data dir).
 * Returns RAMPART_RAFT_EXISTS if the dir already holds state (a restart).
 * All listed servers are voters. */
int rampart_raft_bootstrap(rampart_raft* node, unsigned n, const uint64_t* ids, const char* const* addresses);

/* Load the log and the newest snapshot, restore the state machine, start
 * timers. A one-node cluster elects itself at once. */
int rampart_raft_start(rampart_raft* node);

/* Hand the adapter an accepted peer connection (one end of a socketpair the
 * core bridges to a TLS session). The fd is owned by the adapter from now on,
 * even on error. If expected_id is non-zero, a handshake claiming another id
 * is refused (the core knows the peer's identity from its certificate). */
int rampart_raft_accept_fd(rampart_raft* node, int fd, uint64_t expected_id);

/* As accept_fd(), but the peer's identity is a name (the node id its
 * certificate proved; NULL on an insecure peer port, where anyone is
 * trusted): once the handshake is read, transport.verify decides whether
 * that name may claim the Raft id it presents. The binding lives in the
 * core, which knows the replicated membership. */
int rampart_raft_accept_named(rampart_raft* node, int fd, const char* peer_name);

/* Submit a command. On 0, cb fires exactly once on the loop with status 0,
 * the entry's index and the state machine's result, or a failure status
 * (NOT_LEADER, LEADERSHIP_LOST, NO_SPACE, SHUTDOWN, ...). A non-zero return
 * means cb will not fire. The payload is copied. */
typedef void (*rampart_raft_apply_cb)(void* ctx, int status, uint64_t index, void* result);
int rampart_raft_apply(rampart_raft* node, const void* data, size_t len, rampart_raft_apply_cb cb, void* ctx);

/* Append a barrier: cb fires once every entry before it is applied locally,
 * with the barrier's index. For `default`/`strong` reads; callers should
 * share one barrier among concurrent reads. */
typedef void (*rampart_raft_barrier_cb)(void* ctx, int status, uint64_t index);
int rampart_raft_barrier(rampart_raft* node, rampart_raft_barrier_cb cb, void* ctx);

/* Hand leadership to another voter (`to`, or 0 for the most up-to-date
 * one), e.g. when this node's disk runs low. On 0, cb (may be NULL) fires
 * once on the loop when the transfer ended, with the new leader's id (0 if
 * unknown; this node's own id if it failed). Returns NOT_LEADER when this
 * node does not lead, INVALID when there is no other voter (a one-node
 * cluster) or `to` is not one. */
typedef void (*rampart_raft_transfer_cb)(void* ctx, uint64_t leader_id);
int rampart_raft_transfer(rampart_raft* node, uint64_t to, rampart_raft_transfer_cb cb, void* ctx);

/* Membership changes (leader only; one at a time: the engine answers
 * INVALID-class errors for a second one while one is in flight). On 0, cb
 * fires exactly once on the loop with a status once the new configuration
 * is committed (or failed: LEADERSHIP_LOST, SHUTDOWN, ...). A non-zero
 * return means cb will not fire.
 *  - add: a new member as a spare (neither replicates nor votes). `address`
 *    is stored in the replicated configuration as given.
 *  - assign: a new role (enum rampart_raft_member_role). To voter, the
 *    engine first runs catch-up rounds, so a lagging member is promoted only
 *    once it has (nearly) the whole log.
 *  - remove: drop a member from the configuration. */
typedef void (*rampart_raft_change_cb)(void* ctx, int status);
int rampart_raft_add(rampart_raft* node, uint64_t id, const char* address, rampart_raft_change_cb cb, void* ctx);
int rampart_raft_assign(rampart_raft* node, uint64_t id, int role, rampart_raft_change_cb cb, void* ctx);
int rampart_raft_remove(rampart_raft* node, uint64_t id, rampart_raft_change_cb cb, void* ctx);

/* Getters. */
uint64_t rampart_raft_id(const rampart_raft* node); /* this node's Raft id */
int rampart_raft_state(const rampart_raft* node);   /* enum rampart_raft_role_state */
int rampart_raft_is_leader(const rampart_raft* node);
/* Leader id (0 if unknown); copies its address into buf if given (without
 * a "<name>@" prefix, see rampart_raft_member). */
uint64_t rampart_raft_leader(const rampart_raft* node, char* buf, size_t buf_len);
uint64_t rampart_raft_term(const rampart_raft* node);
uint64_t rampart_raft_commit_index(const rampart_raft* node);
uint64_t rampart_raft_applied_index(const rampart_raft* node);
uint64_t rampart_raft_last_index(const rampart_raft* node);
/* 1 if this node is the only voter of the current configuration. */
int rampart_raft_sole_voter(const rampart_raft* node);

/* Membership and replication progress, for `cluster status` and metrics. */
enum rampart_raft_member_role {
    RAMPART_RAFT_MEMBER_VOTER = 0,   /* replicates and votes */
    RAMPART_RAFT_MEMBER_STANDBY = 1, /* replicates, does not vote */
    RAMPART_RAFT_MEMBER_SPARE = 2    /* neither */
};

/* A configuration address may be "<name>@<address>": the core keeps the
 * node id that owns a Raft id in the engine's own replicated configuration
 * (docs/cluster.md, "Identity"). The getters report the two parts apart;
 * an address without '@' has an empty name. */
#define RAMPART_RAFT_MAX_NAME 64
struct rampart_raft_member {
    uint64_t id;
    const char* address;              /* the configuration's peer address without the
                                         name: the engine's memory, valid until the loop
                                         runs again */
    char name[RAMPART_RAFT_MAX_NAME]; /* the "<name>@" part, "" if none */
    int role;                         /* enum rampart_raft_member_role */
    int is_self;
    int is_leader; /* the leader this node knows of */
    /* Replication progress, known only on the leader (progress_known = 1;
     * otherwise match_index is 0 and last_contact_ms -1). */
    int progress_known;
    uint64_t match_index;    /* highest entry known to be stored there (self: last index) */
    int64_t last_contact_ms; /* since the leader last heard from it (self: 0; -1: never or unknown) */
};

/* Fill out[0 .. min(count, max)) with the members of the current (latest)
 * configuration and return how many it has. out may be NULL when max is 0. */
unsigned rampart_raft_members(const rampart_raft* node, struct rampart_raft_member* out, unsigned max);
/* Milliseconds since this follower last heard from its leader; 0 on the
 * leader; -1 with no known leader. */
int64_t rampart_raft_leader_contact_ms(const rampart_raft* node);
/* Voters in the current configuration (the quorum is voters / 2 + 1). */
unsigned rampart_raft_voters(const rampart_raft* node);
/* Leaderships this node has seen since start: a known leader with another
 * id or in another term than the previous one (its own included). */
uint64_t rampart_raft_leader_changes(const rampart_raft* node);

/* Events for status and metrics. Callbacks run on the loop and may be NULL;
 * they must not close the node. */
struct rampart_raft_observer {
    void* user;
    /* The engine's state or the known leader changed (also right after
     * start when a one-node cluster elects itself). */
    void (*state_changed)(void* user);
    /* A command submitted on this node finished: its status and the time
     * from rampart_raft_apply() to its result (committed and applied). */
    void (*applied)(void* user, int status, double seconds);
};
/* Install (copied) or clear (NULL) the observer. */
void rampart_raft_set_observer(rampart_raft* node, const struct rampart_raft_observer* observer);

/* Snapshots under the supervisor (issue 7, task "snapshots"). The
 * listener hears the outcome of every snapshot this node writes of its own
 * state: status 0, or non-zero with a message: the engine's error (an I/O
 * error), or RAMPART_RAFT_IO for a write still unfinished after
 * snapshot_write_timeout_ms (its end is reported too, later). While paused, the engine takes no snapshot (its log keeps
 * growing); without a pause it would retry a failing write at every tick
 * and message, each time serialising the whole state again. */
typedef void (*rampart_raft_snapshot_cb)(void* user, int status, const char* error);
void rampart_raft_set_snapshot_listener(rampart_raft* node, rampart_raft_snapshot_cb cb, void* user);
void rampart_raft_pause_snapshots(rampart_raft* node, int paused);
int rampart_raft_snapshots_paused(const rampart_raft* node);
/* An own snapshot write is past snapshot_write_timeout_ms and still
 * running: the engine takes no other snapshot until it ends. */
int rampart_raft_snapshot_stalled(const rampart_raft* node);

/* The engine settings in force, read back from the engine where it exposes
 * them (for tests and `cluster status`). */
struct rampart_raft_settings {
    int pre_vote;
    int auto_recovery; /* as set by the adapter: raft_uv has no getter */
    int transport_version;
    unsigned install_snapshot_timeout_ms;
    unsigned max_inflight_entries;
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    unsigned election_timeout_ms;
    unsigned heartbeat_timeout_ms;
};
void rampart_raft_settings(const rampart_raft* node, struct rampart_raft_settings* out);

/* Close: pending requests fail with SHUTDOWN or LEADERSHIP_LOST, peer streams
 * close, then cb fires and the node's memory is gone. */
typedef void (*rampart_raft_close_cb)(void* ctx);
void rampart_raft_close(rampart_raft* node, rampart_raft_close_cb cb, void* ctx);

/* Entry framing, exposed for tests: an 8-byte header (u32 LE payload length,
 * u32 LE format tag) + payload + zero padding to a multiple of 8. */
#define RAMPART_RAFT_FRAME_HEADER 8u
size_t rampart_raft_frame_size(size_t payload_len);
/* Encode into out (frame_size(len) bytes). */
void rampart_raft_frame_encode(const void* payload, size_t len, void* out);
/* Check a frame; on success point *payload and *len into it and return 0. */
int rampart_raft_frame_decode(const void* frame, size_t frame_len, const void** payload, size_t* len);

/* Snapshot envelope, exposed for tests: a 32-byte header with magic,
 * version, payload length and CRC32C of the payload. */
#define RAMPART_RAFT_SNAPSHOT_HEADER 32u
int rampart_raft_snapshot_check(const void* data, size_t len, const void** payload, size_t* payload_len);
uint32_t rampart_raft_crc32c(uint32_t crc, const void* data, size_t len);

/* ---- Recovery after permanent quorum loss (issue 6; docs/cluster.md,
 * "Failures and recovery"). Offline only: call on a node made with
 * rampart_raft_create() and never started, with the daemon stopped.
 *
 * Replace the configuration with `count` voters (ids[i] at addresses[i]):
 * the engine keeps the log and the snapshots and appends the new
 * configuration after the last entry (libraft's raft_recover). The
 * survivors listed then form a cluster of their own when started: only
 * for members that are gone for good, since a returning old member would
 * not know of this configuration. Returns OK, INVALID (empty, duplicate or
 * zero ids, or the node was started) or the engine's I/O error. */
int rampart_raft_recover(rampart_raft* node, unsigned count, const uint64_t* ids, const char* const* addresses);

#ifdef __cplusplus
}
#endif

#endif /* RAMPART_CLUSTER_RAFT_ADAPTER_H */
