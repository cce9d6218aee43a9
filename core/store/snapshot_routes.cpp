#include "store/snapshot_routes.h"

#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

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

// ---- PUT: the upload is spooled, not held ----------------------------------

// The upload of one PUT /v1/snapshot, written to a file in the data
// directory as it arrives (the HTTP layer's BodySink), so the daemon never
// holds it while it is being received: on a router the data directory is
// flash, while /tmp is RAM. The file is unlinked from the start (O_TMPFILE,
// or mkstemp and unlink), so it is gone with its descriptor on every path,
// a crash included. It starts with the restore record's two-byte prefix:
// its content is the log record, read back in one piece.
class UploadSpool final : public http::BodySink {
public:
    // `busy` is shared by the route's spools: one at a time, so that two
    // admins' uploads together cannot fill the disk the Raft log is on.
    // (A request without an admin token never gets a spool.)
    static std::shared_ptr<UploadSpool> open(const std::string& dir, std::shared_ptr<bool> busy,
                                             http::ParseError* error) {
        if (*busy) {
            error->status = 409;
            error->code = "upload_in_progress";
            error->message = "another snapshot upload is in progress on this node; retry when it is done";
            return nullptr;
        }
        int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) fd = named_then_unlinked(dir);
        if (fd < 0) {
            *error = storage_error(errno, "cannot create the upload file in " + dir);
            return nullptr;
        }
        auto spool = std::make_shared<UploadSpool>(fd, std::move(busy));
        if (!spool->append(encode_restore_record({}), error)) return nullptr;
        return spool;
    }
    UploadSpool(int fd, std::shared_ptr<bool> busy) : fd_(fd), busy_(std::move(busy)) { *busy_ = true; }  // owns fd
    ~UploadSpool() override {
        *busy_ = false;
        if (fd_ >= 0) ::close(fd_);
    }
    UploadSpool(const UploadSpool&) = delete;
    UploadSpool& operator=(const UploadSpool&) = delete;

    bool write(const char* data, size_t len, http::ParseError* error) override {
        return append(std::string_view(data, len), error);
    }
    int fd() const { return fd_; }
    // The whole record (prefix + file), read back from the spool.
    bool read_record(std::string* record, std::string* error) const {
        record->resize(bytes_);
        size_t done = 0;
        while (done < bytes_) {
            ssize_t n = ::pread(fd_, record->data() + done, bytes_ - done, static_cast<off_t>(done));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                *error = std::string("reading the upload back: ") + (n < 0 ? strerror(errno) : "short file");
                return false;
            }
            done += static_cast<size_t>(n);
        }
        return true;
    }

private:
    static int named_then_unlinked(const std::string& dir) {
        std::string path = dir + "/.snapshot-upload.XXXXXX";
        int fd = ::mkostemp(path.data(), O_CLOEXEC);
        if (fd >= 0) ::unlink(path.c_str());
        return fd;
    }

    static http::ParseError storage_error(int err, const std::string& what) {
        http::ParseError e;
        e.status = err == ENOSPC || err == EDQUOT ? 507 : 500;
        e.code = e.status == 507 ? "storage_full" : "internal_error";
        e.message = what + ": " + strerror(err);
        return e;
    }

    // Writes go to the page cache: a piece costs the loop a copy, not a
    // disk wait. The one fsync is on the thread pool (handle_put).
    bool append(std::string_view data, http::ParseError* error) {
        while (!data.empty()) {
            ssize_t n = ::write(fd_, data.data(), data.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                *error = storage_error(errno, "cannot spool the snapshot upload");
                return false;
            }
            data.remove_prefix(static_cast<size_t>(n));
            bytes_ += static_cast<uint64_t>(n);
        }
        return true;
    }

    int fd_;
    std::shared_ptr<bool> busy_;
    uint64_t bytes_ = 0;
};

// Refuse a snapshot file the state machine would refuse, before it costs a
// log entry: both checksums and the length, then the payload parsed into a
// state that is dropped at once. No answer when it is fine.
std::optional<Response> check_upload(const Store& store, std::string_view file, SnapshotFileInfo* info) {
    uint64_t limit = snapshot_size_limit(store.state().limits().max_bytes);
    if (file.size() > limit + kSnapshotFileHeader)
        return Response::error(413, "body_too_large", "snapshot larger than " + std::to_string(limit));
    std::string_view payload;
    std::string error;
    if (!decode_snapshot_file(file, info, &payload, &error, limit)) return Response::error(400, "bad_snapshot", error);
    StateMachine check(store.state().limits());
    if (!check.restore(info->index, payload, &error))
        return Response::error(400, "bad_snapshot", "snapshot payload: " + error);
    if (check.version()->kv.size() != info->keys)
        return Response::error(400, "bad_snapshot", "snapshot header and payload disagree on the key count");
    return std::nullopt;
}

void propose_restore(Store& store, audit::AuditLog* audit, const ExPtr& ex, const std::string& record,
                     const SnapshotFileInfo& info) {
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

// The spooled upload, once fsync'ed (thread pool): read back as the log
// record, checked, proposed. In memory: the record, with the checked state
// for a moment, then with the engine's copies while it appends the entry;
// the record is dropped as soon as the engine has them. (The file itself closes when
// the exchange ends: the request owns it.)
struct SpoolSync {
    uv_fs_t req{};
    Store* store;
    audit::AuditLog* audit;
    ExPtr ex;
    std::shared_ptr<UploadSpool> spool;
};

void cb_spool_synced(uv_fs_t* req) {
    std::unique_ptr<SpoolSync> s(static_cast<SpoolSync*>(req->data));
    ssize_t result = req->result;
    uv_fs_req_cleanup(req);
    // A client gone before its restore was proposed: nobody would learn
    // the outcome, so nothing is changed.
    if (s->ex->abandoned()) return;
    if (result < 0)
        return s->ex->respond(
            Response::error(result == UV_ENOSPC ? 507 : 500, result == UV_ENOSPC ? "storage_full" : "internal_error",
                            std::string("cannot sync the snapshot upload: ") + uv_strerror(static_cast<int>(result))));
    std::string record, error;
    if (!s->spool->read_record(&record, &error)) return s->ex->respond(Response::error(500, "internal_error", error));
    SnapshotFileInfo info;
    if (auto refused = check_upload(*s->store, std::string_view(record).substr(2), &info))
        return s->ex->respond(std::move(*refused));
    propose_restore(*s->store, s->audit, s->ex, record, info);
}

void handle_put(Store& store, audit::AuditLog* audit, const ExPtr& ex) {
    auto spool = std::dynamic_pointer_cast<UploadSpool>(ex->request().body_sink);
    if (!spool) {
        // A body that arrived buffered (no spool: a caller other than the
        // connection) is checked and proposed the same way.
        const std::string& file = ex->request().body;
        SnapshotFileInfo info;
        if (auto refused = check_upload(store, file, &info)) return ex->respond(std::move(*refused));
        return propose_restore(store, audit, ex, encode_restore_record(file), info);
    }
    auto s = std::make_unique<SpoolSync>();
    s->store = &store;
    s->audit = audit;
    s->ex = ex;
    s->spool = std::move(spool);
    s->req.data = s.get();
    // The upload's pages are dirty in the page cache until written: on a
    // router without swap they cannot be reclaimed before that.
    if (uv_fs_fsync(store.loop(), &s->req, s->spool->fd(), cb_spool_synced) != 0)
        return ex->respond(unavailable(RAMPART_RAFT_SHUTDOWN));
    (void)s.release();  // owned by the loop until cb_spool_synced
}

}  // namespace

// The body of an upload that authentication is about to refuse: counted by
// the parser against the route's limit, kept nowhere.
class DiscardedBody final : public http::BodySink {
public:
    bool write(const char*, size_t, http::ParseError*) override { return true; }
};

void install_snapshot_routes(http::Router& router, Store& store, audit::AuditLog* audit, std::string spool_dir,
                             std::function<bool(const http::Request& head)> may_upload) {
    router.add("GET", "/v1/snapshot", [&store](Exchange& ex) { handle_get(store, ex.shared_from_this()); });
    router.add("PUT", "/v1/snapshot",
               [&store, audit](Exchange& ex) { handle_put(store, audit, ex.shared_from_this()); });
    router.stream_body("PUT", "/v1/snapshot",
                       [dir = std::move(spool_dir), busy = std::make_shared<bool>(false),
                        may_upload = std::move(may_upload)](const http::Request& head, http::ParseError* error) {
                           if (!may_upload(head))
                               return std::shared_ptr<http::BodySink>(std::make_shared<DiscardedBody>());
                           return std::shared_ptr<http::BodySink>(UploadSpool::open(dir, busy, error));
                       });
}

}  // namespace rampart::store
