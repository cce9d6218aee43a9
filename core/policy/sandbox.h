// A sandboxed LuaJIT state for policies: allow-listed libraries, read-only
// globals, an instruction budget and a deadline per run, and a memory bound.
//
// What a policy sees (everything else is absent; docs/policies.md has the
// table):
//   base: assert error ipairs next pairs pcall xpcall rawequal rawget
//         select setmetatable getmetatable tonumber tostring type unpack _G
//         _VERSION
//   string: byte char find(plain only) format len lower rep reverse sub upper
//   table: concat insert remove sort   math: all but random/randomseed
//   bit: all   coroutine: all
// Absent on purpose: io, os, debug, jit, ffi, package/require/module, load,
// loadstring, loadfile, dofile, string.dump, rawset, getfenv/setfenv,
// newproxy (its __gc runs with hooks disabled), collectgarbage, print,
// string.match/gmatch/gsub and pattern find (a pattern can run for seconds
// inside one C call, where no hook fires), table.maxn/move (O(n) in C).
//
// Bounds, all per state:
//   - memory: a custom allocator (lua_newstate works in Debian's GC64 build)
//     refuses growth beyond the limit, which raises "not enough memory".
//   - instructions: a count hook fires every kHookInterval VM instructions.
//     The JIT is off (luaJIT_setmode and no jit library): the hook never
//     fires inside compiled code. C library calls that do work in
//     proportion to their input are charged too: every kAllocBytesPerUnit
//     bytes allocated cost one instruction, and so does every
//     kAllocBytesPerUnit bytes a string function or table.concat returns
//     (an interned result allocates nothing but was still copied);
//     table.sort costs n*log2(n), table.insert/remove the elements they
//     shift.
//   - time: the hook also checks a monotonic deadline, a safety net for the
//     work that is not charged (comparing or concatenating long strings
//     with `<` or `..`).
// Once a run trips a bound the hook raises an error on every following
// instruction, so pcall, xpcall or a coroutine cannot swallow it. xpcall
// runs its handler after unwinding: LuaJIT would run it inside the hook,
// where hooks are off.
//
// Every use of the lua_State outside a run happens inside protect(), so an
// allocation failure can never become an unprotected error (which would end
// the process).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

struct lua_State;

namespace rampart::policy {

// The bounds; PolicyHost takes them as constructor parameters.
struct Limits {
    uint64_t load_instructions = 1'000'000;  // per step at load: the file, each captured entry, selftest
    uint64_t call_instructions = 100'000;    // per call of an entry point
    size_t memory_bytes = 8u << 20;          // per Lua state (one state holds a whole generation)
    uint32_t load_deadline_ms = 1000;        // safety net per step at load
    uint32_t call_deadline_ms = 100;         // safety net per call
};

inline constexpr int kHookInterval = 1000;        // instructions between two hook calls
inline constexpr size_t kAllocBytesPerUnit = 64;  // bytes allocated per charged instruction

enum class Failure { None, Error, Budget, Deadline, Memory };
const char* failure_name(Failure f);

struct RunResult {
    Failure failure = Failure::None;
    std::string message;  // "chunk:line: what", when failure != None
    bool ok() const { return failure == Failure::None; }
};

class Sandbox {
public:
    enum class MemoryBound {
        Allocator,  // lua_newstate with a counting malloc allocator (the normal case)
        Wrapped,    // luaL_newstate, its own allocator wrapped by lua_setallocf
    };

    // nullptr and *error when the state cannot be built. With Allocator, a
    // NULL from lua_newstate (non-GC64 builds) falls back to Wrapped.
    static std::unique_ptr<Sandbox> create(size_t memory_bytes, std::string* error,
                                           MemoryBound bound = MemoryBound::Allocator);
    ~Sandbox();
    Sandbox(const Sandbox&) = delete;
    Sandbox& operator=(const Sandbox&) = delete;

    lua_State* state() const { return L_; }
    MemoryBound memory_bound() const { return bound_; }
    size_t memory_used() const;
    size_t memory_limit() const;

    // Runs job(L) as a protected C call. A Lua error raised inside (an
    // allocation failure included) ends the job and is returned; C++
    // exceptions are caught too. The stack is left as it was.
    RunResult protect(const std::function<void(lua_State*)>& job);

    // Inside protect() only. Calls the function below the top `nargs`
    // values under the instruction budget and deadline. On success leaves
    // `nresults` values; on failure pops everything and reports the
    // failure, with the position where it happened.
    RunResult call(int nargs, int nresults, uint64_t instructions, uint32_t deadline_ms);

    // Inside protect() only. Compiles text (never bytecode) as a function
    // named `chunkname` ("@file.lua" style) and pushes it.
    RunResult load(std::string_view source, const std::string& chunkname);

    // Inside protect() only: reads nparams/isvararg of the Lua function at
    // `index` through the debug library that policies cannot see. False
    // when it is not a Lua function.
    bool function_arity(int index, int* nparams, bool* vararg);

    struct Context;

private:
    Sandbox() = default;
    std::unique_ptr<Context> ctx_;
    lua_State* L_ = nullptr;
    MemoryBound bound_ = MemoryBound::Allocator;
};

}  // namespace rampart::policy
