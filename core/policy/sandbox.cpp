#include "policy/sandbox.h"

#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "policy/sandbox_internal.h"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
}

namespace rampart::policy {

namespace {

// The error value of a tripped run: a light userdata, so raising it never
// allocates (the allocator may be refusing everything by then).
const char kTripKey = 0;

uint64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Counts every byte; refuses growth past the memory limit, and past the
// instruction budget while a run is on (allocation work is charged).
// Shrinking and freeing always succeed, as Lua requires.
void* sandbox_alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
    auto* c = static_cast<Sandbox::Context*>(ud);
    size_t old = ptr ? osize : 0;
    if (nsize > old) {
        size_t grow = nsize - old;
        if (c->used + grow > c->limit) {
            if (c->running && c->tripped == Failure::None) c->tripped = Failure::Memory;
            return nullptr;
        }
        if (c->running) {
            c->spent += grow / kAllocBytesPerUnit;
            if (c->tripped == Failure::None && c->spent > c->budget) c->tripped = Failure::Budget;
            if (c->tripped != Failure::None) return nullptr;
        }
    }
    void* out;
    if (c->inner) {
        out = c->inner(c->inner_ud, ptr, osize, nsize);
    } else if (nsize == 0) {
        free(ptr);  // NOLINT(cppcoreguidelines-no-malloc,cppcoreguidelines-owning-memory): lua_Alloc contract
        out = nullptr;
    } else {
        out = realloc(ptr, nsize);  // NOLINT(cppcoreguidelines-no-malloc,cppcoreguidelines-owning-memory)
    }
    if (nsize == 0 || out) {
        c->used = c->used >= old ? c->used - old + nsize : nsize;
    } else if (nsize < old) {
        out = ptr;  // a failed shrink keeps the block; Lua must not see NULL
    }
    return out;
}

void record_where(Sandbox::Context* c, lua_State* L, lua_Debug* ar) {
    if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0) {
        std::memcpy(c->where_src, ar->short_src, sizeof c->where_src);
        c->where_src[sizeof c->where_src - 1] = '\0';
        c->where_line = ar->currentline;
    }
}

void count_hook(lua_State* L, lua_Debug* ar) {
    Sandbox::Context* c = sandbox_context(L);
    if (!c->running) return;
    if (c->tripped == Failure::None) {
        c->spent += kHookInterval;
        record_where(c, L, ar);
        if (c->spent > c->budget) {
            c->tripped = Failure::Budget;
        } else if (now_ns() > c->deadline_ns) {
            c->tripped = Failure::Deadline;
        } else {
            return;
        }
    }
    sandbox_raise_trip(L);
}

// Message handler: gives position-less errors (error("x", 0), error({}))
// the position of the innermost Lua frame. Never calls metamethods.
int message_handler(lua_State* L) {
    if (lua_touserdata(L, 1) == &kTripKey) return 1;
    lua_Debug ar;
    const char* where = nullptr;
    int line = 0;
    for (int level = 1; lua_getstack(L, level, &ar); ++level) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            where = ar.short_src;
            line = ar.currentline;
            break;
        }
    }
    if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER) {
        size_t len;
        const char* msg = lua_tolstring(L, 1, &len);
        // Already "name:123: ..."?
        const char* colon = static_cast<const char*>(std::memchr(msg, ':', len));
        if (colon && colon != msg) {
            const char* p = colon + 1;
            const char* digits = p;
            while (p < msg + len && *p >= '0' && *p <= '9') ++p;
            if (p > digits && p < msg + len && *p == ':') return 1;
        }
        if (where) lua_pushfstring(L, "%s:%d: %s", where, line, msg);
        return 1;
    }
    const char* type = luaL_typename(L, 1);
    if (where) {
        lua_pushfstring(L, "%s:%d: error object is a %s value", where, line, type);
    } else {
        lua_pushfstring(L, "error object is a %s value", type);
    }
    return 1;
}

struct Job {
    const std::function<void(lua_State*)>* fn;
    std::string cxx_error;
};

int run_job(lua_State* L) {
    auto* job = static_cast<Job*>(lua_touserdata(L, 1));
    lua_settop(L, 0);
    // Lua errors unwind through here as foreign exceptions: no catch (...),
    // which would swallow them.
    try {
        (*job->fn)(L);
    } catch (const std::exception& e) {
        job->cxx_error = e.what();
    }
    return 0;
}

int panic(lua_State* L) {
    const char* msg = lua_tostring(L, -1);
    (void)std::fprintf(stderr, "rampart: unprotected Lua error in the policy host: %s\n", msg ? msg : "?");
    std::abort();
}

}  // namespace

const char* failure_name(Failure f) {
    switch (f) {
        case Failure::None: return "ok";
        case Failure::Error: return "error";
        case Failure::Budget: return "budget";
        case Failure::Deadline: return "deadline";
        case Failure::Memory: return "memory";
    }
    return "?";
}

Sandbox::Context* sandbox_context(lua_State* L) {
    void* ud = nullptr;
    lua_getallocf(L, &ud);
    return static_cast<Sandbox::Context*>(ud);
}

int sandbox_raise_trip(lua_State* L) {
    Sandbox::Context* c = sandbox_context(L);
    if (c->where_line == 0) {
        lua_Debug ar;
        if (lua_getstack(L, 1, &ar)) record_where(c, L, &ar);
    }
    // From now on every instruction lands here again.
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    lua_pushlightuserdata(L, const_cast<char*>(&kTripKey));
    return lua_error(L);
}

void sandbox_charge(lua_State* L, uint64_t units) {
    Sandbox::Context* c = sandbox_context(L);
    if (!c->running) return;
    c->spent += units;
    if (c->tripped == Failure::None && c->spent > c->budget) {
        c->tripped = Failure::Budget;
        lua_Debug ar;
        if (lua_getstack(L, 1, &ar)) record_where(c, L, &ar);
    }
    if (c->tripped != Failure::None) sandbox_raise_trip(L);
}

std::unique_ptr<Sandbox> Sandbox::create(size_t memory_bytes, std::string* error, MemoryBound bound) {
    std::unique_ptr<Sandbox> sb(new Sandbox());
    sb->ctx_ = std::make_unique<Context>();
    Context* c = sb->ctx_.get();
    c->limit = memory_bytes;
    lua_State* L = nullptr;
    if (bound == MemoryBound::Allocator) L = lua_newstate(sandbox_alloc, c);
    if (!L) {
        // Non-GC64 LuaJIT refuses custom allocators on x86_64 (addresses must
        // stay low): wrap its own allocator instead, which counts as exactly.
        L = luaL_newstate();
        if (!L) {
            *error = "cannot create a Lua state";
            return nullptr;
        }
        c->inner = lua_getallocf(L, &c->inner_ud);
        c->used = static_cast<size_t>(lua_gc(L, LUA_GCCOUNT, 0)) * 1024 + lua_gc(L, LUA_GCCOUNTB, 0);
        lua_setallocf(L, sandbox_alloc, c);
        bound = MemoryBound::Wrapped;
    }
    sb->L_ = L;
    sb->bound_ = bound;
    lua_atpanic(L, panic);
    if (!luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF)) {
        *error = "cannot turn the LuaJIT compiler off";
        return nullptr;
    }
    RunResult r = sb->protect([](lua_State* L) { sandbox_install_allowlist(L); });
    if (!r.ok()) {
        *error = "cannot build the policy sandbox: " + r.message;
        return nullptr;
    }
    return sb;
}

Sandbox::~Sandbox() {
    // No finalizers can run Lua code here: newproxy and ffi are not reachable
    // and LuaJIT ignores __gc on tables.
    if (L_) lua_close(L_);
}

size_t Sandbox::memory_used() const { return ctx_->used; }
size_t Sandbox::memory_limit() const { return ctx_->limit; }

RunResult Sandbox::protect(const std::function<void(lua_State*)>& fn) {
    Job job{&fn, {}};
    int top = lua_gettop(L_);
    int status = lua_cpcall(L_, run_job, &job);
    RunResult r;
    if (status != 0) {
        r.failure = status == LUA_ERRMEM ? Failure::Memory : Failure::Error;
        const char* msg = lua_tostring(L_, -1);
        r.message = status == LUA_ERRMEM ? "memory limit exceeded (" + std::to_string(ctx_->limit) + " bytes)"
                                         : (msg ? msg : "error");
    } else if (!job.cxx_error.empty()) {
        r.failure = Failure::Error;
        r.message = job.cxx_error;
    }
    lua_settop(L_, top);
    return r;
}

RunResult Sandbox::call(int nargs, int nresults, uint64_t instructions, uint32_t deadline_ms) {
    lua_State* L = L_;
    Context* c = ctx_.get();
    int fn = lua_gettop(L) - nargs;
    // Until the hook samples a position, failures point at the function.
    lua_Debug ar;
    lua_pushvalue(L, fn);
    c->where_src[0] = '\0';
    c->where_line = 0;
    if (lua_getinfo(L, ">Sl", &ar)) {
        std::memcpy(c->where_src, ar.short_src, sizeof c->where_src);
        c->where_line = ar.linedefined > 0 ? ar.linedefined : 1;
    }
    lua_pushcfunction(L, message_handler);
    lua_insert(L, fn);

    c->budget = instructions;
    c->spent = 0;
    c->deadline_ms = deadline_ms;
    c->deadline_ns = now_ns() + static_cast<uint64_t>(deadline_ms) * 1'000'000u;
    c->tripped = Failure::None;
    c->running = true;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, kHookInterval);
    int status = lua_pcall(L, nargs, nresults, fn);
    lua_sethook(L, nullptr, 0, 0);
    c->running = false;

    RunResult r;
    if (status == 0 && c->tripped == Failure::None) {
        lua_remove(L, fn);
        return r;
    }
    r.failure = c->tripped != Failure::None ? c->tripped : status == LUA_ERRMEM ? Failure::Memory : Failure::Error;
    std::string where = c->where_src[0] ? std::string(c->where_src) + ":" + std::to_string(c->where_line) + ": " : "";
    switch (r.failure) {
        case Failure::Budget:
            r.message = where + "instruction budget exceeded (" + std::to_string(instructions) + " instructions)";
            break;
        case Failure::Deadline:
            r.message = where + "time limit exceeded (" + std::to_string(deadline_ms) + " ms)";
            break;
        case Failure::Memory:
            r.message = where + "memory limit exceeded (" + std::to_string(c->limit) + " bytes)";
            break;
        default: {
            const char* msg = status != 0 ? lua_tostring(L, -1) : nullptr;
            r.message = msg ? msg : where + "error";
            if (status == LUA_ERRERR) r.message = where + "error in error handling";
        }
    }
    lua_settop(L, fn - 1);
    // Reclaim what the failed run left behind (a bomb) before the next one.
    lua_gc(L, LUA_GCCOLLECT, 0);
    return r;
}

RunResult Sandbox::load(std::string_view source, const std::string& chunkname) {
    RunResult r;
    int status = luaL_loadbufferx(L_, source.data(), source.size(), chunkname.c_str(), "t");
    if (status != 0) {
        r.failure = status == LUA_ERRMEM ? Failure::Memory : Failure::Error;
        const char* msg = lua_tostring(L_, -1);
        r.message = msg ? msg : "cannot load";
        lua_pop(L_, 1);
    }
    return r;
}

bool Sandbox::function_arity(int index, int* nparams, bool* vararg) {
    if (lua_type(L_, index) != LUA_TFUNCTION || lua_iscfunction(L_, index)) return false;
    index = index < 0 ? lua_gettop(L_) + index + 1 : index;
    lua_pushlightuserdata(L_, const_cast<char*>(&kGetinfoKey));
    lua_rawget(L_, LUA_REGISTRYINDEX);
    lua_pushvalue(L_, index);
    lua_pushliteral(L_, "u");
    lua_call(L_, 2, 1);
    lua_getfield(L_, -1, "nparams");
    lua_getfield(L_, -2, "isvararg");
    *nparams = static_cast<int>(lua_tointeger(L_, -2));
    *vararg = lua_toboolean(L_, -1);
    lua_pop(L_, 3);
    return true;
}

}  // namespace rampart::policy
