#include "cluster/snapshot_task.h"

namespace rampart::cluster {

bool SnapshotTask::supervise(resilience::Supervisor& supervisor, std::string* error) {
    if (engine_ == nullptr) {
        if (error != nullptr) *error = "no engine";
        return false;
    }
    task_ = supervisor.add({"snapshots",
                            [this](std::string* why) {
                                // Nothing to resume while the stalled write is still running.
                                if (rampart_raft_snapshot_stalled(engine_) != 0) {
                                    *why = "snapshot write still stalled";
                                    return false;
                                }
                                rampart_raft_pause_snapshots(engine_, 0);
                                return true;
                            }},
                           error);
    if (task_ == 0) return false;
    supervisor_ = &supervisor;
    rampart_raft_set_snapshot_listener(engine_, cb_written, this);
    supervisor.start(task_);
    return true;
}

void SnapshotTask::close() {
    if (supervisor_ == nullptr) return;
    rampart_raft_set_snapshot_listener(engine_, nullptr, nullptr);
    supervisor_->remove(task_);
    supervisor_ = nullptr;
}

void SnapshotTask::cb_written(void* user, int status, const char* error) {
    auto* self = static_cast<SnapshotTask*>(user);
    if (self->supervisor_ == nullptr) return;
    if (status == 0) return self->supervisor_->succeeded(self->task_);
    rampart_raft_pause_snapshots(self->engine_, 1);
    self->supervisor_->failed(self->task_, std::string("snapshot not written: ") + error);
}

}  // namespace rampart::cluster
