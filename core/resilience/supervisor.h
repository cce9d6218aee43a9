// The supervisor (issue 7; seed: anna phase 2, M2): every long-lived task
// registers here with a name and a way to (re)start it, and reports back
// when it fails or does useful work. A failed task is restarted under the
// action recovery.lua gives it:
//
//   immediate        restart at once (on the next loop turn)
//   backoff          restart after recovery.backoff_ms(attempt, rand01)
//   circuit_breaker  stop restarting: the task's breaker opens; after the
//                    cool-down (recovery.cooldown_ms) one trial restart runs
//                    (half-open); the task's next success closes the breaker,
//                    its next failure opens it for another cool-down. An
//                    operator can reset it (POST /v1/agent/breakers/<task>/reset).
//
// Every timer goes through a Clock, so tests on a FakeClock see the exact
// restart sequence. Loop thread only.
//
// Usage (a task that owns its own timers or sockets):
//
//   TaskId id = supervisor.add({"dns_discovery", [this](std::string* error) { return start_resolving(error); }});
//   supervisor.start(id);
//   ... on a failure:  stop your work, then supervisor.failed(id, "resolver: timeout");
//   ... on a success:  supervisor.succeeded(id);
//   ... going away:    supervisor.remove(id);   (no start() after this)
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "resilience/circuit_breaker.h"
#include "resilience/clock.h"

namespace rampart::metrics {
class Metric;
class Registry;
}  // namespace rampart::metrics

namespace rampart::resilience {

// The decisions the supervisor asks for. In the daemon: recovery.lua through
// the policy host (recovery_hooks.h), read afresh at every decision so a
// SIGHUP changes them at once.
class RecoveryRules {
public:
    virtual ~RecoveryRules() = default;
    // "immediate", "backoff" or "circuit_breaker" (recovery.action).
    virtual std::string action(std::string_view task, int failures, double window_s) = 0;
    // Milliseconds before restart number `attempt` (recovery.backoff_ms).
    virtual double backoff_ms(int attempt, double rand01) = 0;
    // Milliseconds an open breaker waits before its trial (recovery.cooldown_ms).
    virtual double cooldown_ms(std::string_view task, int times_opened) = 0;
    // The window over which failures are counted for action() (seconds).
    virtual double window_s(std::string_view task) = 0;
};

struct TaskSpec {
    // Unique; shown in metrics and by `rampartctl breaker list`. Letters,
    // digits and "_-./" only, at most 64 characters.
    std::string name;
    // Start (or restart) the work. Return false with *error when it cannot
    // start: that counts as a failure at once.
    std::function<bool(std::string* error)> start;
    // Upper bound on any wait the policy gives this task (a backoff delay,
    // an open breaker's cool-down); 0: none. For work that must never stay
    // away long, whatever recovery.lua says (a Raft peer: one election
    // timeout).
    uint64_t max_delay_ms = 0;
};

using TaskId = uint64_t;

// What `rampartctl breaker list` shows for one task.
struct TaskStatus {
    std::string name;
    std::string state;    // "running", "restarting" (a restart is due), "stopped" (breaker open), "trial" (half-open)
    std::string breaker;  // "closed", "open", "half_open"
    std::string last_action;  // the last recovery action taken ("" before the first failure)
    std::string last_error;
    uint64_t restarts = 0;
    uint64_t failures = 0;            // all failures reported
    uint32_t failures_in_window = 0;  // those within the policy's window
    uint64_t times_opened = 0;
    uint64_t retry_in_ms = 0;  // until the pending restart or trial (0 when none)
};

class Supervisor {
public:
    // `registry` may be null (no metrics). `rand01` gives the jitter's
    // uniform numbers in [0, 1] (default: a seeded engine).
    Supervisor(Clock& clock, RecoveryRules& rules, metrics::Registry* registry,
               std::function<double()> rand01 = nullptr);
    ~Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // Register a task (not started). Returns 0 when the name is invalid or
    // taken, with *error set.
    TaskId add(TaskSpec spec, std::string* error = nullptr);
    // First start. A start that fails is handled like failed().
    void start(TaskId id);
    // The owner is going away: no further starts, pending restarts cancelled.
    void remove(TaskId id);

    // The task stopped with an error (it has already stopped its own work).
    // Ignored while a restart is already due or the breaker holds it.
    void failed(TaskId id, std::string_view reason);
    // The task did useful work: a half-open breaker closes, backoff starts
    // again from the first attempt.
    void succeeded(TaskId id);

    // Operator reset: the breaker closes, the failure count is forgotten and
    // a stopped task restarts now. False when no task has this name.
    bool reset(std::string_view name);

    // Shutdown: cancel every pending restart and ignore further reports.
    void stop_all();

    std::vector<TaskStatus> list() const;
    bool status(std::string_view name, TaskStatus* out) const;

    // Called when a task's breaker opens (true) or closes (false, after a
    // trial succeeded or a reset): the daemon's recovery hooks act on it.
    void set_breaker_listener(std::function<void(const std::string& task, bool open)> listener) {
        listener_ = std::move(listener);
    }

private:
    struct Task;
    Task* find(TaskId id) const;
    Task* find(std::string_view name) const;
    void run_start(TaskId id, const char* action);
    void on_timer(TaskId id);
    void schedule(Task& t, uint64_t delay_ms, const char* action);
    void open_breaker(Task& t, uint64_t now);
    void arm_trial(Task& t);
    void forget_old_failures(Task& t, uint64_t now, double window_s);
    TaskStatus status_of(const Task& t) const;
    void publish_breaker(const Task& t);

    Clock& clock_;
    RecoveryRules& rules_;
    std::function<double()> rand01_;
    std::map<TaskId, std::unique_ptr<Task>> tasks_;
    TaskId next_id_ = 1;
    bool stopped_ = false;
    std::function<void(const std::string&, bool)> listener_;
    metrics::Metric* actions_ = nullptr;
    metrics::Metric* restarts_ = nullptr;
    metrics::Metric* backoff_seconds_ = nullptr;
    metrics::Metric* breaker_open_ = nullptr;
};

// Task names: [A-Za-z0-9_./-]{1,64}.
bool valid_task_name(std::string_view name);

}  // namespace rampart::resilience
