// The replicated store of one node: the Raft engine (through the adapter)
// plus the state machine, with the calls the HTTP routes need: writes that
// complete when committed and applied, reads at a consistency level (shared
// barriers), and blocking reads.
//
// Everything runs on the daemon's loop. A one-node cluster bootstraps
// itself on first start in <data_dir>/raft and recovers from the log and
// the newest snapshot on every start after that.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/raft_adapter.h"
#include "store/command.h"
#include "store/state_machine.h"
#include "store/watchers.h"

struct rampart_raft;

namespace rampart::resilience {
class Supervisor;
}

namespace rampart::store {
class CheckTicker;
}

namespace rampart::config {
struct Config;
}
namespace rampart::metrics {
class Metric;
class Registry;
}  // namespace rampart::metrics
namespace rampart::audit {
class AuditLog;
}

namespace rampart::store {

struct StoreSettings {
    std::string data_dir;  // node.data_dir; the engine's files go in data_dir/raft
    std::string address;   // this node's peer address (peer.listen)
    StateLimits limits;
    unsigned election_timeout_ms = 0;  // 0: the adapter's default
    unsigned heartbeat_ms = 0;
    unsigned snapshot_threshold = 1024;
    unsigned snapshot_trailing = 128;
    unsigned snapshot_retention = 2;         // engine snapshots kept on start (snapshot_recovery.h)
    unsigned snapshot_write_timeout_ms = 0;  // 0: the adapter's default
    uint64_t max_snapshot_bytes = 0;         // largest restore entry (0: snapshot_size_limit of the cap)
    audit::AuditLog* audit = nullptr;        // corrupt snapshots set aside are audited (may be null)
    // Clustering: this node's Raft id, the members a pristine node
    // bootstraps with (empty: a one-node cluster of itself), and the
    // engine's transport (none: one node, no peers).
    uint64_t raft_id = 1;
    std::vector<std::pair<uint64_t, std::string>> bootstrap;  // (raft id, peer address)
    rampart_raft_transport transport{};
    // A pristine node that joins through cluster.seeds: no initial
    // configuration; the leader adds it (cluster/joiner.h).
    bool join = false;

    static StoreSettings from(const config::Config& cfg);
};

enum class Consistency { Stale, Default, Strong };

// A WriteDone status beside the engine's rampart_raft_status values: no
// command version every voter decodes can carry the write (a rolling
// upgrade is under way; cluster/version_gate.h).
inline constexpr int kStatusVersionUnsupported = 100;

class Store {
public:
    Store(uv_loop_t* loop, StoreSettings settings);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Create the data directory, bootstrap on first start, load the log and
    // snapshot. False with *error when the node cannot start (the caller
    // then calls close() and runs the loop).
    bool start(std::string* error);
    // Answer parked blocking reads now (shutdown begins).
    void release_watchers();
    // Fail pending requests, close the engine; `done` (may be empty) runs
    // once everything is closed. The loop must keep running until then.
    void close(std::function<void()> done);

    bool has_leader() const;
    // The leader as the engine knows it: (Raft id, peer address), id 0 if none.
    std::pair<uint64_t, std::string> leader() const;
    // An accepted peer stream for the engine (the fd is always taken),
    // whose claimed Raft id the transport's verify checks against the
    // certificate's node id (cluster/raft_bridge.h).
    int accept_named(int fd, const char* peer_name);
    bool is_leader() const;
    // The engine (nullptr before start and once closing), for the
    // adapter's read-only getters and its observer (cluster/status.h).
    rampart_raft* engine() const { return closing_ ? nullptr : node_; }
    const StateMachine& state() const { return sm_; }
    // The daemon's loop (thread-pool work for the routes: GET /v1/snapshot).
    uv_loop_t* loop() const { return loop_; }

    // status is a rampart_raft_status; result is set when status is 0.
    using WriteDone = std::function<void(int status, uint64_t index, std::unique_ptr<Result> result)>;
    // Propose `cmd`; `done` runs once, possibly before write() returns.
    //
    // Group commit: on the leader, the writes of one loop turn are proposed
    // together, at the end of that turn (a uv_prepare before the loop waits,
    // a uv_check after the I/O callbacks), as one batch record when there
    // are several and every voter decodes batches. Several writes then share
    // one index; each gets its own Result. No timer: a lone write is
    // proposed in the turn it arrived.
    void write(const Command& cmd, WriteDone done);
    // Register rampart_store_batch_size (commands per proposed entry).
    void register_metrics(metrics::Registry* registry);
    // Run the TTL-check ticker as the supervisor's task "ttl_checks"
    // (check_ticker.h). False with *error when the task cannot be added.
    bool supervise_checks(resilience::Supervisor& supervisor, std::string* error);

    // Propose an already encoded record (a snapshot restore); as write().
    void write_record(const std::string& record, WriteDone done);
    // The engine's current term (0 before start).
    uint64_t term() const;

    // `done(status)` runs once the local state may be read at `level`:
    // at once for Stale, after a barrier for Default/Strong. Concurrent
    // reads share barriers: a Default read joins the barrier in flight, a
    // Strong one the next barrier (one issued after it arrived).
    using ReadReady = std::function<void(int status)>;
    void read(Consistency level, ReadReady done);

    // The disk-space watchdog (disk_watchdog.h): while refused, write()
    // answers RAMPART_RAFT_NO_SPACE without proposing; reads are unaffected.
    void refuse_writes(bool refused) { writes_refused_ = refused; }
    bool writes_refused() const { return writes_refused_; }
    // Hand leadership to the most up-to-date other voter; a status
    // (RAMPART_RAFT_INVALID: no other voter, NOT_LEADER: not the leader).
    int transfer_leadership();

    // Blocking read: `done` runs once the index passes `index`, after a
    // snapshot restore, after `wait_ms`, or at shutdown.
    void watch(uint64_t index, uint64_t wait_ms, std::function<void()> done);
    // The same for the services catalog's index (catalog and health reads).
    void watch_catalog(uint64_t index, uint64_t wait_ms, std::function<void()> done);

private:
    static void cb_apply(void* user, uint64_t index, const void* data, size_t len, void** result);
    static void cb_result_free(void* user, void* result);
    static int cb_snapshot(void* user, const void** data, size_t* len, void** token);
    static void cb_snapshot_fill(void* user, void* token, const void** data, size_t* len) noexcept;
    static void cb_snapshot_done(void* user, void* token);
    static int cb_restore(void* user, uint64_t index, const void* data, size_t len);
    static void cb_log(void* user, int level, const char* msg);
    static void cb_write_done(void* ctx, int status, uint64_t index, void* result);
    static void cb_barrier_done(void* ctx, int status, uint64_t index);
    static void cb_closed(void* ctx);
    static void cb_batch_done(void* ctx, int status, uint64_t index, void* result);
    static void cb_flush_prepare(uv_prepare_t* h);
    static void cb_flush_check(uv_check_t* h);

    // Group commit: a write waiting for the end of the loop turn.
    struct Pending {
        std::string bytes;
        WriteDone done;
    };
    void enqueue(std::string bytes, WriteDone done);
    void flush();
    // One entry for one record (never batched: restores, membership, a
    // follower's refused write).
    void propose(const std::string& bytes, WriteDone done);
    void propose_batch(std::vector<Pending> batch);
    void fail_pending(int status);
    void observe_batch(size_t commands);

    void start_barrier();
    // After an apply: wake catalog watchers, re-arm the TTL ticker.
    void catalog_applied(uint64_t before);
    bool recover_snapshots(std::string* error);

    uv_loop_t* loop_;
    StoreSettings settings_;
    std::string raft_dir_;
    StateMachine sm_;
    Watchers watchers_;
    Watchers catalog_watchers_;
    std::unique_ptr<CheckTicker> ticker_;  // the leader's noop when a TTL lapses
    rampart_raft* node_ = nullptr;
    bool closing_ = false;
    bool writes_refused_ = false;
    std::function<void()> closed_;
    // Reads waiting on the barrier in flight, and on the next one.
    std::vector<ReadReady> barrier_readers_;
    std::vector<ReadReady> next_readers_;
    bool barrier_in_flight_ = false;
    // Group commit (see write()). The handles are closed in close().
    std::vector<Pending> pending_;
    size_t pending_bytes_ = 0;
    uv_prepare_t* flush_prepare_ = nullptr;
    uv_check_t* flush_check_ = nullptr;
    metrics::Metric* batch_size_ = nullptr;
};

}  // namespace rampart::store
