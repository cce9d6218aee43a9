#include "resilience/supervisor.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "log.h"
#include "metrics/registry.h"

namespace rampart::resilience {

namespace {

constexpr size_t kMaxTaskName = 64;
// Failure times kept per task: enough for any sensible breaker threshold,
// bounded so that a task failing in a tight loop cannot grow memory.
constexpr size_t kMaxFailureTimes = 1000;

uint64_t to_delay_ms(double ms) {
    if (!std::isfinite(ms) || ms <= 0) return 0;
    return static_cast<uint64_t>(std::llround(std::min(ms, 86'400'000.0)));
}

uint64_t bounded_delay_ms(double ms, uint64_t max_delay_ms) {
    uint64_t delay = to_delay_ms(ms);
    return max_delay_ms != 0 ? std::min(delay, max_delay_ms) : delay;
}

}  // namespace

bool valid_task_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxTaskName) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
               c == '.' || c == '/';
    });
}

struct Supervisor::Task {
    enum class Phase { Idle, Running, Restarting, Stopped, Trial };

    TaskId id = 0;
    TaskSpec spec;
    Phase phase = Phase::Idle;
    CircuitBreaker breaker;
    std::deque<uint64_t> failure_times;  // within the policy's window, oldest first
    int backoff_attempt = 0;             // backoff restarts since the last success
    uint64_t restarts = 0;
    uint64_t failures = 0;
    std::string last_action;
    std::string last_error;
    const char* pending_action = "";  // what the armed timer will do
    uint64_t due_at_ms = 0;
    std::unique_ptr<Timer> timer;
};

Supervisor::Supervisor(Clock& clock, RecoveryRules& rules, metrics::Registry* registry, std::function<double()> rand01)
    : clock_(clock), rules_(rules), rand01_(std::move(rand01)) {
    if (!rand01_) {
        auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
        rand01_ = [engine] { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
    }
    if (registry == nullptr) return;
    actions_ = registry->counter("rampart_recovery_actions_total",
                                 "Restarts the supervisor carried out, by recovery action and whether the task started",
                                 {"action", "result"});
    restarts_ = registry->counter("rampart_task_restart_total", "Restarts of a supervised task", {"task"});
    backoff_seconds_ = registry->histogram("rampart_backoff_duration_seconds",
                                           "Backoff delays chosen before restarting a supervised task", {},
                                           {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
    breaker_open_ = registry->gauge("rampart_task_breaker_open",
                                    "1 while a supervised task's circuit breaker is open or half-open", {"task"});
}

Supervisor::~Supervisor() = default;

TaskId Supervisor::add(TaskSpec spec, std::string* error) {
    auto fail = [error](std::string why) {
        if (error) *error = std::move(why);
        return TaskId{0};
    };
    if (!valid_task_name(spec.name)) return fail("invalid task name \"" + spec.name + "\": use [A-Za-z0-9_./-]{1,64}");
    if (!spec.start) return fail("task " + spec.name + " has no start function");
    if (find(spec.name) != nullptr) return fail("task " + spec.name + " is already registered");
    auto t = std::make_unique<Task>();
    TaskId id = next_id_++;
    t->id = id;
    t->spec = std::move(spec);
    t->timer = clock_.timer([this, id] { on_timer(id); });
    tasks_[id] = std::move(t);
    publish_breaker(*tasks_[id]);
    return id;
}

void Supervisor::start(TaskId id) {
    Task* t = find(id);
    if (t == nullptr || stopped_ || t->phase != Task::Phase::Idle) return;
    run_start(id, nullptr);
}

void Supervisor::remove(TaskId id) { tasks_.erase(id); }

void Supervisor::failed(TaskId id, std::string_view reason) {
    Task* t = find(id);
    if (t == nullptr || stopped_) return;
    ++t->failures;
    t->last_error = std::string(reason);
    // A report from work that already stopped: a restart or the breaker
    // already has it in hand.
    if (t->phase == Task::Phase::Restarting || t->phase == Task::Phase::Stopped) return;
    const uint64_t now = clock_.now_ms();
    if (t->phase == Task::Phase::Trial) {
        // Open again, for another cool-down. Not logged: the opening was, and
        // a peer that stays down would otherwise log every trial for hours.
        log::debug("supervised task failed its trial", {{"task", t->spec.name}, {"error", reason}});
        t->breaker.record_failure(now);
        arm_trial(*t);
        return;
    }
    log::warn("supervised task failed", {{"task", t->spec.name}, {"error", reason}});
    const double window_s = rules_.window_s(t->spec.name);
    t->failure_times.push_back(now);
    forget_old_failures(*t, now, window_s);
    const int count = static_cast<int>(t->failure_times.size());
    const std::string action = rules_.action(t->spec.name, count, window_s);
    t->last_action = action;
    if (action == "immediate") {
        schedule(*t, 0, "immediate");
    } else if (action == "circuit_breaker") {
        open_breaker(*t, now);
    } else {
        uint64_t delay = bounded_delay_ms(rules_.backoff_ms(++t->backoff_attempt, rand01_()), t->spec.max_delay_ms);
        if (backoff_seconds_) backoff_seconds_->observe({}, static_cast<double>(delay) / 1000.0);
        schedule(*t, delay, "backoff");
    }
}

void Supervisor::succeeded(TaskId id) {
    Task* t = find(id);
    if (t == nullptr || stopped_) return;
    t->backoff_attempt = 0;
    if (t->phase != Task::Phase::Trial) return;
    t->breaker.record_success(clock_.now_ms());
    t->phase = Task::Phase::Running;
    t->failure_times.clear();
    log::info("supervised task recovered: circuit breaker closed", {{"task", t->spec.name}});
    publish_breaker(*t);
    if (listener_) listener_(t->spec.name, false);
}

bool Supervisor::reset(std::string_view name) {
    Task* t = find(name);
    if (t == nullptr) return false;
    const bool was_open = t->phase == Task::Phase::Stopped || t->phase == Task::Phase::Trial;
    const bool restart = t->phase == Task::Phase::Stopped || t->phase == Task::Phase::Restarting;
    t->timer->stop();
    t->breaker.reset();
    t->failure_times.clear();
    t->backoff_attempt = 0;
    if (t->phase == Task::Phase::Trial) t->phase = Task::Phase::Running;
    if (restart) t->phase = Task::Phase::Restarting;  // an ordinary start, not a trial
    log::info("supervised task reset by an operator", {{"task", t->spec.name}, {"restart", restart}});
    publish_breaker(*t);
    TaskId id = t->id;
    std::string task_name = t->spec.name;
    if (was_open && listener_) listener_(task_name, false);
    if (restart && !stopped_ && find(id) != nullptr) run_start(id, "reset");
    return true;
}

void Supervisor::stop_all() {
    stopped_ = true;
    for (auto& [id, t] : tasks_) t->timer->stop();
}

void Supervisor::run_start(TaskId id, const char* action) {
    Task* t = find(id);
    if (t == nullptr) return;
    const bool trial = t->phase == Task::Phase::Stopped;
    t->phase = trial ? Task::Phase::Trial : Task::Phase::Running;
    t->due_at_ms = 0;
    if (action != nullptr) {
        ++t->restarts;
        if (restarts_) restarts_->add({t->spec.name}, 1);
    }
    std::string error;
    bool ok = false;
    try {
        ok = t->spec.start(&error);
    } catch (const std::exception& e) {
        error = std::string("start threw: ") + e.what();
    } catch (...) {
        error = "start threw an exception";
    }
    // A recovery action that is not a policy decision (an operator reset)
    // is counted as a restart only.
    const bool policy_action = action != nullptr && std::string_view(action) != "reset";
    if (policy_action && actions_) actions_->add({action, ok ? "success" : "failure"}, 1);
    if (!ok) failed(id, error.empty() ? "the task could not start" : error);
}

void Supervisor::schedule(Task& t, uint64_t delay_ms, const char* action) {
    t.phase = Task::Phase::Restarting;
    t.pending_action = action;
    t.due_at_ms = clock_.now_ms() + delay_ms;
    t.timer->start(delay_ms);
}

void Supervisor::open_breaker(Task& t, uint64_t now) {
    t.breaker.trip(now);
    log::error("supervised task keeps failing: circuit breaker open",
               {{"task", t.spec.name}, {"failures_in_window", static_cast<long long>(t.failure_times.size())}});
    arm_trial(t);
    if (listener_) listener_(t.spec.name, true);
}

// Open (again): the trial restart waits for the policy's cool-down.
void Supervisor::arm_trial(Task& t) {
    BreakerSettings settings = t.breaker.settings();
    settings.cooldown_ms = bounded_delay_ms(
        rules_.cooldown_ms(t.spec.name, static_cast<int>(std::min<uint64_t>(t.breaker.times_opened(), 1000))),
        t.spec.max_delay_ms);
    t.breaker.configure(settings);
    t.phase = Task::Phase::Stopped;
    t.last_action = "circuit_breaker";
    t.pending_action = "circuit_breaker";
    t.due_at_ms = t.breaker.retry_at_ms();
    const uint64_t now = clock_.now_ms();
    t.timer->start(t.due_at_ms > now ? t.due_at_ms - now : 0);
    publish_breaker(t);
}

void Supervisor::on_timer(TaskId id) {
    Task* t = find(id);
    if (t == nullptr || stopped_) return;
    if (t->phase == Task::Phase::Restarting) {
        run_start(id, t->pending_action);
    } else if (t->phase == Task::Phase::Stopped) {
        const uint64_t now = clock_.now_ms();
        if (!t->breaker.allow(now)) {
            // Not yet (a clock that fired early): look again when it may.
            t->timer->start(t->due_at_ms > now ? t->due_at_ms - now : 1);
            return;
        }
        log::info("circuit breaker half-open: one trial restart", {{"task", t->spec.name}});
        publish_breaker(*t);
        run_start(id, "circuit_breaker");
    }
}

void Supervisor::forget_old_failures(Task& t, uint64_t now, double window_s) {
    const uint64_t window_ms = to_delay_ms(window_s * 1000.0);
    while (!t.failure_times.empty() && now >= t.failure_times.front() + window_ms) t.failure_times.pop_front();
    while (t.failure_times.size() > kMaxFailureTimes) t.failure_times.pop_front();
}

void Supervisor::publish_breaker(const Task& t) {
    if (breaker_open_)
        breaker_open_->set({t.spec.name}, t.breaker.state(clock_.now_ms()) == BreakerState::Closed ? 0 : 1);
}

TaskStatus Supervisor::status_of(const Task& t) const {
    static const char* const kPhase[] = {"not_started", "running", "restarting", "stopped", "trial"};
    const uint64_t now = clock_.now_ms();
    TaskStatus s;
    s.name = t.spec.name;
    s.state = kPhase[static_cast<int>(t.phase)];
    // A trial in flight reads half-open; an open breaker past its cool-down
    // whose trial has not run yet too.
    s.breaker = t.phase == Task::Phase::Trial ? "half_open" : breaker_state_name(t.breaker.state(now));
    s.last_action = t.last_action;
    s.last_error = t.last_error;
    s.restarts = t.restarts;
    s.failures = t.failures;
    const uint64_t window_ms = to_delay_ms(rules_.window_s(t.spec.name) * 1000.0);
    s.failures_in_window = static_cast<uint32_t>(std::count_if(t.failure_times.begin(), t.failure_times.end(),
                                                               [&](uint64_t at) { return now < at + window_ms; }));
    s.times_opened = t.breaker.times_opened();
    s.retry_in_ms = t.timer->pending() && t.due_at_ms > now ? t.due_at_ms - now : 0;
    return s;
}

std::vector<TaskStatus> Supervisor::list() const {
    std::vector<TaskStatus> out;
    for (const auto& [id, t] : tasks_) out.push_back(status_of(*t));
    std::sort(out.begin(), out.end(), [](const TaskStatus& a, const TaskStatus& b) { return a.name < b.name; });
    return out;
}

bool Supervisor::status(std::string_view name, TaskStatus* out) const {
    const Task* t = find(name);
    if (t == nullptr) return false;
    *out = status_of(*t);
    return true;
}

Supervisor::Task* Supervisor::find(TaskId id) const {
    auto it = tasks_.find(id);
    return it == tasks_.end() ? nullptr : it->second.get();
}

Supervisor::Task* Supervisor::find(std::string_view name) const {
    for (const auto& [id, t] : tasks_) {
        if (t->spec.name == name) return t.get();
    }
    return nullptr;
}

}  // namespace rampart::resilience
