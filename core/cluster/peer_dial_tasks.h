// The engine's connections to its peers, one supervised task per peer:
// "raft_peer.<node id>" (issue 7, docs/operations.md "Supervised tasks and
// circuit breakers").
//
// The engine redials a peer it cannot reach every connect_retry_ms (100 ms)
// on its own; this class decides whether such a dial may go out. A dial
// that fails (refused, unreachable, a TLS failure) is the task's failure
// and stops its dials until the supervisor restarts it under recovery.lua
// (immediate, backoff, or an open breaker until its trial); a dial that
// connects is its success and closes a half-open breaker. The waits are
// capped at one election timeout: however the policy is edited, a peer
// that comes back is dialled again before an election could need it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "resilience/supervisor.h"

namespace rampart::cluster {

// The task's name for a peer: "raft_peer." + its node id, with characters
// the supervisor does not take replaced by '_' (at most 64 characters).
std::string peer_dial_task_name(std::string_view node_id);

class PeerDialTasks {
public:
    // The supervisor outlives this object.
    PeerDialTasks(resilience::Supervisor& supervisor, uint64_t max_delay_ms)
        : supervisor_(supervisor), max_delay_ms_(max_delay_ms) {}
    ~PeerDialTasks();
    PeerDialTasks(const PeerDialTasks&) = delete;
    PeerDialTasks& operator=(const PeerDialTasks&) = delete;

    // May the engine dial this peer now? The peer's task is added and
    // started the first time it is asked for.
    bool may_dial(const std::string& node_id);
    // How a dial ended: connected, or failed with its error class.
    void dialled(const std::string& node_id, bool connected, std::string_view error_class);
    // Remove the tasks of peers that are no longer members.
    void keep_only(const std::vector<std::string>& node_ids);

private:
    struct Peer {
        resilience::TaskId task = 0;
        bool dials_allowed = true;
    };

    resilience::Supervisor& supervisor_;
    uint64_t max_delay_ms_;
    std::map<std::string, Peer, std::less<>> peers_;
};

}  // namespace rampart::cluster
