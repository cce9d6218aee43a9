// Snapshots for operators (brief "HTTP API"; issue 5):
//   GET /v1/snapshot   the state as a snapshot file (store/snapshot_file.h),
//                      after a barrier (?stale: this node's state at once);
//                      X-Rampart-Index, X-Rampart-Snapshot-Checksum. Streamed
//                      from one immutable version (store/state_writer.h): a
//                      first pass (thread pool) measures length and CRC for
//                      the header, the second writes the payload piece by
//                      piece as the client reads, so the store is never
//                      copied whole.
//   PUT /v1/snapshot   body = a snapshot file, spooled as it arrives to an
//                      unlinked file in the data directory (never held in
//                      memory while received), fsync'ed, read back once as
//                      the log record, checked whole, then proposed as one
//                      log entry so every node applies it; the index is
//                      re-based to that entry's, so blocking reads return at
//                      once with the new index. 200 {"restored":true,...}
// Both need an admin token (core/auth). A file that is truncated, corrupt,
// of an unknown format or over the size limit is refused with 400 / 413
// before anything is proposed.
#pragma once

#include <functional>
#include <string>

namespace rampart::http {
class Router;
struct Request;
}  // namespace rampart::http
namespace rampart::audit {
class AuditLog;
}

namespace rampart::store {

class Store;

// `store` and `audit` (may be null) must outlive the routes. Uploads are
// spooled in `spool_dir` (node.data_dir: flash on a router, not tmpfs).
// `may_upload` is asked with a PUT's head before a byte of its body is
// spooled: a request that authentication will refuse has its body counted
// (the route's limit still applies) and dropped, never written to disk.
void install_snapshot_routes(http::Router& router, Store& store, audit::AuditLog* audit, std::string spool_dir,
                             std::function<bool(const http::Request& head)> may_upload);

}  // namespace rampart::store
