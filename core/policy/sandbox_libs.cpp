// The policy environment: allow-listed functions, read-only library tables,
// read-only globals, a locked string metatable, and the bounded or charged
// replacements for C functions whose cost grows with their input.
#include <string.h>

#include <cstdint>
#include <cstring>

#include "policy/sandbox_internal.h"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
}

namespace rampart::policy {

const char kGetinfoKey = 0;

namespace {

const char* const kBase[] = {
    "assert", "error",        "ipairs",       "next",     "pairs",    "pcall", "xpcall", "rawequal", "rawget",
    "select", "setmetatable", "getmetatable", "tonumber", "tostring", "type",  "unpack", "_VERSION", nullptr,
};
const char* const kString[] = {"byte", "char",    "find", "format", "len",  "lower",
                               "rep",  "reverse", "sub",  "upper",  nullptr};
const char* const kTable[] = {"concat", "insert", "remove", "sort", nullptr};
const char* const kMath[] = {"abs",   "acos", "asin",  "atan", "atan2", "ceil", "cos",   "cosh", "deg",  "exp",
                             "floor", "fmod", "frexp", "huge", "ldexp", "log",  "log10", "max",  "min",  "modf",
                             "pi",    "pow",  "rad",   "sin",  "sinh",  "sqrt", "tan",   "tanh", nullptr};
const char* const kBit[] = {"arshift", "band", "bnot",   "bor",   "bswap", "bxor", "lshift",
                            "rol",     "ror",  "rshift", "tobit", "tohex", nullptr};
const char* const kCoroutine[] = {"create", "isyieldable", "resume", "running", "status", "wrap", "yield", nullptr};

uint64_t log2_ceil(uint64_t n) {
    uint64_t bits = 0;
    while ((uint64_t{1} << bits) < n && bits < 63) ++bits;
    return bits;
}

bool has_magic(const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        if (p[i] != '\0' && std::strchr("^$*+?.([%-", p[i]) != nullptr) return true;
    }
    return false;
}

// string.find without patterns. Lua's plain find is O(n*m) and is measured
// at 34 s for a 2 MB haystack; glibc's memmem (two-way) is linear.
int bounded_find(lua_State* L) {
    size_t ls = 0, lp = 0;
    const char* s = luaL_checklstring(L, 1, &ls);
    const char* p = luaL_checklstring(L, 2, &lp);
    lua_Integer init = luaL_optinteger(L, 3, 1);
    bool plain = lua_toboolean(L, 4) || !has_magic(p, lp);
    if (!plain) {
        return luaL_error(L, "string.find: patterns are not available in policies (pass plain = true)");
    }
    if (init < 0) init = static_cast<lua_Integer>(ls) + init + 1;
    if (init < 1) init = 1;
    if (static_cast<size_t>(init) > ls + 1) {
        lua_pushnil(L);
        return 1;
    }
    size_t from = static_cast<size_t>(init) - 1;
    const void* hit = lp == 0 ? s + from : memmem(s + from, ls - from, p, lp);
    if (!hit) {
        lua_pushnil(L);
        return 1;
    }
    lua_Integer start = static_cast<const char*>(hit) - s + 1;
    lua_pushinteger(L, start);
    lua_pushinteger(L, start + static_cast<lua_Integer>(lp) - 1);
    return 2;
}

// Calls the original function (upvalue 1) with this call's arguments.
int call_original(lua_State* L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

// String producers are charged by the bytes they return: an interned
// result (string.rep of the same text again) allocates nothing, yet its
// copy and comparison still cost time.
int charged_output(lua_State* L) {
    int n = call_original(L);
    uint64_t bytes = 0;
    for (int i = 1; i <= n; ++i) {
        if (lua_type(L, i) == LUA_TSTRING) bytes += lua_objlen(L, i);
    }
    sandbox_charge(L, bytes / kAllocBytesPerUnit);
    return n;
}

int charged_sort(lua_State* L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    uint64_t n = lua_objlen(L, 1);
    sandbox_charge(L, n * log2_ceil(n + 1));
    return call_original(L);
}

// table.insert(t, pos, v) and table.remove(t, pos) shift n - pos elements.
int charged_shift(lua_State* L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = static_cast<lua_Integer>(lua_objlen(L, 1));
    bool remove = lua_toboolean(L, lua_upvalueindex(2));
    bool has_pos = remove ? lua_gettop(L) >= 2 : lua_gettop(L) >= 3;
    if (has_pos) {
        lua_Integer pos = luaL_checkinteger(L, 2);
        if (pos >= 1 && pos <= n + 1) sandbox_charge(L, static_cast<uint64_t>(n - pos + 1));
    }
    return call_original(L);
}

// xpcall whose handler runs after the stack has unwound. LuaJIT runs an
// error handler at the point of the throw; when the throw is the budget
// hook's, that is inside the hook, where hooks are off, so a handler that
// never returns would run unbounded (measured: `xpcall(spin, spin)` in a
// loop hangs). Here the handler is an ordinary call, under the hook.
int safe_xpcall(lua_State* L) {
    int n = lua_gettop(L);
    luaL_checkany(L, 2);
    lua_pushvalue(L, 1);
    for (int i = 3; i <= n; ++i) lua_pushvalue(L, i);
    if (lua_pcall(L, n - 2, LUA_MULTRET, 0) == 0) {
        lua_pushboolean(L, 1);
        lua_insert(L, n + 1);
        return lua_gettop(L) - n;
    }
    lua_pushvalue(L, 2);
    lua_insert(L, -2);
    lua_pcall(L, 1, 1, 0);  // an error in the handler becomes the result
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
}

int readonly_newindex(lua_State* L) {
    const char* name = lua_tostring(L, lua_upvalueindex(1));
    const char* key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : luaL_typename(L, 2);
    if (std::strcmp(name, "_G") == 0) {
        return luaL_error(L, "attempt to set global '%s': policy globals are read-only (use local)", key);
    }
    return luaL_error(L, "attempt to modify read-only table '%s' (key '%s')", name, key);
}

// Pops a table and pushes an empty proxy that reads through to it and
// refuses writes. rawset is not in the allow-list, so the proxy cannot be
// filled behind __newindex's back; __metatable locks the metatable.
void push_readonly(lua_State* L, const char* name) {
    int target = lua_gettop(L);
    lua_newtable(L);           // proxy
    lua_createtable(L, 0, 3);  // its metatable
    lua_pushvalue(L, target);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, name);
    lua_pushcclosure(L, readonly_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_remove(L, target);
}

// Pushes a new table with the listed fields of the table at `from`.
void push_filtered(lua_State* L, int from, const char* const* names) {
    lua_newtable(L);
    for (const char* const* n = names; *n; ++n) {
        lua_getfield(L, from, *n);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            continue;
        }
        lua_setfield(L, -2, *n);
    }
}

void wrap_field(lua_State* L, int table, const char* name, lua_CFunction f, bool flag) {
    lua_getfield(L, table, name);
    lua_pushboolean(L, flag);
    lua_pushcclosure(L, f, 2);
    lua_setfield(L, table, name);
}

void open_lib(lua_State* L, lua_CFunction open, const char* name) {
    lua_pushcfunction(L, open);
    lua_pushstring(L, name);
    lua_call(L, 1, 0);
}

}  // namespace

void sandbox_install_allowlist(lua_State* L) {
    // luaopen_base also opens coroutine. The jit library is never opened:
    // that leaves the compiler off as well as out of reach.
    open_lib(L, luaopen_base, "");
    open_lib(L, luaopen_table, LUA_TABLIBNAME);
    open_lib(L, luaopen_string, LUA_STRLIBNAME);
    open_lib(L, luaopen_math, LUA_MATHLIBNAME);
    open_lib(L, luaopen_bit, LUA_BITLIBNAME);
    open_lib(L, luaopen_debug, LUA_DBLIBNAME);

    lua_pushvalue(L, LUA_GLOBALSINDEX);
    int full = lua_gettop(L);

    // The host keeps debug.getinfo for arity checks; policies never see it.
    lua_pushlightuserdata(L, const_cast<char*>(&kGetinfoKey));
    lua_getfield(L, full, "debug");
    lua_getfield(L, -1, "getinfo");
    lua_remove(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);

    push_filtered(L, full, kBase);
    int env = lua_gettop(L);
    lua_pushcfunction(L, safe_xpcall);
    lua_setfield(L, env, "xpcall");

    struct Lib {
        const char* name;
        const char* const* fields;
    } libs[] = {{"string", kString}, {"table", kTable}, {"math", kMath}, {"bit", kBit}, {"coroutine", kCoroutine}};
    for (const Lib& lib : libs) {
        lua_getfield(L, full, lib.name);
        push_filtered(L, lua_gettop(L), lib.fields);
        lua_remove(L, -2);
        int copy = lua_gettop(L);
        if (std::strcmp(lib.name, "string") == 0) {
            lua_pushcfunction(L, bounded_find);
            lua_setfield(L, copy, "find");
            for (const char* f : {"char", "format", "lower", "rep", "reverse", "sub", "upper"}) {
                wrap_field(L, copy, f, charged_output, false);
            }
            // Method calls ("x"):upper() go through the string metatable:
            // point it at the filtered copy and lock it.
            lua_pushliteral(L, "");
            lua_getmetatable(L, -1);
            lua_pushvalue(L, copy);
            lua_setfield(L, -2, "__index");
            lua_pushliteral(L, "locked");
            lua_setfield(L, -2, "__metatable");
            lua_pop(L, 2);
        } else if (std::strcmp(lib.name, "table") == 0) {
            wrap_field(L, copy, "concat", charged_output, false);
            wrap_field(L, copy, "sort", charged_sort, false);
            wrap_field(L, copy, "insert", charged_shift, false);
            wrap_field(L, copy, "remove", charged_shift, true);
        }
        push_readonly(L, lib.name);
        lua_setfield(L, env, lib.name);
    }

    // _G is the read-only proxy itself: reading works, writing raises.
    lua_pushvalue(L, env);
    push_readonly(L, "_G");
    lua_pushvalue(L, -1);
    lua_setfield(L, env, "_G");
    lua_replace(L, LUA_GLOBALSINDEX);

    // Drop the library registrations (package.loaded is in the registry).
    lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
    if (lua_istable(L, -1)) {
        lua_newtable(L);
        lua_setfield(L, LUA_REGISTRYINDEX, "_LOADED");
    }
    lua_settop(L, 0);
}

}  // namespace rampart::policy
