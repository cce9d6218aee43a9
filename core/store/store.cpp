#include "store/store.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "audit/audit_log.h"
#include "cluster/raft_adapter.h"
#include "cluster/version_gate.h"
#include "config/config.h"
#include "log.h"
#include "metrics/registry.h"
#include "store/check_ticker.h"
#include "store/snapshot_file.h"
#include "store/snapshot_recovery.h"
#include "store/state_writer.h"

namespace rampart::store {
namespace {

// A one-node cluster: this node is Raft id 1. Joining (a later issue) maps
// node ids to Raft ids in the replicated state.

// Snapshot bytes in pages of their own. The fill runs on thread-pool
// threads, and glibc gives each its own malloc arena, which keeps what a
// freed multi-MiB payload used: RSS after 10,000 keys went from 12 to 28 MiB
// (bench/kv_vs_etcd.py). Mapped pages go back to the system at munmap.
class MappedBytes {
public:
    MappedBytes() = default;
    MappedBytes(const MappedBytes&) = delete;
    MappedBytes& operator=(const MappedBytes&) = delete;
    ~MappedBytes() {
        if (base_ != nullptr) munmap(base_, cap_);
    }

    void append(std::string_view piece) {
        if (len_ + piece.size() > cap_) grow(len_ + piece.size());
        memcpy(static_cast<char*>(base_) + len_, piece.data(), piece.size());
        len_ += piece.size();
    }
    const void* data() const { return base_; }
    size_t size() const { return len_; }

private:
    void grow(size_t need) {
        size_t cap = cap_ != 0 ? cap_ : size_t{1} << 20;
        while (cap < need) cap *= 2;
        void* p = base_ == nullptr ? mmap(nullptr, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                                   : mremap(base_, cap_, cap, MREMAP_MAYMOVE);
        if (p == MAP_FAILED) abort();  // out of memory, as a failed apply would
        base_ = p;
        cap_ = cap;
    }

    void* base_ = nullptr;
    size_t len_ = 0;
    size_t cap_ = 0;
};

// A snapshot in the making: the version pinned on the loop, then its bytes.
struct SnapshotBytes {
    Version version;
    MappedBytes payload;
};

constexpr size_t kSnapshotPiece = size_t{64} * 1024;  // StateWriter's budget per piece

// Group commit: a batch is proposed before it would pass this many bytes
// (half the engine's smallest command cap, so a batch always fits) or
// kBatchCommands commands. A larger write goes alone.
constexpr size_t kBatchMaxBytes = RAMPART_RAFT_MAX_COMMAND / 2;

// What cb_apply hands back for an entry: one Result per command (one for a
// plain record, one per sub-command for a batch).
using Results = std::vector<Result>;

// The i-th of `callers` Results. A batch that did not decode (never one
// this build wrote) has one Invalid result, which every caller gets a copy of.
std::unique_ptr<Result> take_result(Results* rs, size_t i, size_t callers) {
    if (rs == nullptr || rs->empty()) return std::make_unique<Result>(Result::failure(Outcome::Invalid, "no result"));
    if (rs->size() != callers) return std::make_unique<Result>(rs->front());
    return std::make_unique<Result>(std::move((*rs)[i]));
}

template <class Handle>
void close_and_free(Handle* h) {
    uv_close(reinterpret_cast<uv_handle_t*>(h),
             [](uv_handle_t* x) { std::unique_ptr<Handle>(reinterpret_cast<Handle*>(x)).reset(); });
}

}  // namespace

StoreSettings StoreSettings::from(const config::Config& cfg) {
    StoreSettings s;
    s.data_dir = cfg.node.data_dir;
    s.address = cfg.peer.listen;
    s.limits.max_bytes = static_cast<uint64_t>(cfg.cluster.max_store_bytes);
    s.election_timeout_ms = static_cast<unsigned>(cfg.cluster.election_timeout_ms);
    s.heartbeat_ms = static_cast<unsigned>(cfg.cluster.heartbeat_ms);
    s.snapshot_threshold = static_cast<unsigned>(cfg.cluster.snapshot_threshold);
    s.snapshot_trailing = static_cast<unsigned>(cfg.cluster.snapshot_trailing);
    s.snapshot_write_timeout_ms = static_cast<unsigned>(cfg.cluster.snapshot_write_timeout_ms);
    s.snapshot_retention = static_cast<unsigned>(cfg.cluster.snapshot_retention);
    return s;
}

Store::Store(uv_loop_t* loop, StoreSettings settings)
    : loop_(loop),
      settings_(std::move(settings)),
      raft_dir_(settings_.data_dir + "/raft"),
      sm_(settings_.limits),
      watchers_(loop),
      catalog_watchers_(loop),
      ticker_(std::make_unique<CheckTicker>(loop, *this)) {}

Store::~Store() = default;

std::pair<uint64_t, std::string> Store::leader() const {
    if (node_ == nullptr) return {0, ""};
    char address[256] = {0};
    uint64_t id = rampart_raft_leader(node_, address, sizeof address);
    return {id, id != 0 ? address : ""};
}

int Store::accept_named(int fd, const char* peer_name) {
    if (node_ == nullptr || closing_) {
        ::close(fd);
        return -1;
    }
    return rampart_raft_accept_named(node_, fd, peer_name);
}

bool Store::start(std::string* error) {
    if (mkdir(raft_dir_.c_str(), 0700) != 0 && errno != EEXIST) {
        *error = raft_dir_ + ": " + strerror(errno);
        return false;
    }
    if (!recover_snapshots(error)) return false;
    rampart_raft_config cfg{};
    cfg.max_command =
        static_cast<size_t>(settings_.max_snapshot_bytes != 0 ? settings_.max_snapshot_bytes
                                                              : snapshot_size_limit(settings_.limits.max_bytes)) +
        64;
    cfg.id = settings_.raft_id;
    cfg.address = settings_.address.c_str();
    cfg.transport = settings_.transport;
    cfg.data_dir = raft_dir_.c_str();
    cfg.election_timeout_ms = settings_.election_timeout_ms;
    cfg.heartbeat_timeout_ms = settings_.heartbeat_ms;
    cfg.snapshot_threshold = settings_.snapshot_threshold;
    cfg.snapshot_trailing = settings_.snapshot_trailing;
    cfg.snapshot_write_timeout_ms = settings_.snapshot_write_timeout_ms;
    cfg.fsm = {this, cb_apply, cb_result_free, cb_snapshot, cb_snapshot_done, cb_restore, cb_snapshot_fill};
    cfg.log = cb_log;
    cfg.log_user = this;
    int rv = rampart_raft_create(loop_, &cfg, &node_);
    // A pristine node writes the initial configuration: itself, or every
    // member of etc/peers.yml (each computes the same set).
    std::vector<uint64_t> ids;
    std::vector<const char*> addrs;
    for (const auto& [id, address] : settings_.bootstrap) {
        ids.push_back(id);
        addrs.push_back(address.c_str());
    }
    if (ids.empty()) {
        ids.push_back(settings_.raft_id);
        addrs.push_back(cfg.address);
    }
    if (rv == 0 && !settings_.join)
        rv = rampart_raft_bootstrap(node_, static_cast<unsigned>(ids.size()), ids.data(), addrs.data());
    bool first_start = rv == 0 && !settings_.join;
    if (rv == RAMPART_RAFT_EXISTS) rv = 0;
    if (rv == 0) rv = rampart_raft_start(node_);
    if (rv != 0) {
        *error = std::string("Raft engine: ") + rampart_raft_status_name(rv) + " (" + raft_dir_ + ")";
        return false;
    }
    log::info(settings_.join ? "store started empty, to join a cluster"
              : first_start
                  ? (ids.size() == 1 ? "store bootstrapped a one-node cluster" : "store bootstrapped a cluster")
                  : "store recovered from disk",
              {{"dir", raft_dir_},
               {"applied_index", static_cast<long long>(sm_.applied())},
               {"keys", static_cast<long long>(sm_.version()->kv.size())}});
    return true;
}

// A corrupt newest snapshot is set aside (reported in the log and the audit
// trail) so the engine starts from the previous one and the log; old ones
// beyond the retention count go.
bool Store::recover_snapshots(std::string* error) {
    RecoveryReport r = recover_engine_snapshots(raft_dir_, settings_.snapshot_retention);
    for (size_t i = 0; i < r.reasons.size(); i++) {
        log::error("store: corrupt snapshot set aside; starting from the previous snapshot and the log",
                   {{"snapshot", r.reasons[i]}, {"dir", raft_dir_}});
    }
    if (!r.reasons.empty() && settings_.audit != nullptr) {
        std::string moved, audit_error;
        for (const auto& f : r.moved_aside) moved += (moved.empty() ? "" : ",") + f;
        for (const auto& why : r.reasons) {
            settings_.audit->append("snapshot_corrupt", {{"snapshot", why}, {"moved_to", moved}}, &audit_error);
        }
    }
    for (const auto& f : r.unverified)
        log::warn("store: compressed snapshot left to the engine's checks", {{"file", f}});
    for (const auto& f : r.pruned) log::info("store: old snapshot removed (cluster.snapshot_retention)", {{"file", f}});
    if (!r.error.empty()) {
        *error = r.error;
        return false;
    }
    return true;
}

uint64_t Store::term() const { return node_ != nullptr ? rampart_raft_term(node_) : 0; }

void Store::write_record(const std::string& record, WriteDone done) {
    if (node_ == nullptr || closing_) {
        done(RAMPART_RAFT_SHUTDOWN, 0, nullptr);
        return;
    }
    propose(record, std::move(done));
}

void Store::release_watchers() {
    watchers_.wake_all();
    catalog_watchers_.wake_all();
}

void Store::close(std::function<void()> done) {
    if (closing_) return;
    closing_ = true;
    closed_ = std::move(done);
    fail_pending(RAMPART_RAFT_SHUTDOWN);
    if (flush_prepare_ != nullptr) close_and_free(std::exchange(flush_prepare_, nullptr));
    if (flush_check_ != nullptr) close_and_free(std::exchange(flush_check_, nullptr));
    watchers_.close();
    catalog_watchers_.close();
    ticker_->close();
    std::vector<ReadReady> never_issued;
    never_issued.swap(next_readers_);
    for (auto& r : never_issued) r(RAMPART_RAFT_SHUTDOWN);
    if (node_ == nullptr) {
        cb_closed(this);
        return;
    }
    rampart_raft_close(node_, cb_closed, this);
}

void Store::cb_closed(void* ctx) {
    auto* self = static_cast<Store*>(ctx);
    self->node_ = nullptr;
    auto done = std::move(self->closed_);
    if (done) done();
}

bool Store::has_leader() const { return node_ != nullptr && !closing_ && rampart_raft_leader(node_, nullptr, 0) != 0; }

bool Store::supervise_checks(resilience::Supervisor& supervisor, std::string* error) {
    return ticker_->supervise(supervisor, error);
}

bool Store::is_leader() const { return node_ != nullptr && !closing_ && rampart_raft_is_leader(node_) != 0; }

// ---- writes ---------------------------------------------------------------

void Store::write(const Command& cmd, WriteDone done) {
    if (node_ == nullptr || closing_) {
        done(RAMPART_RAFT_SHUTDOWN, 0, nullptr);
        return;
    }
    if (writes_refused_) {
        done(RAMPART_RAFT_NO_SPACE, 0, nullptr);
        return;
    }
    // A follower's write: the engine refuses it at once (NOT_LEADER).
    if (!is_leader()) {
        propose(encode(cmd), std::move(done));
        return;
    }
    // The leader writes only versions every voter decodes.
    std::string bytes, why;
    if (!cluster::encode_for_voters(cmd, node_, settings_.raft_id, sm_.version()->members, &bytes, &why)) {
        log::warn("store: write refused during a rolling upgrade", {{"reason", why}});
        done(kStatusVersionUnsupported, 0, nullptr);
        return;
    }
    enqueue(std::move(bytes), std::move(done));
}

void Store::register_metrics(metrics::Registry* registry) {
    if (registry == nullptr) return;
    batch_size_ = registry->histogram("rampart_store_batch_size",
                                      "Writes per Raft entry the leader proposed (group commit; 1: a lone write)", {},
                                      {1, 2, 4, 8, 16, 32, 64, 128, 256});
}

void Store::observe_batch(size_t commands) {
    if (batch_size_ != nullptr) batch_size_->observe({}, static_cast<double>(commands));
}

void Store::enqueue(std::string bytes, WriteDone done) {
    if (!pending_.empty() && (pending_bytes_ + bytes.size() > kBatchMaxBytes || pending_.size() >= kBatchCommands))
        flush();
    pending_bytes_ += bytes.size();
    pending_.push_back({std::move(bytes), std::move(done)});
    if (flush_prepare_ == nullptr) {
        flush_prepare_ = std::make_unique<uv_prepare_t>().release();  // close() frees both
        flush_check_ = std::make_unique<uv_check_t>().release();
        uv_prepare_init(loop_, flush_prepare_);
        uv_check_init(loop_, flush_check_);
        flush_prepare_->data = this;
        flush_check_->data = this;
    }
    // Whichever comes first: after this turn's I/O callbacks (check), or
    // before the loop would wait, for a write from a timer (prepare).
    uv_prepare_start(flush_prepare_, cb_flush_prepare);
    uv_check_start(flush_check_, cb_flush_check);
}

void Store::cb_flush_prepare(uv_prepare_t* h) { static_cast<Store*>(h->data)->flush(); }
void Store::cb_flush_check(uv_check_t* h) { static_cast<Store*>(h->data)->flush(); }

void Store::flush() {
    if (flush_prepare_ != nullptr) uv_prepare_stop(flush_prepare_);
    if (flush_check_ != nullptr) uv_check_stop(flush_check_);
    std::vector<Pending> batch;
    batch.swap(pending_);
    pending_bytes_ = 0;
    if (batch.empty()) return;
    // An older voter that cannot read batches: one entry per write, as
    // before group commit (cluster/version_gate.h).
    if (batch.size() == 1 || !cluster::voters_decode_batches(node_, settings_.raft_id, sm_.version()->members)) {
        for (Pending& p : batch) {
            observe_batch(1);
            propose(p.bytes, std::move(p.done));
        }
        return;
    }
    propose_batch(std::move(batch));
}

void Store::propose(const std::string& bytes, WriteDone done) {
    auto ctx = std::make_unique<WriteDone>(std::move(done));
    int rv = rampart_raft_apply(node_, bytes.data(), bytes.size(), cb_write_done, ctx.get());
    if (rv != 0) {
        (*ctx)(rv, 0, nullptr);
        return;
    }
    (void)ctx.release();  // cb_write_done owns it now
}

void Store::propose_batch(std::vector<Pending> batch) {
    std::vector<std::string_view> records;
    records.reserve(batch.size());
    auto ctx = std::make_unique<std::vector<WriteDone>>();
    ctx->reserve(batch.size());
    for (Pending& p : batch) {
        records.emplace_back(p.bytes);
        ctx->push_back(std::move(p.done));
    }
    std::string bytes = encode_batch(records);
    observe_batch(records.size());
    int rv = rampart_raft_apply(node_, bytes.data(), bytes.size(), cb_batch_done, ctx.get());
    if (rv != 0) {
        for (WriteDone& d : *ctx) d(rv, 0, nullptr);
        return;
    }
    (void)ctx.release();  // cb_batch_done owns it now
}

void Store::fail_pending(int status) {
    std::vector<Pending> batch;
    batch.swap(pending_);
    pending_bytes_ = 0;
    for (Pending& p : batch) p.done(status, 0, nullptr);
}

void Store::cb_write_done(void* ctx, int status, uint64_t index, void* result) {
    std::unique_ptr<WriteDone> done(static_cast<WriteDone*>(ctx));
    std::unique_ptr<Results> rs(static_cast<Results*>(result));
    (*done)(status, index, status == 0 ? take_result(rs.get(), 0, 1) : nullptr);
}

// Every caller of the batch, in the order of its sub-commands.
void Store::cb_batch_done(void* ctx, int status, uint64_t index, void* result) {
    std::unique_ptr<std::vector<WriteDone>> dones(static_cast<std::vector<WriteDone>*>(ctx));
    std::unique_ptr<Results> rs(static_cast<Results*>(result));
    for (size_t i = 0; i < dones->size(); i++)
        (*dones)[i](status, index, status == 0 ? take_result(rs.get(), i, dones->size()) : nullptr);
}

int Store::transfer_leadership() {
    if (node_ == nullptr || closing_) return RAMPART_RAFT_SHUTDOWN;
    return rampart_raft_transfer(node_, 0, nullptr, nullptr);
}

// ---- reads ----------------------------------------------------------------

void Store::read(Consistency level, ReadReady done) {
    if (level == Consistency::Stale) {
        done(0);
        return;
    }
    if (node_ == nullptr || closing_) {
        done(RAMPART_RAFT_SHUTDOWN);
        return;
    }
    if (!is_leader()) {
        done(RAMPART_RAFT_NOT_LEADER);
        return;
    }
    // A barrier appended before a Strong read arrived proves nothing about
    // leadership at the time of the read; for Default it is good enough.
    if (barrier_in_flight_ && level == Consistency::Default) {
        barrier_readers_.push_back(std::move(done));
        return;
    }
    next_readers_.push_back(std::move(done));
    if (!barrier_in_flight_) start_barrier();
}

void Store::start_barrier() {
    barrier_readers_.swap(next_readers_);
    barrier_in_flight_ = true;
    int rv = rampart_raft_barrier(node_, cb_barrier_done, this);
    if (rv != 0) cb_barrier_done(this, rv, 0);
}

void Store::cb_barrier_done(void* ctx, int status, uint64_t) {
    auto* self = static_cast<Store*>(ctx);
    // A full disk refuses the barrier's log entry too. The sole voter needs
    // no proof that it still leads (no quorum can form without it), and
    // every acknowledged write was applied here before it was answered, so
    // the local state already serves the read: reads keep working.
    if (status == RAMPART_RAFT_NO_SPACE && self->node_ != nullptr && rampart_raft_is_leader(self->node_) &&
        rampart_raft_sole_voter(self->node_))
        status = 0;
    std::vector<ReadReady> readers;
    readers.swap(self->barrier_readers_);
    self->barrier_in_flight_ = false;
    if (!self->next_readers_.empty() && !self->closing_ && status == 0) self->start_barrier();
    for (auto& r : readers) r(status);
    // After a failure, the next group fails the same way (not leader, ...).
    if (status != 0 && !self->next_readers_.empty() && !self->barrier_in_flight_) {
        std::vector<ReadReady> rest;
        rest.swap(self->next_readers_);
        for (auto& r : rest) r(status);
    }
}

void Store::watch_catalog(uint64_t index, uint64_t wait_ms, std::function<void()> done) {
    if (closing_ || sm_.catalog_index() > index) {
        done();
        return;
    }
    catalog_watchers_.add(index, wait_ms, std::move(done));
}

void Store::catalog_applied(uint64_t before) {
    uint64_t now = sm_.catalog_index();
    if (now < before) {
        catalog_watchers_.wake_all();  // a restore went back: everyone re-reads
    } else if (now != before) {
        catalog_watchers_.notify(now);
    }
    ticker_->rearm();
}

void Store::watch(uint64_t index, uint64_t wait_ms, std::function<void()> done) {
    if (closing_ || sm_.index() > index) {
        done();
        return;
    }
    watchers_.add(index, wait_ms, std::move(done));
}

// ---- the engine's state machine callbacks ---------------------------------

void Store::cb_apply(void* user, uint64_t index, const void* data, size_t len, void** result) {
    auto* self = static_cast<Store*>(user);
    std::string_view bytes(static_cast<const char*>(data), len);
    cluster::UnknownRecord unknown = cluster::check_record(bytes);
    if (unknown.unknown) cluster::stop_on_unknown_record(index, unknown);
    uint64_t before = self->sm_.index();
    uint64_t catalog_before = self->sm_.catalog_index();
    Results rs = self->sm_.apply_entry(index, bytes);
    for (const Result& r : rs) {
        if (r.outcome == Outcome::Invalid)
            log::warn("store: command refused", {{"index", static_cast<long long>(index)}, {"error", r.error}});
    }
    // Once per entry: every key a batch changed carries this index.
    if (self->sm_.index() != before) self->watchers_.notify(self->sm_.index());
    self->catalog_applied(catalog_before);
    // A restore replaced everything: every watcher re-reads, whatever index
    // it waits past.
    if (is_restore_record(bytes) && rs.front().outcome == Outcome::Ok) self->watchers_.wake_all();
    *result = std::make_unique<Results>(std::move(rs)).release();
}

void Store::cb_result_free(void*, void* result) { std::unique_ptr<Results>(static_cast<Results*>(result)).reset(); }

// On the loop: only pin the current immutable version (a shared_ptr copy).
// cb_snapshot_fill serialises it on the thread pool while the loop applies
// on; the adapter checksums it there too (issue 5: "the snapshot hook stays
// cheap").
int Store::cb_snapshot(void* user, const void** data, size_t* len, void** token) {
    auto* self = static_cast<Store*>(user);
    *data = nullptr;
    *len = 0;
    auto bytes = std::make_unique<SnapshotBytes>();
    bytes->version = self->sm_.version();
    *token = bytes.release();
    return 0;  // cb_snapshot_done frees the token
}

// Thread pool: reads only the pinned version, which no one changes (writes
// copy the map; the entries are shared through atomic reference counts).
void Store::cb_snapshot_fill(void*, void* token, const void** data, size_t* len) noexcept {
    auto* bytes = static_cast<SnapshotBytes*>(token);
    {
        StateWriter writer(*bytes->version);
        std::string piece;
        while (writer.next(piece, kSnapshotPiece)) {
            bytes->payload.append(piece);
            piece.clear();
        }
    }
    bytes->version.reset();  // the payload is all the engine needs now
    *data = bytes->payload.data();
    *len = bytes->payload.size();
}

void Store::cb_snapshot_done(void*, void* token) {
    std::unique_ptr<SnapshotBytes>(static_cast<SnapshotBytes*>(token)).reset();
}

int Store::cb_restore(void* user, uint64_t index, const void* data, size_t len) {
    auto* self = static_cast<Store*>(user);
    std::string error;
    if (!self->sm_.restore(index, std::string_view(static_cast<const char*>(data), len), &error)) {
        log::error("store: snapshot refused", {{"index", static_cast<long long>(index)}, {"error", error}});
        return 1;
    }
    // Watchers re-read: their data may have changed in any way.
    self->watchers_.wake_all();
    self->catalog_watchers_.wake_all();
    self->ticker_->rearm();
    return 0;
}

void Store::cb_log(void*, int level, const char* msg) {
    switch (level) {
        case 1: log::error("raft", {{"detail", msg}}); break;
        case 2: log::warn("raft", {{"detail", msg}}); break;
        case 3: log::info("raft", {{"detail", msg}}); break;
        default: log::debug("raft", {{"detail", msg}}); break;
    }
}

}  // namespace rampart::store
