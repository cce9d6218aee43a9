// The join loop as the supervisor's task "join" (issue 7; docs/operations.md
// "Supervised tasks and circuit breakers").
//
// The loop retries on its own: a seed that is down, a DNS failure or a 5xx
// only ends a round, and the next one waits backoff.delay_ms(round). What
// the loop cannot get past is a refusal for good (an unknown, expired or
// used token, a certificate naming another node): that is the task's
// failure. Its restarts fail too while the refusal stands, so with the
// shipped recovery.lua the breaker opens at the 5th: `rampartctl breaker
// list` and rampart_task_breaker_open{task="join"} show a node that cannot
// join until an operator gives it a new token (`rampartctl cluster join`),
// which resets the task and starts a new loop. Once joined, the task is done
// and leaves the list.
#pragma once

#include <string>

#include "cluster/join_loop.h"
#include "resilience/supervisor.h"

namespace rampart::cluster {

class JoinTask {
public:
    // The supervisor outlives this object.
    explicit JoinTask(resilience::Supervisor& supervisor) : supervisor_(supervisor) {}
    ~JoinTask();
    JoinTask(const JoinTask&) = delete;
    JoinTask& operator=(const JoinTask&) = delete;

    // Run `loop` (a new one: the first, or one for a new token) as the task,
    // starting it now. A loop that replaces the watched one is watched at
    // once, before the loop runs again; the last one outlives this object.
    void watch(JoinLoop* loop);

private:
    bool start_loop(std::string* error);
    void finished(const JoinOutcome& outcome);

    resilience::Supervisor& supervisor_;
    resilience::TaskId task_ = 0;
    JoinLoop* loop_ = nullptr;
    std::string refusal_;  // why the current loop was refused ("" while it may run)
};

}  // namespace rampart::cluster
