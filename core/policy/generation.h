// A generation: one Lua state holding every policy of one load, plus what
// was captured from it at load time. Immutable from the outside once built;
// PolicyHost swaps whole generations.
//
// Lifetime: hold the std::shared_ptr<const Generation> for as long as a
// request uses it. A reload never touches a generation in use; the state is
// closed when the last holder lets go.
//
// Threads: calls run Lua code and are not thread-safe. Call from the event
// loop thread (or otherwise one thread at a time per generation). data()
// and rules_json() only read C++ data captured at load.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/sandbox.h"
#include "policy/value.h"

namespace rampart::policy {

// Per-policy counters; they outlive generations (monotonic for metrics).
struct PolicyCounters {
    uint64_t calls = 0;
    uint64_t errors = 0;      // every call that returned its fallback; the kinds below add up to it
    uint64_t runtime = 0;     // the policy raised an error
    uint64_t budget = 0;      // instruction budget spent
    uint64_t deadline = 0;    // time limit reached
    uint64_t memory = 0;      // memory bound reached
    uint64_t bad_result = 0;  // returned a value of the wrong type, or one that cannot be converted
    uint64_t missing = 0;     // policy or entry point not loaded
    std::string last_error;   // "policies/retry.lua:12: ..."
};

struct Counters {
    uint64_t reloads_ok = 0;
    uint64_t reloads_failed = 0;
    std::map<std::string, PolicyCounters, std::less<>> policies;
    // Called on every fallback (policy, message). The daemon logs here
    // (rate-limited); empty by default.
    std::function<void(std::string_view, std::string_view)> on_error;

    PolicyCounters& of(std::string_view policy);
};

struct CallResult {
    PolicyValue value;
    Failure failure = Failure::None;
    std::string error;  // "policies/retry.lua:12: ..." when failure != None
    bool ok() const { return failure == Failure::None; }
};

class Generation {
public:
    ~Generation();

    uint64_t number() const { return number_; }  // 0: nothing loaded yet
    const std::string& dir() const { return dir_; }
    std::vector<std::string> policies() const;
    bool has(std::string_view policy) const;
    bool has_entry(std::string_view policy, std::string_view fn) const;

    // Calls policy.fn(args...) under the call budget and returns its first
    // result. Returns `fallback`, and counts an error, when the policy or
    // entry point is missing, the call fails or trips a bound, or the
    // result's kind differs from a non-nil fallback's (a number must also be
    // finite). Never throws.
    PolicyValue call(std::string_view policy, std::string_view fn, std::initializer_list<PolicyValue> args,
                     PolicyValue fallback) const;
    PolicyValue call(std::string_view policy, std::string_view fn, std::span<const PolicyValue> args,
                     PolicyValue fallback) const;
    // The same without a fallback: the caller sees what went wrong. Counts.
    CallResult try_call(std::string_view policy, std::string_view fn, std::span<const PolicyValue> args) const;

    // A value captured at load: a non-function field of the policy's table,
    // or the result of a captured entry point (ratelimit's "rules"). Nil
    // when absent. Valid while this generation is held.
    const PolicyValue& data(std::string_view policy, std::string_view key) const;
    // data() as JSON text ("null" when absent), for plugins across the C ABI.
    std::string rules_json(std::string_view policy, std::string_view key = "rules") const;

    // Counts a result the caller could not use (outside the policy's
    // contract, e.g. an unknown retry class) as a bad_result error.
    void reject(std::string_view policy, const std::string& why) const;

    size_t memory_used() const;
    const Limits& limits() const { return limits_; }

private:
    friend class GenerationBuilder;
    Generation() = default;

    struct Policy {
        std::string path;                                   // "policies/retry.lua", for messages
        std::map<std::string, int, std::less<>> functions;  // registry refs
        std::map<std::string, PolicyValue, std::less<>> data;
    };

    void count_failure(std::string_view policy, const CallResult& r) const;
    std::string locate(const Policy& p, const std::string& message) const;

    uint64_t number_ = 0;
    std::string dir_;
    Limits limits_;
    std::unique_ptr<Sandbox> sandbox_;
    std::map<std::string, Policy, std::less<>> policies_;
    std::shared_ptr<Counters> counters_;
    mutable bool in_call_ = false;
};

}  // namespace rampart::policy
