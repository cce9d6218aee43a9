// Shared between sandbox.cpp (state, allocator, hook) and sandbox_libs.cpp
// (the allow-list). Not for use outside core/policy.
#pragma once

#include <cstddef>
#include <cstdint>

#include "policy/sandbox.h"

extern "C" {
#include <lua.h>
}

namespace rampart::policy {

// One per state. It is the allocator's userdata, so any coroutine of the
// state finds it through lua_getallocf.
struct Sandbox::Context {
    size_t used = 0;  // bytes held by the state (Allocator mode)
    size_t limit = 0;
    lua_Alloc inner = nullptr;  // Wrapped mode: LuaJIT's own allocator
    void* inner_ud = nullptr;

    bool running = false;  // inside Sandbox::call
    uint64_t budget = 0;   // instructions allowed for this run
    uint64_t spent = 0;    // instructions (and charges) used so far
    uint64_t deadline_ns = 0;
    uint32_t deadline_ms = 0;
    Failure tripped = Failure::None;

    // Where the run was last seen (hook samples, then the trip point).
    char where_src[LUA_IDSIZE] = {0};
    int where_line = 0;
};

Sandbox::Context* sandbox_context(lua_State* L);

// Charges `units` instructions to the running call; raises the budget
// error (which nothing in Lua can catch for good) when it is spent.
void sandbox_charge(lua_State* L, uint64_t units);

// Raises the sticky trip error. Never returns.
int sandbox_raise_trip(lua_State* L);

// Builds the policy environment in L (see sandbox.h) and makes it the
// globals of the state. Keeps debug.getinfo in the registry under
// kGetinfoKey for Sandbox::function_arity.
void sandbox_install_allowlist(lua_State* L);
extern const char kGetinfoKey;

}  // namespace rampart::policy
