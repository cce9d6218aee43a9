#include "policy/generation.h"

#include <cmath>

#include "policy/lua_value.h"

extern "C" {
#include <lua.h>
}

namespace rampart::policy {

PolicyCounters& Counters::of(std::string_view policy) {
    auto it = policies.find(policy);
    if (it == policies.end()) it = policies.emplace(std::string(policy), PolicyCounters{}).first;
    return it->second;
}

Generation::~Generation() = default;

std::vector<std::string> Generation::policies() const {
    std::vector<std::string> out;
    for (const auto& [name, p] : policies_) out.push_back(name);
    return out;
}

bool Generation::has(std::string_view policy) const { return policies_.find(policy) != policies_.end(); }

bool Generation::has_entry(std::string_view policy, std::string_view fn) const {
    auto p = policies_.find(policy);
    return p != policies_.end() && p->second.functions.find(fn) != p->second.functions.end();
}

// Lua names the chunk by its file name ("@retry.lua"): show the path the
// operator edits instead.
std::string Generation::locate(const Policy& p, const std::string& message) const {
    std::string base = p.path.substr(p.path.rfind('/') + 1);
    if (message.compare(0, base.size() + 1, base + ":") == 0) return p.path + message.substr(base.size());
    return p.path + ": " + message;
}

void Generation::count_failure(std::string_view policy, const CallResult& r) const {
    if (!counters_) return;
    PolicyCounters& c = counters_->of(policy);
    ++c.errors;
    c.last_error = r.error;
    if (counters_->on_error) counters_->on_error(policy, r.error);
}

CallResult Generation::try_call(std::string_view policy, std::string_view fn, std::span<const PolicyValue> args) const {
    CallResult r;
    PolicyCounters* counters = counters_ ? &counters_->of(policy) : nullptr;
    if (counters) ++counters->calls;
    auto p = policies_.find(policy);
    auto f = p != policies_.end() ? p->second.functions.find(fn) : decltype(p->second.functions.end()){};
    if (p == policies_.end() || f == p->second.functions.end() || !sandbox_) {
        r.failure = Failure::Error;
        r.error = p == policies_.end() ? "policy '" + std::string(policy) + "' is not loaded"
                                       : p->second.path + ": no entry point '" + std::string(fn) + "'";
        if (counters) ++counters->missing;
        count_failure(policy, r);
        return r;
    }
    if (in_call_) {
        r.failure = Failure::Error;
        r.error = p->second.path + ": re-entrant policy call refused";
        if (counters) ++counters->runtime;
        count_failure(policy, r);
        return r;
    }
    in_call_ = true;
    bool bad_result = false;
    RunResult run = sandbox_->protect([&](lua_State* L) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, f->second);
        for (const PolicyValue& a : args) push_value(L, a);
        RunResult inner =
            sandbox_->call(static_cast<int>(args.size()), 1, limits_.call_instructions, limits_.call_deadline_ms);
        if (!inner.ok()) {
            r.failure = inner.failure;
            r.error = inner.message;
            return;
        }
        std::string err;
        if (!to_value(L, -1, &r.value, &err)) {
            r.failure = Failure::Error;
            r.error = std::string(fn) + " returned a value the host cannot use: " + err;
            bad_result = true;
        }
        lua_pop(L, 1);
    });
    in_call_ = false;
    if (!run.ok() && r.ok()) {  // pushing the arguments failed (memory)
        r.failure = run.failure;
        r.error = run.message;
    }
    if (r.ok()) return r;
    r.value = PolicyValue();
    r.error = locate(p->second, r.error);
    if (counters) {
        switch (r.failure) {
            case Failure::Budget: ++counters->budget; break;
            case Failure::Deadline: ++counters->deadline; break;
            case Failure::Memory: ++counters->memory; break;
            default: ++(bad_result ? counters->bad_result : counters->runtime); break;
        }
    }
    count_failure(policy, r);
    return r;
}

PolicyValue Generation::call(std::string_view policy, std::string_view fn, std::span<const PolicyValue> args,
                             PolicyValue fallback) const {
    CallResult r = try_call(policy, fn, args);
    if (!r.ok()) return fallback;
    bool wrong_kind = !fallback.is_nil() && r.value.kind() != fallback.kind();
    bool not_finite = r.value.is_number() && fallback.is_number() && !std::isfinite(r.value.as_number());
    if (!wrong_kind && !not_finite) return std::move(r.value);
    auto p = policies_.find(policy);
    r.failure = Failure::Error;
    r.error =
        p->second.path + ": " + std::string(fn) + " returned " +
        (not_finite ? "a number that is not finite" : std::string("a ") + PolicyValue::kind_name(r.value.kind())) +
        ", the host needs a " + PolicyValue::kind_name(fallback.kind());
    if (counters_) ++counters_->of(policy).bad_result;
    count_failure(policy, r);
    return fallback;
}

PolicyValue Generation::call(std::string_view policy, std::string_view fn, std::initializer_list<PolicyValue> args,
                             PolicyValue fallback) const {
    return call(policy, fn, std::span<const PolicyValue>(args.begin(), args.size()), std::move(fallback));
}

const PolicyValue& Generation::data(std::string_view policy, std::string_view key) const {
    static const PolicyValue nil;
    auto p = policies_.find(policy);
    if (p == policies_.end()) return nil;
    auto d = p->second.data.find(key);
    return d == p->second.data.end() ? nil : d->second;
}

std::string Generation::rules_json(std::string_view policy, std::string_view key) const {
    return data(policy, key).to_json();
}

void Generation::reject(std::string_view policy, const std::string& why) const {
    auto p = policies_.find(policy);
    CallResult r;
    r.failure = Failure::Error;
    r.error = (p != policies_.end() ? p->second.path : std::string(policy)) + ": " + why;
    if (counters_) ++counters_->of(policy).bad_result;
    count_failure(policy, r);
}

size_t Generation::memory_used() const { return sandbox_ ? sandbox_->memory_used() : 0; }

}  // namespace rampart::policy
