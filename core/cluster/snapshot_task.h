// The engine's snapshotter as the supervisor's task "snapshots" (issue 7,
// docs/operations.md "Supervised tasks and circuit breakers").
//
// The engine takes a snapshot when its log passes cluster.snapshot_threshold
// entries; the adapter reports how each write of this node's own snapshot
// ended. A write that fails (a full disk, an I/O error) pauses snapshots and
// is a failure: recovery.lua decides when the supervisor resumes them (its
// restart), and a breaker that opens leaves them paused until its trial or
// an operator's reset. Paused, the log keeps every entry (nothing is lost,
// the disk use grows); running, a failing write would otherwise be retried
// at every tick, each time serialising the whole state again.
#pragma once

#include <string>

#include "cluster/raft_adapter.h"
#include "resilience/supervisor.h"

namespace rampart::cluster {

class SnapshotTask {
public:
    explicit SnapshotTask(rampart_raft* engine) : engine_(engine) {}
    ~SnapshotTask() { close(); }
    SnapshotTask(const SnapshotTask&) = delete;
    SnapshotTask& operator=(const SnapshotTask&) = delete;

    // Register and start the task (the supervisor outlives this object, or
    // close() comes first). False with *error when it cannot be added.
    bool supervise(resilience::Supervisor& supervisor, std::string* error);
    // Before the engine closes: no more reports, the task is removed.
    void close();

private:
    static void cb_written(void* user, int status, const char* error);

    rampart_raft* engine_;
    resilience::Supervisor* supervisor_ = nullptr;
    resilience::TaskId task_ = 0;
};

}  // namespace rampart::cluster
