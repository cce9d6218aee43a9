#include "cluster/peer_dial_tasks.h"

#include <algorithm>

namespace rampart::cluster {
namespace {

constexpr size_t kMaxTaskName = 64;

bool allowed_in_task_name(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

}  // namespace

std::string peer_dial_task_name(std::string_view node_id) {
    std::string name = "raft_peer.";
    for (char c : node_id) name += allowed_in_task_name(c) ? c : '_';
    if (name.size() > kMaxTaskName) name.resize(kMaxTaskName);
    return name;
}

PeerDialTasks::~PeerDialTasks() {
    for (auto& [node_id, peer] : peers_) supervisor_.remove(peer.task);
}

bool PeerDialTasks::may_dial(const std::string& node_id) {
    auto it = peers_.find(node_id);
    if (it != peers_.end()) return it->second.dials_allowed;
    resilience::TaskSpec spec;
    spec.name = peer_dial_task_name(node_id);
    // A restart only lets the engine's next redial through.
    spec.start = [this, node_id](std::string*) {
        auto found = peers_.find(node_id);
        if (found != peers_.end()) found->second.dials_allowed = true;
        return true;
    };
    spec.max_delay_ms = max_delay_ms_;
    resilience::TaskId task = supervisor_.add(std::move(spec));
    if (task == 0) return true;  // a name clash (two ids alike after '_'): dial unsupervised
    peers_[node_id].task = task;
    supervisor_.start(task);
    return true;
}

void PeerDialTasks::dialled(const std::string& node_id, bool connected, std::string_view error_class) {
    auto it = peers_.find(node_id);
    if (it == peers_.end()) return;
    if (connected) return supervisor_.succeeded(it->second.task);
    it->second.dials_allowed = false;
    supervisor_.failed(it->second.task, std::string("dial failed: ") + std::string(error_class));
}

void PeerDialTasks::keep_only(const std::vector<std::string>& node_ids) {
    for (auto it = peers_.begin(); it != peers_.end();) {
        if (std::find(node_ids.begin(), node_ids.end(), it->first) != node_ids.end()) {
            ++it;
            continue;
        }
        supervisor_.remove(it->second.task);
        it = peers_.erase(it);
    }
}

}  // namespace rampart::cluster
