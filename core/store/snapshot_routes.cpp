#include "store/snapshot_routes.h"

#include <uv.h>

#include <algorithm>
#include <memory>

#include "audit/audit_log.h"
#include "cluster/raft_adapter.h"
#include "http/exchange.h"
#include "http/router.h"
#include "log.h"
#include "store/query.h"
#include "store/snapshot_file.h"
#include "store/state_writer.h"
#include "store/store.h"

namespace rampart::store {
namespace {

using http::Exchange;
using http::Response;
using ExPtr = std::shared_ptr<Exchange>;

Response unavailable(int status) {
    Response r = status == RAMPART_RAFT_NOT_LEADER
                     ? Response::error(503, "no_leader", "this node is not the leader; retry shortly")
                 : status == RAMPART_RAFT_SHUTDOWN ? Response::error(503, "shutting_down", "the node is shutting down")
                 : status == RAMPART_RAFT_NO_SPACE
                     ? Response::error(507, "storage_full", "the node cannot persist the restore: disk full")
                     : Response::error(503, "unavailable", rampart_raft_status_name(status));
    if (r.status == 503) r.headers.emplace_back("Retry-After", "1");
    return r;
}

// Pieces of about this size: a snapshot costs the daemon one or two of them
// plus the connection's bounded backlog, however large the store is.
constexpr size_t kPiece = size_t{64} * 1024;

// Length and CRC32C of the payload StateWriter writes for `state`, without
// keeping it: a first pass, so the header (and Content-Length) can go first.
void describe_payload(const State& state, SnapshotFileInfo* info, std::string& piece) {
    StateWriter writer(state);
    uint32_t crc = 0;
    uint64_t bytes = 0;
    while (writer.next(piece, kPiece)) {
        crc = rampart_raft_crc32c(crc, piece.data(), piece.size());
        bytes += piece.size();
        piece.clear();
    }
    info->payload_bytes = bytes;
    info->payload_crc = crc;
}

// The snapshot file of one version, written again piece by piece as the
// client reads it: the header, then the payload. The version is immutable,
// so the second pass writes the very bytes the first one measured; it
// checks that anyway and cuts the answer short rather than send a file that
// disagrees with its header.
class SnapshotBody final : public http::BodySource {
public:
    SnapshotBody(Version version, const SnapshotFileInfo& info)
        : version_(std::move(version)), writer_(*version_), info_(info), pending_(encode_snapshot_header(info)) {}

    bool next(std::string& out, size_t max) override {
        while (pending_.size() - taken_ < max && !payload_done_) {
            pending_.erase(0, taken_);
            taken_ = 0;
            size_t before = pending_.size();
            if (!writer_.next(pending_, kPiece)) {
                payload_done_ = true;
                if (crc_ != info_.payload_crc || bytes_ != info_.payload_bytes) return false;
                break;
            }
            crc_ = rampart_raft_crc32c(crc_, pending_.data() + before, pending_.size() - before);
            bytes_ += pending_.size() - before;
            if (bytes_ > info_.payload_bytes) return false;
        }
        size_t n = std::min(max, pending_.size() - taken_);
        out.append(pending_, taken_, n);
        taken_ += n;
        return n > 0;
    }

private:
    Version version_;  // keeps the state StateWriter reads alive and unchanged
    StateWriter writer_;
    SnapshotFileInfo info_;
    std::string pending_;  // written but not yet handed out, from taken_
    size_t taken_ = 0;
    uint32_t crc_ = 0;
    uint64_t bytes_ = 0;
    bool payload_done_ = false;
};

// The first pass runs on the libuv thread pool, so a large store does not
// stall the loop: it only reads the held version, which the loop never
// changes (copy-on-write: a write copies the state while a version is held).
// The daemon's loop runs until this work is done before anything it answers
// through is torn down.
struct Measure {
    uv_work_t req{};
    ExPtr ex;
    Version version;
    SnapshotFileInfo info;
    std::string piece;
};

void cb_measure(uv_work_t* req) {
    auto* m = static_cast<Measure*>(req->data);
    describe_payload(*m->version, &m->info, m->piece);
}

void cb_measured(uv_work_t* req, int status) {
    std::unique_ptr<Measure> m(static_cast<Measure*>(req->data));
    if (status != 0) return m->ex->respond(unavailable(RAMPART_RAFT_SHUTDOWN));
    const SnapshotFileInfo& info = m->info;
    Response r;
    r.content_type = "application/octet-stream";
    r.stream_length = kSnapshotFileHeader + info.payload_bytes;
    r.headers.emplace_back("X-Rampart-Index", std::to_string(info.kv_index > 0 ? info.kv_index : 1));
    r.headers.emplace_back("X-Rampart-Snapshot-Index", std::to_string(info.index));
    r.headers.emplace_back("X-Rampart-Snapshot-Checksum", crc_text(info.payload_crc));
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"rampart.snap\"");
    r.stream = std::make_shared<SnapshotBody>(std::move(m->version), info);
    m->ex->respond(std::move(r));
}

void handle_get(Store& store, const ExPtr& ex) {
    Query q;
    std::string error;
    if (!q.parse(ex->request().query, &error)) return ex->respond(Response::error(400, "bad_request", error));
    Consistency level = q.has("stale") ? Consistency::Stale : Consistency::Default;
    store.read(level, [&store, ex](int status) {
        if (status != 0) return ex->respond(unavailable(status));
        auto m = std::make_unique<Measure>();
        m->ex = ex;
        // One immutable version: writes after this point are not in it.
        m->version = store.state().version();
        m->info.index = m->version->applied;
        m->info.term = store.term();
        m->info.kv_index = m->version->kv_index;
        m->info.keys = m->version->kv.size();
        // The worker's buffer, allocated here: a piece is at most the budget
        // plus one entry. Memory the worker thread allocated itself would
        // come from a malloc arena of its own, which keeps its pages (about
        // 1 MiB per pool thread, measured).
        m->piece.reserve(kPiece + Limits::kKey + Limits::kValue + 64);
        m->req.data = m.get();
        // The adapter builds its CRC table on first use, unlocked: build it
        // here on the loop, so the worker only ever reads it (queueing the
        // work orders the two threads).
        (void)rampart_raft_crc32c(0, nullptr, 0);
        if (uv_queue_work(store.loop(), &m->req, cb_measure, cb_measured) != 0)
            return ex->respond(unavailable(RAMPART_RAFT_SHUTDOWN));
        (void)m.release();  // owned by the loop until cb_measured
    });
}

void handle_put(Store& store, audit::AuditLog* audit, const ExPtr& ex) {
    const std::string& file = ex->request().body;
    uint64_t limit = snapshot_size_limit(store.state().limits().max_bytes);
    SnapshotFileInfo info;
    std::string_view payload;
    std::string error;
    if (file.size() > limit + kSnapshotFileHeader)
        return ex->respond(Response::error(413, "body_too_large", "snapshot larger than " + std::to_string(limit)));
    if (!decode_snapshot_file(file, &info, &payload, &error, limit))
        return ex->respond(Response::error(400, "bad_snapshot", error));
    // Parse it here first: a payload the state machine would refuse is
    // refused now, before it costs a log entry.
    StateMachine check(store.state().limits());
    if (!check.restore(info.index, payload, &error))
        return ex->respond(Response::error(400, "bad_snapshot", "snapshot payload: " + error));
    if (check.version()->kv.size() != info.keys)
        return ex->respond(
            Response::error(400, "bad_snapshot", "snapshot header and payload disagree on the key count"));
    std::string record = encode_restore_record(file);
    uint64_t keys = info.keys;
    std::string checksum = crc_text(info.payload_crc);
    uint64_t from_index = info.index;
    store.write_record(
        record, [ex, audit, keys, checksum, from_index](int status, uint64_t index, std::unique_ptr<Result> result) {
            if (status != 0) return ex->respond(unavailable(status));
            if (result->outcome == Outcome::StoreFull)
                return ex->respond(Response::error(507, "store_full", result->error));
            if (result->outcome != Outcome::Ok) return ex->respond(Response::error(400, "bad_snapshot", result->error));
            log::info("snapshot restored", {{"index", static_cast<long long>(index)},
                                            {"keys", static_cast<long long>(keys)},
                                            {"snapshot_index", static_cast<long long>(from_index)},
                                            {"checksum", checksum}});
            if (audit != nullptr) {
                std::string audit_error;
                if (audit->append("snapshot_restore",
                                  {{"index", static_cast<int64_t>(index)},
                                   {"snapshot_index", static_cast<int64_t>(from_index)},
                                   {"keys", static_cast<int64_t>(keys)},
                                   {"checksum", checksum},
                                   {"by", ex->identity().name}},
                                  &audit_error) == 0)
                    log::error("cannot write the audit log", {{"error", audit_error}});
            }
            Response r = Response::json(200, "{\"restored\":true,\"index\":" + std::to_string(index) + ",\"keys\":" +
                                                 std::to_string(keys) + ",\"checksum\":\"" + checksum + "\"}\n");
            r.headers.emplace_back("X-Rampart-Index", std::to_string(index));
            ex->respond(std::move(r));
        });
}

}  // namespace

void install_snapshot_routes(http::Router& router, Store& store, audit::AuditLog* audit) {
    router.add("GET", "/v1/snapshot", [&store](Exchange& ex) { handle_get(store, ex.shared_from_this()); });
    router.add("PUT", "/v1/snapshot",
               [&store, audit](Exchange& ex) { handle_put(store, audit, ex.shared_from_this()); });
}

}  // namespace rampart::store
