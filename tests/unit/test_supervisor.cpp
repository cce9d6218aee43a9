// The supervisor (core/resilience/supervisor.*) on a FakeClock, deciding
// through the shipped policies/recovery.lua in a real policy host: the exact
// restart sequence (immediate, backoff 100/200/400 ms, then the breaker),
// the backoff's floor, ceiling and jitter bounds, every breaker transition
// (open → half-open trial → closed, or open again), an operator's reset, the
// metrics, and a policy edit + reload changing the next decision at once
// while a broken edit keeps the last good one. Also recovery.lua's decision
// hooks (recovery_hooks.h) with their defaults.
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cluster/peer_dial_tasks.h"
#include "metrics/registry.h"
#include "policy/policy_host.h"
#include "resilience/clock.h"
#include "resilience/recovery_hooks.h"
#include "resilience/supervisor.h"

// cmocka last: its fail() macro clashes with the C++ library.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart;
using namespace rampart::resilience;
namespace fs = std::filesystem;

namespace {

// A copy of the shipped policies that a test may edit.
struct PolicyDir {
    std::string path;
    PolicyDir() {
        char tmpl[] = "/tmp/rampart-supervisor-XXXXXX";
        path = mkdtemp(tmpl);
        for (const auto& e : fs::directory_iterator(std::string(RAMPART_SOURCE_ROOT) + "/policies")) {
            if (e.path().extension() == ".lua") fs::copy_file(e.path(), path + "/" + e.path().filename().string());
        }
    }
    ~PolicyDir() { fs::remove_all(path); }
    void edit(const std::string& from, const std::string& to) const {
        std::string file = path + "/recovery.lua";
        std::stringstream ss;
        ss << std::ifstream(file).rdbuf();
        std::string text = ss.str();
        size_t at = text.find(from);
        if (at == std::string::npos) fail_msg("recovery.lua has no \"%s\"", from.c_str());
        std::ofstream(file, std::ios::trunc) << text.replace(at, from.size(), to);
    }
};

// A task whose work the test fails and heals by hand.
struct Fixture {
    PolicyDir dir;
    policy::PolicyHost host;
    FakeClock clock{0};
    metrics::Registry registry;
    PolicyRecoveryRules rules{host};
    double rand01 = 0.5;  // no jitter unless a test says so
    Supervisor supervisor{clock, rules, &registry, [this] { return rand01; }};
    std::vector<uint64_t> starts;  // clock readings at each start
    bool start_fails = false;
    std::vector<std::pair<std::string, bool>> breaker_events;
    TaskId id = 0;
    std::string name;

    explicit Fixture(std::string task = "worker", uint64_t max_delay_ms = 0) : name(std::move(task)) {
        if (!host.load(dir.path).ok) fail_msg("the shipped policies do not load");
        supervisor.set_breaker_listener(
            [this](const std::string& task, bool open) { breaker_events.emplace_back(task, open); });
        id = supervisor.add({name,
                             [this](std::string* error) {
                                 starts.push_back(clock.now_ms());
                                 if (start_fails) *error = "cannot open the thing";
                                 return !start_fails;
                             },
                             max_delay_ms});
        assert_true(id != 0);
        supervisor.start(id);
    }
    TaskStatus status() const {
        TaskStatus s;
        assert_true(supervisor.status(name, &s));
        return s;
    }
    double metric(const char* name, const std::vector<std::string>& labels) const {
        return registry.find(name)->value(labels);
    }
    // Fail the running task; returns the delay until the restart it causes.
    uint64_t fail_and_measure() {
        supervisor.failed(id, "boom");
        return clock.next_due_in();
    }
};

void test_restart_sequence_then_breaker_then_trial_closes(void**) {
    Fixture f;
    assert_int_equal(f.starts.size(), 1);
    assert_string_equal(f.status().state.c_str(), "running");
    // recovery.lua: the 1st failure restarts at once, the 2nd-4th back off
    // 100, 200, 400 ms (no jitter at rand01 = 0.5), the 5th within 60 s opens
    // the breaker for the 30 s cool-down.
    assert_int_equal(f.fail_and_measure(), 0);
    f.clock.advance(0);
    assert_int_equal(f.starts.size(), 2);
    for (uint64_t expected : {100, 200, 400}) {
        assert_int_equal(f.fail_and_measure(), expected);
        assert_string_equal(f.status().state.c_str(), "restarting");
        assert_int_equal(f.status().retry_in_ms, expected);
        size_t before = f.starts.size();
        f.clock.advance(expected - 1);
        assert_int_equal(f.starts.size(), before);  // not a millisecond early
        f.clock.advance(1);
        assert_int_equal(f.starts.size(), before + 1);
    }
    assert_int_equal(f.starts.size(), 5);
    assert_int_equal(f.fail_and_measure(), 30'000);
    TaskStatus s = f.status();
    assert_string_equal(s.state.c_str(), "stopped");
    assert_string_equal(s.breaker.c_str(), "open");
    assert_string_equal(s.last_action.c_str(), "circuit_breaker");
    assert_int_equal(s.failures_in_window, 5);
    assert_int_equal(s.times_opened, 1);
    assert_int_equal(f.breaker_events.size(), 1);
    assert_true(f.breaker_events[0] == std::make_pair(std::string("worker"), true));
    assert_true(f.metric("rampart_task_breaker_open", {"worker"}) == 1);
    // Reports while open change nothing.
    f.supervisor.failed(f.id, "late report");
    f.clock.advance(29'999);
    assert_int_equal(f.starts.size(), 5);
    f.clock.advance(1);  // half-open: one trial
    assert_int_equal(f.starts.size(), 6);
    assert_string_equal(f.status().state.c_str(), "trial");
    assert_string_equal(f.status().breaker.c_str(), "half_open");
    f.supervisor.succeeded(f.id);
    s = f.status();
    assert_string_equal(s.state.c_str(), "running");
    assert_string_equal(s.breaker.c_str(), "closed");
    assert_int_equal(s.failures_in_window, 0);
    assert_int_equal(s.restarts, 5);
    assert_true(f.breaker_events.back() == std::make_pair(std::string("worker"), false));
    assert_true(f.metric("rampart_task_breaker_open", {"worker"}) == 0);
    // Metrics: one restart per action, each started fine.
    assert_true(f.metric("rampart_task_restart_total", {"worker"}) == 5);
    assert_true(f.metric("rampart_recovery_actions_total", {"immediate", "success"}) == 1);
    assert_true(f.metric("rampart_recovery_actions_total", {"backoff", "success"}) == 3);
    assert_true(f.metric("rampart_recovery_actions_total", {"circuit_breaker", "success"}) == 1);
    std::string text = f.registry.render();
    assert_non_null(strstr(text.c_str(), "rampart_backoff_duration_seconds_count 3"));
    assert_non_null(strstr(text.c_str(), "rampart_backoff_duration_seconds_sum 0.7"));
    // After the trial's success a failure starts from the beginning.
    assert_int_equal(f.fail_and_measure(), 0);
}

// A task's max_delay_ms bounds every wait the policy gives it: the backoff
// delays and the open breaker's cool-down (a Raft peer: one election).
void test_max_delay_caps_backoff_and_cooldown(void**) {
    Fixture f("capped", 150);
    assert_int_equal(f.fail_and_measure(), 0);
    f.clock.advance(0);
    for (uint64_t expected : {100, 150, 150}) {  // recovery.lua: 100, 200, 400
        assert_int_equal(f.fail_and_measure(), expected);
        f.clock.advance(expected);
    }
    assert_int_equal(f.fail_and_measure(), 150);  // the breaker's 30 s cool-down
    assert_string_equal(f.status().breaker.c_str(), "open");
    size_t before = f.starts.size();
    f.clock.advance(150);
    assert_int_equal(f.starts.size(), before + 1);
    assert_string_equal(f.status().state.c_str(), "trial");
    assert_int_equal(f.fail_and_measure(), 150);  // a failed trial: the same cap
    std::string text = f.registry.render();
    assert_non_null(strstr(text.c_str(), "rampart_backoff_duration_seconds_sum 0.4"));
}

// The engine's dials to one peer as the task raft_peer.<node id>: a failed
// dial stops dials until the supervisor restarts the task, a breaker that
// opens holds them for (at most) the cap, a connected dial closes it, and
// peers that left lose their tasks.
void test_peer_dial_tasks(void**) {
    Fixture f;  // for its supervisor, clock and policies
    cluster::PeerDialTasks dials(f.supervisor, 500);
    assert_true(dials.may_dial("node_2"));
    TaskStatus s;
    assert_true(f.supervisor.status("raft_peer.node_2", &s));
    assert_string_equal(s.state.c_str(), "running");
    dials.dialled("node_2", false, "network_error");
    assert_false(dials.may_dial("node_2"));
    assert_true(f.supervisor.status("raft_peer.node_2", &s));
    assert_string_equal(s.last_error.c_str(), "dial failed: network_error");
    f.clock.advance(0);  // immediate
    assert_true(dials.may_dial("node_2"));
    for (uint64_t wait : {100, 200, 400}) {
        dials.dialled("node_2", false, "network_error");
        assert_false(dials.may_dial("node_2"));
        f.clock.advance(wait - 1);
        assert_false(dials.may_dial("node_2"));
        f.clock.advance(1);
        assert_true(dials.may_dial("node_2"));
    }
    dials.dialled("node_2", false, "tls_error");  // the 5th: the breaker opens, for 500 ms, not 30 s
    assert_true(f.supervisor.status("raft_peer.node_2", &s));
    assert_string_equal(s.breaker.c_str(), "open");
    assert_int_equal(s.retry_in_ms, 500);
    f.clock.advance(499);
    assert_false(dials.may_dial("node_2"));
    f.clock.advance(1);
    assert_true(dials.may_dial("node_2"));  // the trial
    dials.dialled("node_2", true, "");
    assert_true(f.supervisor.status("raft_peer.node_2", &s));
    assert_string_equal(s.breaker.c_str(), "closed");
    assert_true(f.metric("rampart_task_breaker_open", {"raft_peer.node_2"}) == 0);
    // Another peer has its own task; one that left loses it.
    assert_true(dials.may_dial("node_3"));
    dials.keep_only({"node_3"});
    assert_false(f.supervisor.status("raft_peer.node_2", &s));
    assert_true(f.supervisor.status("raft_peer.node_3", &s));
    dials.dialled("node_2", false, "network_error");  // a late report for a gone peer: ignored
    // Task names take only what the supervisor accepts.
    assert_string_equal(cluster::peer_dial_task_name("edge.7/x y").c_str(), "raft_peer.edge_7_x_y");
    assert_int_equal(cluster::peer_dial_task_name(std::string(100, 'a')).size(), 64);
}

void test_failed_trial_opens_again(void**) {
    Fixture f;
    for (int i = 0; i < 5; ++i) {
        f.supervisor.failed(f.id, "boom");
        if (i < 4) f.clock.advance(f.clock.next_due_in());
    }
    assert_string_equal(f.status().breaker.c_str(), "open");
    f.clock.advance(30'000);
    assert_string_equal(f.status().state.c_str(), "trial");
    // The trial fails: open again for another full cool-down, no listener
    // event (it never closed).
    assert_int_equal(f.fail_and_measure(), 30'000);
    assert_string_equal(f.status().breaker.c_str(), "open");
    assert_int_equal(f.status().times_opened, 2);
    assert_int_equal(f.breaker_events.size(), 1);
    size_t before = f.starts.size();
    f.clock.advance(30'000);
    assert_int_equal(f.starts.size(), before + 1);
}

void test_a_start_that_fails_is_a_failure(void**) {
    Fixture f;
    f.start_fails = true;
    f.supervisor.failed(f.id, "boom");  // 1: immediate
    f.clock.advance(0);                 // start fails: 2 → backoff 100
    assert_int_equal(f.status().failures, 2);
    assert_string_equal(f.status().last_error.c_str(), "cannot open the thing");
    f.clock.advance(100);  // 3 → 200
    f.clock.advance(200);  // 4 → 400
    f.clock.advance(400);  // 5 → breaker
    assert_string_equal(f.status().breaker.c_str(), "open");
    assert_true(f.metric("rampart_recovery_actions_total", {"backoff", "failure"}) == 3);
    assert_true(f.metric("rampart_recovery_actions_total", {"immediate", "failure"}) == 1);
    // A failing trial start opens the breaker again.
    f.clock.advance(30'000);
    assert_string_equal(f.status().breaker.c_str(), "open");
    assert_int_equal(f.status().times_opened, 2);
    assert_true(f.metric("rampart_recovery_actions_total", {"circuit_breaker", "failure"}) == 1);
}

// Backoff bounds: floor 100 ms, ceiling 30 s, jitter ±25 % (recovery.lua),
// over many attempts of a task that never gets a breaker ("consensus").
void test_backoff_floor_ceiling_and_jitter(void**) {
    for (double r : {0.0, 0.5, 1.0}) {
        Fixture f("consensus");
        f.rand01 = r;
        f.supervisor.failed(f.id, "boom");
        f.clock.advance(0);  // the immediate restart
        for (int attempt = 1; attempt <= 12; ++attempt) {
            uint64_t d = f.fail_and_measure();
            double base = std::min(100.0 * (1u << (attempt - 1)), 30'000.0);
            double expected = std::clamp(base * (1 + 0.25 * (2 * r - 1)), 100.0, 30'000.0);
            if (d != static_cast<uint64_t>(expected + 0.5))
                fail_msg("rand01 %g attempt %d: %llu ms, expected %g", r, attempt, (unsigned long long)d, expected);
            assert_true(d >= 100 && d <= 30'000);
            f.clock.advance(d);
        }
        assert_string_equal(f.status().breaker.c_str(), "closed");
        // A success starts the backoff over.
        f.supervisor.succeeded(f.id);
        f.supervisor.failed(f.id, "boom");
        assert_int_equal(f.clock.next_due_in(),
                         static_cast<uint64_t>(std::max(100.0, 100 * (1 + 0.25 * (2 * r - 1))) + 0.5));
    }
}

void test_failures_outside_the_window_never_open(void**) {
    Fixture f;
    for (int i = 0; i < 10; ++i) {
        assert_int_equal(f.fail_and_measure(), 0);  // each one alone in its window
        f.clock.advance(60'001);
    }
    assert_string_equal(f.status().breaker.c_str(), "closed");
    assert_int_equal(f.starts.size(), 11);
}

void test_operator_reset(void**) {
    Fixture f;
    for (int i = 0; i < 5; ++i) {
        f.supervisor.failed(f.id, "boom");
        if (i < 4) f.clock.advance(f.clock.next_due_in());
    }
    assert_string_equal(f.status().breaker.c_str(), "open");
    size_t before = f.starts.size();
    assert_false(f.supervisor.reset("nope"));
    assert_true(f.supervisor.reset("worker"));
    assert_int_equal(f.starts.size(), before + 1);  // restarted at once
    TaskStatus s = f.status();
    assert_string_equal(s.state.c_str(), "running");
    assert_string_equal(s.breaker.c_str(), "closed");
    assert_int_equal(s.failures_in_window, 0);
    assert_int_equal(s.retry_in_ms, 0);
    assert_true(f.breaker_events.back() == std::make_pair(std::string("worker"), false));
    assert_int_equal(f.clock.pending_timers(), 0);  // the trial is cancelled
    // A reset does not count as a policy action, only as a restart.
    assert_true(f.metric("rampart_task_restart_total", {"worker"}) == 5);
    // Resetting a running task changes nothing.
    assert_true(f.supervisor.reset("worker"));
    assert_int_equal(f.starts.size(), before + 1);
}

void test_registration_remove_and_stop(void**) {
    Fixture f;
    std::string error;
    assert_int_equal(f.supervisor.add({"worker", [](std::string*) { return true; }}, &error), 0);
    assert_string_equal(error.c_str(), "task worker is already registered");
    assert_int_equal(f.supervisor.add({"bad name", [](std::string*) { return true; }}, &error), 0);
    assert_non_null(strstr(error.c_str(), "invalid task name"));
    assert_int_equal(f.supervisor.add({"x", nullptr}, &error), 0);
    assert_int_equal(f.supervisor.add({std::string(65, 'a'), [](std::string*) { return true; }}, &error), 0);
    TaskId other = f.supervisor.add({"plugin.other", [](std::string*) { return true; }});
    assert_true(other != 0);
    auto names = f.supervisor.list();
    assert_int_equal(names.size(), 2);
    assert_string_equal(names[0].name.c_str(), "plugin.other");
    assert_string_equal(names[0].state.c_str(), "not_started");
    // Removed while a restart is due: it never starts again.
    f.supervisor.failed(f.id, "boom");
    f.supervisor.remove(f.id);
    f.clock.advance(1000);
    assert_int_equal(f.starts.size(), 1);
    f.supervisor.failed(f.id, "after removal");  // ignored
    // Stopped (shutdown): failures no longer restart anything.
    int starts = 0;
    TaskId t = f.supervisor.add({"late", [&](std::string*) { return ++starts, true; }});
    f.supervisor.start(t);
    f.supervisor.stop_all();
    f.supervisor.failed(t, "boom");
    f.clock.advance(100'000);
    assert_int_equal(starts, 1);
}

// Edit + reload: the next decision follows the new generation at once; a
// broken edit is refused and the last good policy keeps deciding.
void test_policy_edit_changes_the_next_decision(void**) {
    Fixture f;
    f.supervisor.failed(f.id, "boom");
    f.clock.advance(0);
    assert_int_equal(f.fail_and_measure(), 100);
    f.clock.advance(100);
    f.dir.edit("local FLOOR_MS = 100", "local FLOOR_MS = 250");
    f.dir.edit("default = { immediate_max = 1, breaker_at = 5, window_s = 60, cooldown_s = 30 }",
               "default = { immediate_max = 1, breaker_at = 4, window_s = 60, cooldown_s = 2 }");
    assert_true(f.host.load(f.dir.path).ok);
    assert_int_equal(f.fail_and_measure(), 500);  // attempt 2 of a 250 ms floor
    f.clock.advance(500);
    assert_int_equal(f.fail_and_measure(), 2'000);  // 4 failures now open it, for 2 s
    assert_string_equal(f.status().breaker.c_str(), "open");
    f.clock.advance(2'000);
    f.supervisor.succeeded(f.id);
    // A broken edit: refused, generation unchanged, decisions unchanged.
    uint64_t generation = f.host.generation_number();
    f.dir.edit("function M.cooldown_ms(", "function M.cooldown_ms(((");
    assert_false(f.host.load(f.dir.path).ok);
    assert_int_equal(f.host.generation_number(), generation);
    assert_int_equal(f.fail_and_measure(), 0);
    f.clock.advance(0);
    assert_int_equal(f.fail_and_measure(), 250);
}

void test_decision_hooks_and_their_defaults(void**) {
    PolicyDir dir;
    policy::PolicyHost host;
    // Generation 0 (nothing loaded): the safe defaults.
    assert_int_equal(on_plugin_failure(*host.current(), "metrics", "metrics.push"), PluginFailure::Disable);
    assert_int_equal(on_quorum_loss(*host.current()), QuorumLoss::Refuse);
    assert_int_equal(on_disk_full(*host.current()), DiskFull::Transfer);
    assert_true(on_pin_mismatch(*host.current(), "node_2") == 60);
    assert_true(host.load(dir.path).ok);
    auto g = host.current();
    assert_int_equal(on_plugin_failure(*g, "flaky_worker", "flaky_worker.work"), PluginFailure::Disable);
    assert_int_equal(on_quorum_loss(*g), QuorumLoss::Refuse);
    assert_int_equal(on_disk_full(*g), DiskFull::Transfer);
    assert_true(on_pin_mismatch(*g, "node_2") == 60);
    PolicyRecoveryRules rules(host);
    assert_true(rules.window_s("anything") == 60);
    assert_true(rules.cooldown_ms("anything", 1) == 30'000);
    // Edited: one plugin fails closed, the other answers change.
    dir.edit("local FAIL_CLOSED_PLUGINS = {}", "local FAIL_CLOSED_PLUGINS = { flaky_worker = true }");
    dir.edit("return \"refuse\"", "return \"serve_stale\"");
    dir.edit("return \"transfer\"", "return \"stay\"");
    dir.edit("return 60\nend", "return 5\nend");
    dir.edit("consensus = { immediate_max = 1, breaker_at = false, window_s = 60",
             "consensus = { immediate_max = 1, breaker_at = false, window_s = 600");
    assert_true(host.load(dir.path).ok);
    g = host.current();
    assert_int_equal(on_plugin_failure(*g, "flaky_worker", "flaky_worker.work"), PluginFailure::FailClosed);
    assert_int_equal(on_plugin_failure(*g, "metrics", "metrics.push"), PluginFailure::Disable);
    assert_int_equal(on_quorum_loss(*g), QuorumLoss::ServeStale);
    assert_int_equal(on_disk_full(*g), DiskFull::Stay);
    assert_true(on_pin_mismatch(*g, "node_2") == 5);
    assert_true(rules.window_s("consensus") == 600);
    // An answer outside the contract at run time falls back and is counted.
    // (The load's probe rejects a constant bad answer, so make it depend on
    // an argument the probe does not pass.)
    dir.edit("if FAIL_CLOSED_PLUGINS[plugin] then",
             "if plugin == \"odd\" then return \"explode\" end\n  if FAIL_CLOSED_PLUGINS[plugin] then");
    assert_true(host.load(dir.path).ok);
    uint64_t errors = host.counters("recovery").errors;
    assert_int_equal(on_plugin_failure(*host.current(), "odd", "odd.work"), PluginFailure::Disable);
    assert_int_equal(host.counters("recovery").errors, errors + 1);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_sequence_then_breaker_then_trial_closes),
        cmocka_unit_test(test_max_delay_caps_backoff_and_cooldown),
        cmocka_unit_test(test_peer_dial_tasks),
        cmocka_unit_test(test_failed_trial_opens_again),
        cmocka_unit_test(test_a_start_that_fails_is_a_failure),
        cmocka_unit_test(test_backoff_floor_ceiling_and_jitter),
        cmocka_unit_test(test_failures_outside_the_window_never_open),
        cmocka_unit_test(test_operator_reset),
        cmocka_unit_test(test_registration_remove_and_stop),
        cmocka_unit_test(test_policy_edit_changes_the_next_decision),
        cmocka_unit_test(test_decision_hooks_and_their_defaults),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
