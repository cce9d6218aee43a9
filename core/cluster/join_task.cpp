#include "cluster/join_task.h"

namespace rampart::cluster {

JoinTask::~JoinTask() {
    if (task_ != 0) supervisor_.remove(task_);
    if (loop_ != nullptr) loop_->on_finished(nullptr);
}

void JoinTask::watch(JoinLoop* loop) {
    loop_ = loop;  // the previous one is gone already (the daemon replaced it)
    refusal_.clear();
    loop_->on_finished([this](const JoinOutcome& outcome, const Seed&) { finished(outcome); });
    if (task_ == 0) {
        task_ = supervisor_.add({"join", [this](std::string* error) { return start_loop(error); }});
        if (task_ == 0) {  // cannot happen for a fixed, valid name; run unsupervised then
            loop_->start();
            return;
        }
        supervisor_.start(task_);
        return;
    }
    // A new token: forget the old refusals (a stopped task restarts here).
    supervisor_.reset("join");
    loop_->start();  // no-op when the reset's restart started it
}

bool JoinTask::start_loop(std::string* error) {
    if (loop_ == nullptr) {
        *error = "no join loop";
        return false;
    }
    if (!refusal_.empty()) {
        *error = "join refused: " + refusal_ + " (give a new token: rampartctl cluster join --token ...)";
        return false;
    }
    loop_->start();
    return true;
}

void JoinTask::finished(const JoinOutcome& outcome) {
    if (task_ == 0) return;
    if (outcome.result == JoinOutcome::Result::Joined) {
        supervisor_.succeeded(task_);
        supervisor_.remove(task_);
        task_ = 0;
        return;
    }
    refusal_ = outcome.detail;
    supervisor_.failed(task_, "join refused: " + outcome.detail);
}

}  // namespace rampart::cluster
