// The policy host: loads policies/*.lua into a sandboxed LuaJIT state and
// swaps whole generations in, all or nothing.
//
//   PolicyHost host;                      // budgets: see Limits
//   LoadReport r = host.load("policies"); // at start and on every SIGHUP
//   if (!r.ok) for (auto& e : r.errors) log(e);  // the old generation stays
//   auto gen = host.current();            // hold it for the whole request
//   double ms = gen->call("backoff", "delay_ms", {attempt, rand01}, 100.0).as_number();
//
// load() builds a new Lua state, runs every file under the load budget,
// checks the entry points each shipped policy must have (specs.h), captures
// data (ratelimit's rules), runs the probes and every selftest(), and only
// then swaps the new generation in. On any failure the running generation
// stays and each error reads "policy reload halted: policies/x.lua:12: msg".
//
// Threads: the event loop thread only (no locking; see generation.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policy/generation.h"
#include "policy/sandbox.h"
#include "policy/specs.h"

namespace rampart::policy {

struct LoadReport {
    bool ok = false;
    std::vector<std::string> errors;    // "policy reload halted: policies/ratelimit.lua:12: msg"
    uint64_t generation = 0;            // the generation running after this load
    std::vector<std::string> policies;  // names loaded (on success)
};

class PolicyHost {
public:
    explicit PolicyHost(Limits limits = {}, std::vector<PolicySpec> specs = shipped_specs());

    // Builds and validates a new generation from dir; swaps it in on success.
    LoadReport load(const std::string& dir);
    // The same checks without swapping or counting (--check-config,
    // `rampartctl policy check`).
    LoadReport check(const std::string& dir) const;

    // Never null. Before the first successful load: generation 0, which has
    // no policies (every call returns its fallback and counts as missing).
    std::shared_ptr<const Generation> current() const { return current_; }
    uint64_t generation_number() const { return current_->number(); }

    uint64_t reloads_ok() const { return counters_->reloads_ok; }
    uint64_t reloads_failed() const { return counters_->reloads_failed; }
    // Per-policy call and error counters (all generations together).
    const PolicyCounters& counters(std::string_view policy) const;
    const Counters& all_counters() const { return *counters_; }
    // Called with (policy, message) on every fallback; for the daemon's log.
    void set_error_sink(std::function<void(std::string_view, std::string_view)> sink);

    const Limits& limits() const { return limits_; }

private:
    LoadReport build(const std::string& dir, std::unique_ptr<Generation>* out) const;

    Limits limits_;
    std::vector<PolicySpec> specs_;
    std::shared_ptr<Counters> counters_;
    std::shared_ptr<const Generation> current_;
    uint64_t next_number_ = 1;
};

}  // namespace rampart::policy
