// Moving PolicyValues in and out of a Lua state. Both functions may raise
// Lua errors (allocation), so they run inside Sandbox::protect only. Neither
// calls a metamethod: reads are raw, so converting a policy's result runs no
// policy code outside the budget.
#pragma once

#include <string>

#include "policy/value.h"

struct lua_State;

namespace rampart::policy {

inline constexpr int kMaxValueDepth = 32;         // nested tables
inline constexpr size_t kMaxValueItems = 100000;  // values in one conversion

void push_value(lua_State* L, const PolicyValue& v);

// Converts the value at `index`. Fails with *error on functions, userdata,
// threads, table keys that are not strings or numbers, more than
// kMaxValueDepth levels (a cycle ends here) or kMaxValueItems values.
bool to_value(lua_State* L, int index, PolicyValue* out, std::string* error);

}  // namespace rampart::policy
