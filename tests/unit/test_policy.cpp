// Unit tests for the policy host (core/policy): every sandbox escape we
// could think of, the bounds (instructions, time, memory), the all-or-nothing
// reload and generation lifetimes, and the shipped policies' numbers.
// C++ headers first: cmocka defines macros (fail, ...) that would clash.
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "policy/policy_host.h"
#include "policy/sandbox.h"
#include "policy/shipped.h"
#include "policy/specs.h"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
}

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart::policy;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/rampart-policy-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
    void write(const std::string& name, const std::string& text) const {
        std::ofstream(path + "/" + name, std::ios::binary) << text;
    }
    void remove(const std::string& name) const { fs::remove(path + "/" + name); }
    std::string read(const std::string& name) const {
        std::ifstream in(path + "/" + name, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    void copy_shipped() const {
        for (const auto& e : fs::directory_iterator(std::string(RAMPART_SOURCE_ROOT) + "/policies")) {
            if (e.path().extension() == ".lua")
                fs::copy_file(e.path(), path + "/" + e.path().filename().string(),
                              fs::copy_options::overwrite_existing);
        }
    }
    // Replaces the first `from` in `name` (which must be there).
    void edit(const std::string& name, const std::string& from, const std::string& to) const {
        std::string text = read(name);
        size_t at = text.find(from);
        if (at == std::string::npos) fail_msg("%s has no \"%s\"", name.c_str(), from.c_str());
        write(name, text.replace(at, from.size(), to));
    }
    // 1-based line of the first `needle` in `name`.
    int line_of(const std::string& name, const std::string& needle) const {
        std::string text = read(name);
        size_t at = text.find(needle);
        if (at == std::string::npos) fail_msg("%s has no \"%s\"", name.c_str(), needle.c_str());
        return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
    }
};

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

void expect_contains(const std::string& hay, const std::string& needle) {
    if (!contains(hay, needle)) fail_msg("expected \"%s\" in \"%s\"", needle.c_str(), hay.c_str());
}

std::string all_errors(const LoadReport& r) {
    std::string out;
    for (const auto& e : r.errors) out += e + "\n";
    return out;
}

// One policy, p.lua, loaded by a host with no required policies: the
// sandbox tests need nothing else.
struct One {
    TempDir dir;
    std::unique_ptr<PolicyHost> host;
    LoadReport report;

    explicit One(const std::string& src, Limits limits = {}) {
        dir.write("p.lua", src);
        host = std::make_unique<PolicyHost>(limits, std::vector<PolicySpec>{});
        report = host->load(dir.path);
    }
    void must_load() const {
        if (!report.ok) fail_msg("p.lua did not load:\n%s", all_errors(report).c_str());
    }
    std::string only_error() const {
        if (report.ok || report.errors.size() != 1) {
            fail_msg("expected one load error, got %zu:\n%s", report.errors.size(), all_errors(report).c_str());
        }
        return report.errors[0];
    }
    PolicyValue call(const char* fn, std::initializer_list<PolicyValue> args = {},
                     PolicyValue fallback = "fallback") const {
        return host->current()->call("p", fn, args, fallback);
    }
    const PolicyCounters& counters() const { return host->counters("p"); }
    std::string path() const { return dir.path + "/p.lua"; }
};

// Calls p.f, expects the fallback, one more error, and `needle` in the error.
void expect_fallback(One& one, const char* fn, const std::string& needle) {
    uint64_t errors = one.counters().errors;
    PolicyValue v = one.call(fn);
    if (!(v == PolicyValue("fallback"))) fail_msg("%s returned %s instead of the fallback", fn, v.to_json().c_str());
    assert_int_equal(one.counters().errors, errors + 1);
    expect_contains(one.counters().last_error, needle);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---------------------------------------------------------------- sandbox

void test_allow_list(void**) {
    One one(R"(
local absent = {
  "io", "os", "debug", "jit", "ffi", "package", "require", "module", "load", "loadstring", "loadfile",
  "dofile", "rawset", "getfenv", "setfenv", "newproxy", "collectgarbage", "print", "gcinfo",
}
local M = {}
function M.present()
  local out = {}
  for _, name in ipairs(absent) do
    if _G[name] ~= nil then out[#out + 1] = name end
  end
  for _, name in ipairs({ "dump", "match", "gmatch", "gsub" }) do
    if string[name] ~= nil or ("x")[name] ~= nil then out[#out + 1] = "string." .. name end
  end
  for _, name in ipairs({ "maxn", "move" }) do
    if table[name] ~= nil then out[#out + 1] = "table." .. name end
  end
  if math.random ~= nil or math.randomseed ~= nil then out[#out + 1] = "math.random" end
  return table.concat(out, ",")
end
function M.handled()
  local ok, msg = xpcall(function() error("e") end, function(m) return "handled: " .. m end)
  return tostring(ok) .. " " .. msg
end
function M.works()
  local t = { 3, 1, 2 }
  table.sort(t)
  table.insert(t, 4)
  return ("%d-%s-%s-%d-%s"):format(#t, ("abc"):upper(), string.rep("ab", 2, ","), bit.band(7, 3),
    tostring(coroutine.wrap(function() coroutine.yield(5) end)()))
end
return M
)");
    one.must_load();
    assert_string_equal(one.call("present").as_string().c_str(), "");
    assert_string_equal(one.call("works").as_string().c_str(), "4-ABC-ab,ab-3-5");
    assert_string_equal(one.call("handled").as_string().c_str(), "false handled: p.lua:22: e");
}

void test_io_os_ffi_require(void**) {
    One one(R"(
return {
  io_open = function() return io.open("/etc/passwd") end,
  os_execute = function() return os.execute("touch /tmp/rampart-pwned") end,
  os_exit = function() os.exit(1) end,
  ffi = function() return require("ffi").C.system("true") end,
  require_any = function() return require("string") end,
  dofile = function() return dofile("/etc/passwd") end,
  loadfile = function() return loadfile("/etc/passwd") end,
  debug = function() debug.sethook() end,
  getfenv = function() return getfenv(0) end,
}
)");
    one.must_load();
    expect_fallback(one, "io_open", "attempt to index global 'io' (a nil value)");
    expect_fallback(one, "os_execute", "attempt to index global 'os'");
    expect_fallback(one, "os_exit", "attempt to index global 'os'");
    expect_fallback(one, "ffi", "attempt to call global 'require'");
    expect_fallback(one, "require_any", "attempt to call global 'require'");
    expect_fallback(one, "dofile", "attempt to call global 'dofile'");
    expect_fallback(one, "loadfile", "attempt to call global 'loadfile'");
    expect_fallback(one, "debug", "attempt to index global 'debug'");
    expect_fallback(one, "getfenv", "attempt to call global 'getfenv'");
    assert_int_equal(one.counters().runtime, 9);
    assert_false(fs::exists("/tmp/rampart-pwned"));
}

void test_require_at_load_refused(void**) {
    One one("local ffi = require('ffi')\nreturn {}\n");
    std::string e = one.only_error();
    assert_string_equal(
        e.c_str(),
        ("policy reload halted: " + one.path() + ":1: attempt to call global 'require' (a nil value)").c_str());
}

// Bytecode: string.dump and load are absent, and a precompiled file is
// refused (files are compiled in text mode only).
void test_bytecode_refused(void**) {
    One one(R"(
return {
  dump = function() return (load or loadstring)(string.dump(function() return 1 end)) end,
}
)");
    one.must_load();
    expect_fallback(one, "dump", "attempt to call field 'dump' (a nil value)");

    lua_State* L = luaL_newstate();
    luaL_openlibs(L);
    assert_int_equal(luaL_dostring(L, "return string.dump(loadstring('return { f = function() return 1 end }'))"), 0);
    size_t len = 0;
    const char* bytes = lua_tolstring(L, -1, &len);
    std::string bytecode(bytes, len);
    lua_close(L);
    assert_true(bytecode.compare(0, 3, "\x1bLJ") == 0);
    One binary(bytecode);
    std::string e = binary.only_error();
    expect_contains(e, binary.path() + ":1: ");
    expect_contains(e, "wrong mode");
}

void test_globals_read_only(void**) {
    One one(R"(
local M = {}
function M.set_global() leaked = 1 end
function M.set_via_G() _G.leaked = 1 end
function M.rawset_G() rawset(_G, "leaked", 1) end
function M.setmetatable_G() setmetatable(_G, {}) end
function M.G_metatable() getmetatable(_G).__newindex = nil end
function M.replace_lib() string.rep = function() return "pwned" end end
function M.replace_table_fn() table.insert = nil end
function M.replace_lib_table() _G.string = {} end
function M.lib_metatable() setmetatable(math, {}) end
function M.check() return tostring(rawget(_G, "leaked")) .. " " .. string.rep("a", 2) end
return M
)");
    one.must_load();
    expect_fallback(one, "set_global", "attempt to set global 'leaked': policy globals are read-only");
    expect_contains(one.counters().last_error, one.path() + ":3: ");
    expect_fallback(one, "set_via_G", "policy globals are read-only");
    expect_fallback(one, "rawset_G", "attempt to call global 'rawset'");
    expect_fallback(one, "setmetatable_G", "cannot change a protected metatable");
    expect_fallback(one, "G_metatable", "attempt to index a string value");
    expect_fallback(one, "replace_lib", "attempt to modify read-only table 'string'");
    expect_fallback(one, "replace_table_fn", "attempt to modify read-only table 'table'");
    expect_fallback(one, "replace_lib_table", "policy globals are read-only");
    expect_fallback(one, "lib_metatable", "cannot change a protected metatable");
    assert_string_equal(one.call("check").as_string().c_str(), "nil aa");
}

void test_global_set_at_load_refused(void**) {
    One one("local M = {}\nhelper = function() end\nreturn M\n");
    expect_contains(one.only_error(), one.path() + ":2: attempt to set global 'helper'");
}

// The string metatable is shared by every policy of a generation: it is
// locked, and its __index is a private copy of the allowed functions.
void test_string_metatable_locked(void**) {
    One one(R"(
local M = {}
function M.what() return type(getmetatable("")) .. ":" .. tostring(getmetatable("")) end
function M.tamper() getmetatable("").__index = { upper = function() return "pwned" end } end
function M.tamper_method() local s = "x"; s.upper = function() return "pwned" end end
function M.upper() return ("abc"):upper() end
function M.gsub_method() return ("abc"):gsub("a", "b") end
return M
)");
    one.must_load();
    assert_string_equal(one.call("what").as_string().c_str(), "string:locked");
    expect_fallback(one, "tamper", "attempt to index a string value");
    expect_fallback(one, "tamper_method", "attempt to index local 's'");
    assert_string_equal(one.call("upper").as_string().c_str(), "ABC");
    expect_fallback(one, "gsub_method", "attempt to call method 'gsub'");
}

// ------------------------------------------------------ instruction budget

void test_infinite_loop_at_load(void**) {
    One one("local M = {}\n\nwhile true do end\nreturn M\n");
    assert_string_equal(
        one.only_error().c_str(),
        ("policy reload halted: " + one.path() + ":3: instruction budget exceeded (1000000 instructions)").c_str());
    assert_int_equal(one.host->generation_number(), 0);
    assert_int_equal(one.host->reloads_failed(), 1);
}

void test_infinite_loop_in_call(void**) {
    One one(R"(
local M = {}
function M.spin()
  local x = 0
  while true do x = x + 1 end
end
function M.ok() return "fine" end
return M
)");
    one.must_load();
    auto t0 = std::chrono::steady_clock::now();
    expect_fallback(one, "spin", one.path() + ":5: instruction budget exceeded (100000 instructions)");
    assert_true(seconds_since(t0) < 0.5);
    assert_int_equal(one.counters().budget, 1);
    // The state is still good for the next call.
    assert_string_equal(one.call("ok").as_string().c_str(), "fine");
    assert_int_equal(one.counters().errors, 1);
}

// pcall, xpcall, coroutines: nothing catches a spent budget for good.
void test_budget_cannot_be_swallowed(void**) {
    One one(R"(
local M = {}
local function spin() while true do end end
function M.pcall_loop() while true do pcall(spin) end end
function M.xpcall_loop() while true do xpcall(spin, spin) end end
function M.nested_pcall() return pcall(function() while true do pcall(spin) end end) end
function M.coroutine_loop()
  while true do coroutine.resume(coroutine.create(spin)) end
end
function M.wrap_yield()
  local co = coroutine.wrap(function() while true do coroutine.yield() end end)
  while true do co() end
end
function M.error_in_handler() return xpcall(function() error("x") end, spin) end
function M.yield_outside() coroutine.yield(1) end
-- LuaJIT ignores __gc on tables (finalizers run with hooks off): if this one
-- ran, closing the state would never return.
function M.gc_trick() setmetatable({}, { __gc = function() while true do end end }) return "made" end
return M
)");
    one.must_load();
    for (const char* fn : {"pcall_loop", "xpcall_loop", "nested_pcall", "coroutine_loop", "wrap_yield"}) {
        auto t0 = std::chrono::steady_clock::now();
        expect_fallback(one, fn, "instruction budget exceeded");
        if (seconds_since(t0) > 0.5) fail_msg("%s took %.3f s", fn, seconds_since(t0));
    }
    assert_int_equal(one.counters().budget, 5);
    // An endless error handler: the budget stops it (or Lua reports the
    // error in error handling); either way the fallback is used.
    expect_fallback(one, "error_in_handler", "p.lua:");
    expect_fallback(one, "yield_outside", "attempt to yield");
    for (int i = 0; i < 3; ++i) assert_string_equal(one.call("gc_trick").as_string().c_str(), "made");
}

// C functions whose work grows with their input are charged.
void test_c_work_is_charged(void**) {
    One one(R"(
local big = {}
for i = 1, 150000 do big[i] = 150000 - i end
local M = {}
function M.sort() table.sort(big) end
function M.shift() for i = 1, 100000 do table.insert(big, 1, i) end end
function M.churn() for _ = 1, 1000000 do local _ = string.rep("x", 500000) end end
function M.small_sort() local t = { 5, 3, 9, 1 } table.sort(t) return table.concat(t, ",") end
return M
)");
    one.must_load();
    for (const char* fn : {"sort", "shift", "churn"}) {
        auto t0 = std::chrono::steady_clock::now();
        expect_fallback(one, fn, "instruction budget exceeded");
        if (seconds_since(t0) > 0.5) fail_msg("%s took %.3f s", fn, seconds_since(t0));
    }
    assert_string_equal(one.call("small_sort").as_string().c_str(), "1,3,5,9");
}

// Work the budget does not see (comparing long strings) meets the deadline.
void test_deadline(void**) {
    Limits limits;
    limits.call_instructions = 1'000'000'000'000;
    limits.call_deadline_ms = 50;
    One one(R"(
local a = string.rep("a", 1500000)
local b = string.rep("a", 1499999) .. "b"
return { compare = function() local n = 0 while true do if a < b then n = n + 1 end end end }
)",
            limits);
    one.must_load();
    auto t0 = std::chrono::steady_clock::now();
    expect_fallback(one, "compare", "time limit exceeded (50 ms)");
    assert_true(seconds_since(t0) < 1.0);
    assert_int_equal(one.counters().deadline, 1);
}

// Every bound is a constructor parameter, and each one is hit here or above.
void test_limits_are_parameters(void**) {
    Limits small;
    small.call_instructions = 20'000;
    small.load_instructions = 50'000;
    small.memory_bytes = 1u << 20;
    const char* src = R"(
local M = {}
local n = 0
for _ = 1, 10000 do n = n + 1 end
function M.loop(k) local x = 0 for i = 1, k do x = x + i end return x end
function M.alloc(k) return #string.rep("x", k) end
return M
)";
    One one(src, small);
    one.must_load();
    assert_true(one.call("loop", {1000}, 0) == PolicyValue(500500));
    assert_true(one.call("loop", {20000}, 0) == PolicyValue(0));
    assert_int_equal(one.counters().budget, 1);
    assert_true(one.call("alloc", {100000}, 0) == PolicyValue(100000));
    assert_true(one.call("alloc", {2000000}, 0) == PolicyValue(0));
    assert_int_equal(one.counters().memory, 1);
    small.load_instructions = 20'000;
    One refused(src, small);
    expect_contains(refused.only_error(), "p.lua:4: instruction budget exceeded (20000 instructions)");
    // The load deadline, with a file whose work the budget does not see.
    Limits slow;
    slow.load_instructions = 1'000'000'000'000;
    slow.load_deadline_ms = 50;
    One late(R"(
local a = string.rep("a", 1500000)
local b = string.rep("a", 1499999) .. "b"
while true do local _ = a < b end
)",
             slow);
    expect_contains(late.only_error(), "p.lua:4: time limit exceeded (50 ms)");
}

// --------------------------------------------------------------- memory

void test_memory_bombs(void**) {
    Limits limits;
    limits.call_instructions = 1'000'000'000;  // let memory be the bound that trips
    limits.call_deadline_ms = 10'000;
    One one(R"(
local M = {}
function M.rep_bomb() return string.rep("x", 64 * 1024 * 1024) end
function M.doubling() local s = "x" while true do s = s .. s end end
function M.table_bomb() local t, i = {}, 0 while true do i = i + 1 t[i] = { i, i, i } end end
function M.swallowed() while true do pcall(string.rep, "x", 1e9) end end
function M.in_coroutine()
  local co = coroutine.create(function() local t = {} while true do t[#t + 1] = string.rep("y", 1000) .. #t end end)
  return coroutine.resume(co)
end
function M.ok() return "fine" end
return M
)",
            limits);
    one.must_load();
    for (const char* fn : {"rep_bomb", "doubling", "table_bomb", "swallowed", "in_coroutine"}) {
        auto t0 = std::chrono::steady_clock::now();
        expect_fallback(one, fn, "memory limit exceeded (8388608 bytes)");
        if (seconds_since(t0) > 2) fail_msg("%s took %.3f s", fn, seconds_since(t0));
        // The garbage is collected after a failed call (LuaJIT keeps part of
        // its string buffer; it halves at each collection).
        size_t used = one.host->current()->memory_used();
        if (used > 2 * 1024 * 1024) fail_msg("%zu bytes still held after %s", used, fn);
    }
    assert_int_equal(one.counters().memory, 5);
    assert_string_equal(one.call("ok").as_string().c_str(), "fine");
}

void test_memory_bomb_at_load(void**) {
    // The line of a memory error is where the hook last saw the run (or the
    // function's first line): an allocation failure carries no position.
    One one("local M = {}\nlocal s = string.rep('x', 100 * 1024 * 1024)\nreturn M\n");
    assert_string_equal(one.only_error().c_str(),
                        ("policy reload halted: " + one.path() + ":1: memory limit exceeded (8388608 bytes)").c_str());
}

// The fallback for LuaJIT builds that refuse lua_newstate with a custom
// allocator (non-GC64 x86_64): LuaJIT's own allocator, wrapped.
void test_wrapped_allocator(void**) {
    std::string err;
    auto sb = Sandbox::create(2u << 20, &err, Sandbox::MemoryBound::Wrapped);
    if (!sb) fail_msg("%s", err.c_str());
    assert_int_equal(static_cast<int>(sb->memory_bound()), static_cast<int>(Sandbox::MemoryBound::Wrapped));
    assert_true(sb->memory_used() > 0 && sb->memory_used() < sb->memory_limit());
    RunResult bomb, ok;
    sb->protect([&](lua_State* L) {
        sb->load("local t = {} while true do t[#t + 1] = string.rep('z', 512) .. #t end", "@w.lua");
        bomb = sb->call(0, 0, 1'000'000'000, 10'000);
        sb->load("return ('ok'):upper()", "@w.lua");
        ok = sb->call(0, 1, 1000, 1000);
        lua_pop(L, 1);
    });
    assert_int_equal(static_cast<int>(bomb.failure), static_cast<int>(Failure::Memory));
    expect_contains(bomb.message, "memory limit exceeded (2097152 bytes)");
    assert_true(ok.ok());
}

// ------------------------------------------------------- bounded strings

void test_string_find_bounded(void**) {
    One one(R"(
local hay = string.rep("a", 2000000) .. "b"
local M = {}
function M.plain_slow_case() return string.find(hay, string.rep("a", 1000000) .. "b", 1, true) end
function M.pattern() return ("abc"):find("b.") end
function M.literal() return ("a.b"):find(".", 1, true) end
function M.no_magic() return ("hello world"):find("world") end
function M.init() return ("abcabc"):find("abc", -3) end
function M.missing() return ("abc"):find("z", 1, true) == nil end
return M
)");
    one.must_load();
    auto t0 = std::chrono::steady_clock::now();
    assert_int_equal(static_cast<int>(one.call("plain_slow_case", {}, 0).as_number()), 1000001);
    // LuaJIT's own plain find takes about 34 s on this input.
    assert_true(seconds_since(t0) < 0.5);
    expect_fallback(one, "pattern", "patterns are not available in policies");
    assert_int_equal(static_cast<int>(one.call("literal", {}, 0).as_number()), 2);
    assert_int_equal(static_cast<int>(one.call("no_magic", {}, 0).as_number()), 7);
    assert_int_equal(static_cast<int>(one.call("init", {}, 0).as_number()), 4);
    assert_true(one.call("missing", {}, false).as_bool());
}

// ------------------------------------------------------- calls and values

void test_errors_and_results(void**) {
    One one(R"(
local M = {}
function M.boom()
  error("boom")
end
function M.table_error() error({ code = 1 }) end
function M.level0() error("plain", 0) end
function M.fn_result() return function() end end
function M.number() return 42 end
function M.nan() return 0 / 0 end
function M.cycle() local t = {} t.self = t return t end
function M.echo(...) return { ... } end
M.limit = 7
M.nested = { a = { 1, 2 }, b = "x" }
return M
)");
    one.must_load();
    expect_fallback(one, "boom", one.path() + ":4: boom");
    expect_fallback(one, "table_error", one.path() + ":6: error object is a table value");
    expect_fallback(one, "level0", one.path() + ":7: plain");
    expect_fallback(one, "fn_result", "cannot convert a function value");
    expect_fallback(one, "cycle", "nested more than 32 deep");
    assert_int_equal(one.counters().bad_result, 2);
    // A result of another kind than the fallback is refused.
    expect_fallback(one, "number", "number returned a number, the host needs a string");
    PolicyValue nan = one.host->current()->call("p", "nan", {}, 1.0);
    assert_true(nan == PolicyValue(1.0));
    assert_true(one.call("number", {}, 0.0) == PolicyValue(42));
    // Missing policy or entry point.
    assert_true(one.host->current()->call("nope", "f", {}, 5) == PolicyValue(5));
    assert_int_equal(one.host->counters("nope").missing, 1);
    expect_fallback(one, "absent", "no entry point 'absent'");
    // Arguments and results round-trip.
    PolicyValue args = PolicyValue::object({{"k", "v"}, {"list", PolicyValue::array({1, true, "s"})}});
    PolicyValue echoed = one.call("echo", {1, "two", args, false}, PolicyValue());
    assert_string_equal(echoed.to_json().c_str(), R"([1,"two",{"k":"v","list":[1,true,"s"]},false])");
    // Non-function fields are captured at load.
    assert_true(one.host->current()->data("p", "limit") == PolicyValue(7));
    assert_string_equal(one.host->current()->rules_json("p", "nested").c_str(), R"({"a":[1,2],"b":"x"})");
    assert_string_equal(one.host->current()->rules_json("p", "absent").c_str(), "null");
}

void test_error_sink(void**) {
    One one("return { f = function() error('sink me') end }\n");
    one.must_load();
    std::vector<std::string> seen;
    one.host->set_error_sink([&](std::string_view policy, std::string_view msg) {
        seen.push_back(std::string(policy) + "|" + std::string(msg));
    });
    one.call("f");
    assert_int_equal(seen.size(), 1);
    assert_string_equal(seen[0].c_str(), ("p|" + one.path() + ":1: sink me").c_str());
}

void test_value_json(void**) {
    assert_string_equal(PolicyValue(PolicyTable{}).to_json().c_str(), "[]");
    PolicyTable mixed;
    mixed.array = {1, 2};
    mixed.fields = {{"z", nullptr}, {"a", std::nan("")}};
    assert_string_equal(PolicyValue(mixed).to_json().c_str(), R"({"1":1,"2":2,"a":null,"z":null})");
    assert_true(PolicyValue::object({{"b", 1}, {"a", 2}, {"b", 3}}) == PolicyValue::object({{"a", 2}, {"b", 3}}));
    assert_true(PolicyValue("x")["k"].is_nil());
    assert_true(PolicyValue::array({1, 2}).at(5).is_nil());
}

// ----------------------------------------------------------- generations

struct Shipped {
    TempDir dir;
    PolicyHost host;
    Shipped() { dir.copy_shipped(); }
    LoadReport load() { return host.load(dir.path); }
};

void must(const LoadReport& r) {
    if (!r.ok) fail_msg("load failed:\n%s", all_errors(r).c_str());
}

std::string only_error(const LoadReport& r) {
    if (r.ok || r.errors.size() != 1) {
        fail_msg("expected one error, got %zu:\n%s", r.errors.size(), all_errors(r).c_str());
    }
    return r.errors[0];
}

void test_shipped_policies_load(void**) {
    Shipped s;
    LoadReport r = s.load();
    must(r);
    assert_int_equal(r.generation, 1);
    assert_int_equal(s.host.generation_number(), 1);
    assert_int_equal(r.policies.size(), 4);
    assert_int_equal(s.host.reloads_ok(), 1);
    // The shipped files also load from the source tree itself.
    PolicyHost direct;
    must(direct.load(std::string(RAMPART_SOURCE_ROOT) + "/policies/"));
    assert_string_equal(direct.current()->dir().c_str(), (std::string(RAMPART_SOURCE_ROOT) + "/policies").c_str());
}

void test_seed_numbers(void**) {
    Shipped s;
    must(s.load());
    auto g = s.host.current();
    // Backoff: the seed's table (retry n; the seed numbers it n + 1).
    const double lo[] = {80, 160, 320, 640, 1280, 2560, 4000, 4000, 4000, 4000};
    const double hi[] = {120, 240, 480, 960, 1920, 3840, 6000, 6000, 6000, 6000};
    for (int n = 1; n <= 10; ++n) {
        for (double r : {0.0, 0.01, 0.33, 0.5, 0.9, 1.0}) {
            double d = backoff_delay_ms(*g, n, r);
            if (d < lo[n - 1] || d > hi[n - 1]) fail_msg("delay_ms(%d, %g) = %g", n, r, d);
        }
        assert_true(backoff_delay_ms(*g, n, 0) == lo[n - 1]);
        assert_true(backoff_delay_ms(*g, n, 1) == hi[n - 1]);
    }
    assert_true(request_budget_ms(*g) == 2500);
    // Retry classes.
    assert_string_equal(classify(*g, {200, ""}).c_str(), "success");
    assert_string_equal(classify(*g, {404, ""}).c_str(), "http_4xx");
    assert_string_equal(classify(*g, {502, ""}).c_str(), "http_5xx");
    assert_string_equal(classify(*g, {0, "connect"}).c_str(), "network_error");
    assert_string_equal(classify(*g, {0, "tls"}).c_str(), "tls_error");
    assert_string_equal(classify(*g, {0, "timeout"}).c_str(), "timeout");
    for (const char* c : {"network_error", "http_5xx", "timeout"}) {
        assert_true(should_retry(*g, c, 1, true));
        assert_true(should_retry(*g, c, 9, true));
        assert_false(should_retry(*g, c, 10, true));
        assert_false(should_retry(*g, c, 1, false));
    }
    for (const char* c : {"success", "tls_error", "http_4xx"}) assert_false(should_retry(*g, c, 1, true));
    // Recovery.
    assert_string_equal(recovery_action(*g, "rpc_client", 1, 60).c_str(), "immediate");
    assert_string_equal(recovery_action(*g, "rpc_client", 3, 60).c_str(), "backoff");
    assert_string_equal(recovery_action(*g, "rpc_client", 5, 60).c_str(), "circuit_breaker");
    for (int n = 1; n <= 30; ++n) {
        for (double r : {0.0, 0.5, 1.0}) {
            double d = recovery_backoff_ms(*g, n, r);
            if (d < 100 || d > 30000) fail_msg("recovery backoff_ms(%d, %g) = %g", n, r, d);
        }
    }
    assert_true(recovery_backoff_ms(*g, 30, 1) == 30000);
    // Rate limits.
    const PolicyValue& rules = ratelimit_rules(*g);
    assert_int_equal(rules.size(), 3);
    const PolicyValue& af = rules.at(0);
    assert_string_equal(af["name"].as_string().c_str(), "auth_failures");
    assert_string_equal(af["match"]["auth"].as_string().c_str(), "failed");
    assert_string_equal(af["key"].as_string().c_str(), "ip");
    assert_true(af["limit"] == PolicyValue(10) && af["window_s"] == PolicyValue(60));
    assert_true(af["retry_after_s"] == PolicyValue(60));
    assert_true(af["block"]["threshold"] == PolicyValue(50) && af["block"]["window_s"] == PolicyValue(600) &&
                af["block"]["duration_s"] == PolicyValue(3600));
    assert_string_equal(rules.at(1)["key"].as_string().c_str(), "identity");
    assert_true(rules.at(1)["limit"] == PolicyValue(100));
    assert_string_equal(rules.at(2)["match"]["auth"].as_string().c_str(), "unauthenticated");
    assert_true(rules.at(2)["limit"] == PolicyValue(30));
    // The shipped rules are exactly the C++ defaults, and so is their JSON.
    assert_true(rules == defaults::ratelimit_rules());
    assert_string_equal(ratelimit_rules_json(*g).c_str(), defaults::ratelimit_rules().to_json().c_str());
    assert_int_equal(s.host.all_counters().policies.count("retry") ? s.host.counters("retry").errors : 0, 0);
}

// The C++ fallbacks say what the Lua files say, over a grid of inputs.
void test_defaults_match_lua(void**) {
    Shipped s;
    must(s.load());
    auto g = s.host.current();
    auto lua = [&](const char* policy, const char* fn, std::vector<PolicyValue> args) {
        CallResult r = g->try_call(policy, fn, args);
        if (!r.ok()) fail_msg("%s.%s: %s", policy, fn, r.error.c_str());
        return r.value;
    };
    for (int status : {0, 100, 199, 200, 204, 301, 399, 400, 404, 429, 499, 500, 503, 599, 600, 999}) {
        for (const char* err : {"", "timeout", "tls", "connect", "reset"}) {
            PolicyValue o = PolicyValue::object({{"status", status}, {"error", err}});
            assert_string_equal(lua("retry", "classify", {o}).as_string().c_str(),
                                defaults::classify({status, err}).c_str());
        }
    }
    for (const std::string& c : retry_classes()) {
        for (int n = 0; n <= 11; ++n) {
            for (bool idem : {true, false}) {
                assert_true(lua("retry", "should_retry", {c, n, idem}).as_bool() == defaults::should_retry(c, n, idem));
            }
        }
    }
    for (int n = -1; n <= 40; ++n) {
        for (double r : {0.0, 0.1, 0.25, 0.5, 0.77, 1.0}) {
            assert_true(lua("backoff", "delay_ms", {n, r}).as_number() == defaults::delay_ms(n, r));
            assert_true(lua("recovery", "backoff_ms", {n, r}).as_number() == defaults::recovery_backoff_ms(n, r));
        }
    }
    for (const char* task : {"rpc_client", "consensus", "gossip"}) {
        for (int f = 0; f <= 7; ++f) {
            for (double w : {30.0, 60.0, 61.0, 600.0}) {
                assert_string_equal(lua("recovery", "action", {task, f, w}).as_string().c_str(),
                                    defaults::recovery_action(task, f, w).c_str());
            }
        }
    }
}

void test_broken_edit_keeps_old_generation(void**) {
    Shipped s;
    must(s.load());
    auto before = s.host.current();
    s.dir.edit("retry.lua", "local MAX_ATTEMPTS = 10", "local MAX_ATTEMPTS = = 10");
    int line = s.dir.line_of("retry.lua", "local MAX_ATTEMPTS = = 10");
    LoadReport r = s.load();
    std::string e = only_error(r);
    expect_contains(e, "policy reload halted: " + s.dir.path + "/retry.lua:" + std::to_string(line) + ": ");
    expect_contains(e, "unexpected symbol near '='");
    assert_int_equal(r.generation, 1);
    assert_int_equal(s.host.generation_number(), 1);
    assert_true(s.host.current() == before);
    assert_int_equal(s.host.reloads_failed(), 1);
    // The old generation still answers from the old retry.lua.
    assert_string_equal(classify(*s.host.current(), {503, ""}).c_str(), "http_5xx");
    assert_int_equal(s.host.counters("retry").errors, 0);
}

void test_held_generation_survives_swap(void**) {
    Shipped s;
    must(s.load());
    std::shared_ptr<const Generation> held = s.host.current();
    std::weak_ptr<const Generation> watch = held;
    // An operator's edit: the number alone, the selftest checks invariants.
    s.dir.edit("backoff.lua", "local REQUEST_BUDGET_MS = 2500", "local REQUEST_BUDGET_MS = 3000");
    must(s.load());
    assert_int_equal(s.host.generation_number(), 2);
    assert_true(request_budget_ms(*s.host.current()) == 3000);
    // A request that started on generation 1 finishes on it.
    assert_int_equal(held->number(), 1);
    assert_true(request_budget_ms(*held) == 2500);
    assert_true(held->call("backoff", "budget_ms", {}, 0.0) == PolicyValue(2500));
    assert_true(backoff_delay_ms(*held, 2, 0.5) == 200);
    held.reset();
    assert_true(watch.expired());  // freed when its last user let go
}

void test_selftest_failure_refuses(void**) {
    Shipped s;
    must(s.load());
    // An edit that breaks an invariant (delays that shrink) is refused.
    s.dir.edit("backoff.lua", "local FACTOR = 2", "local FACTOR = 0.5");
    int line = s.dir.line_of("backoff.lua", "assert(lo >= previous_lo");
    std::string e = only_error(s.load());
    assert_string_equal(e.c_str(), ("policy reload halted: " + s.dir.path + "/backoff.lua:" + std::to_string(line) +
                                    ": selftest failed: delay_ms must not shrink as attempts grow")
                                       .c_str());
    assert_int_equal(s.host.generation_number(), 1);
    // A selftest that returns false, and one that never ends.
    s.dir.copy_shipped();
    s.dir.write("extra.lua", "return { selftest = function() return false, 'not today' end }\n");
    expect_contains(only_error(s.load()), "/extra.lua:1: selftest failed: not today");
    s.dir.write("extra.lua", "return {\n  selftest = function()\n    while true do end\n  end,\n}\n");
    expect_contains(only_error(s.load()),
                    "/extra.lua:3: selftest failed: instruction budget exceeded (1000000 instructions)");
    assert_int_equal(s.host.generation_number(), 1);
}

void test_entry_point_checks(void**) {
    Shipped s;
    s.dir.write("retry.lua", "local M = {}\nfunction M.classify(o) return 'success' end\nreturn M\n");
    std::string e = only_error(s.load());
    assert_string_equal(e.c_str(), ("policy reload halted: " + s.dir.path +
                                    "/retry.lua:3: missing entry point 'should_retry' (a function of 3 parameters)")
                                       .c_str());
    s.dir.write("retry.lua",
                "local M = {}\nfunction M.classify(o) return 'success' end\nM.should_retry = 5\nreturn M\n");
    expect_contains(only_error(s.load()), "entry point 'should_retry' must be a function, not a number");
    s.dir.write("retry.lua",
                "local M = {}\nfunction M.classify(o) return 5 end\n"
                "function M.should_retry(c, n, i) return false end\nreturn M\n");
    expect_contains(only_error(s.load()),
                    "/retry.lua:2: classify({\"status\":503}) returned a number; the host needs a string");
    s.dir.write("retry.lua",
                "local M = {}\nfunction M.classify(o) return 'maybe' end\n"
                "function M.should_retry(c, n, i) return false end\nreturn M\n");
    expect_contains(only_error(s.load()), "returned \"maybe\", which is not a known value");
    s.dir.write("retry.lua",
                "local M = {}\nfunction M.classify(o) return 'success' end\n"
                "function M.should_retry(c, n, i, extra) return false end\nreturn M\n");
    expect_contains(only_error(s.load()), "/retry.lua:3: should_retry declares 4 parameters; the host passes 3");
    s.dir.write("retry.lua", "return 42\n");
    expect_contains(only_error(s.load()), "/retry.lua:1: the file must return a table of entry points, not a number");
    s.dir.remove("retry.lua");
    expect_contains(only_error(s.load()), "/retry.lua: missing; the host requires this policy");
    assert_int_equal(s.host.generation_number(), 0);
    assert_int_equal(s.host.reloads_failed(), 7);
}

void test_rule_validation(void**) {
    Shipped s;
    s.dir.edit("ratelimit.lua", "limit = 10,", "limit = 0,");
    int line = s.dir.line_of("ratelimit.lua", "function M.rules()");
    assert_string_equal(only_error(s.load()).c_str(),
                        ("policy reload halted: " + s.dir.path + "/ratelimit.lua:" + std::to_string(line) +
                         ": rules()[1] (auth_failures): limit must be an integer between 1 and 1000000000")
                            .c_str());
    s.dir.copy_shipped();
    s.dir.edit("ratelimit.lua", "shadow = false,", "shadow = false, colour = 'red',");
    expect_contains(only_error(s.load()), "unknown field 'colour' in a rule (allowed: allow_cidrs, block, burst,");
    s.dir.copy_shipped();
    s.dir.edit("ratelimit.lua", "key = \"identity\"", "key = \"ip\"");
    s.dir.edit("ratelimit.lua", "key = \"ip\"", "key = \"identity\"");
    expect_contains(only_error(s.load()), "rules()[1] (auth_failures): key \"identity\" needs match.auth");
    s.dir.copy_shipped();
    s.dir.edit("ratelimit.lua", "allow_cidrs = {},", "allow_cidrs = { \"10.0.0.0/8\", \"::1\", \"300.1.1.1/8\" },");
    expect_contains(only_error(s.load()), "allow_cidrs: \"300.1.1.1/8\" is not an address or CIDR block");
    s.dir.copy_shipped();
    s.dir.edit("ratelimit.lua", "allow_cidrs = {},", "allow_cidrs = { \"10.0.0.0/8\", \"fd00::/8\" },");
    s.dir.edit("ratelimit.lua", "burst = 10,", "");
    must(s.load());
    const PolicyValue& af = ratelimit_rules(*s.host.current()).at(0);
    assert_true(af["burst"] == PolicyValue(10));  // defaults to limit
    assert_string_equal(af["allow_cidrs"].to_json().c_str(), R"(["10.0.0.0/8","fd00::/8"])");
}

void test_directory_problems(void**) {
    PolicyHost host;
    expect_contains(only_error(host.load("/nonexistent/policies")),
                    "policy reload halted: /nonexistent/policies: cannot open the policy directory");
    Shipped s;
    s.dir.write("Bad-Name.lua", "return {}\n");
    expect_contains(only_error(s.load()), "/Bad-Name.lua: policy file names must match");
    s.dir.remove("Bad-Name.lua");
    s.dir.write(".hidden.lua", "this is not lua");
    s.dir.write("notes.lua.bak", "nor this");
    must(s.load());
    // Every broken file is reported, not only the first.
    s.dir.write("a.lua", "return {");
    s.dir.write("b.lua", "x = 1");
    LoadReport r = s.load();
    assert_false(r.ok);
    assert_int_equal(r.errors.size(), 2);
}

void test_check_does_not_swap(void**) {
    Shipped s;
    LoadReport r = s.host.check(s.dir.path);
    must(r);
    assert_int_equal(s.host.generation_number(), 0);
    assert_int_equal(s.host.reloads_ok(), 0);
    s.dir.write("retry.lua", "return {");
    assert_false(s.host.check(s.dir.path).ok);
    assert_int_equal(s.host.reloads_failed(), 0);
}

// Before any successful load: generation 0, and every answer is a default.
void test_generation_zero_uses_defaults(void**) {
    PolicyHost host;
    auto g = host.current();
    assert_non_null(g.get());
    assert_int_equal(g->number(), 0);
    assert_true(backoff_delay_ms(*g, 3, 0.5) == 400);
    assert_string_equal(classify(*g, {503, ""}).c_str(), "http_5xx");
    assert_true(request_budget_ms(*g) == 2500);
    assert_true(ratelimit_rules(*g) == defaults::ratelimit_rules());
    assert_int_equal(host.counters("backoff").missing, 1);
    assert_int_equal(host.counters("retry").errors, 1);
}

// A policy that loads but fails at run time: the C++ default answers.
void test_runtime_failure_uses_default(void**) {
    Shipped s;
    s.dir.write("backoff.lua",
                "local M = {}\nfunction M.delay_ms(n, r)\n  if n > 5 then error('too far') end\n"
                "  return 100 * 2 ^ (n - 1)\nend\nfunction M.budget_ms() return 2500 end\nreturn M\n");
    must(s.load());
    auto g = s.host.current();
    assert_true(backoff_delay_ms(*g, 2, 0.5) == 200);
    assert_true(backoff_delay_ms(*g, 6, 0.5) == 3200);  // defaults::delay_ms
    assert_int_equal(s.host.counters("backoff").runtime, 1);
    assert_string_equal(s.host.counters("backoff").last_error.c_str(),
                        (s.dir.path + "/backoff.lua:3: too far").c_str());
    // An answer outside the contract is refused too.
    s.dir.write("backoff.lua",
                "local M = {}\nfunction M.delay_ms() return -5 end\nfunction M.budget_ms() return 2500 end\n"
                "return M\n");
    must(s.load());
    assert_true(backoff_delay_ms(*s.host.current(), 1, 0) == 80);
    assert_int_equal(s.host.counters("backoff").bad_result, 1);
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_io_os_ffi_require),
        cmocka_unit_test(test_require_at_load_refused),
        cmocka_unit_test(test_bytecode_refused),
        cmocka_unit_test(test_globals_read_only),
        cmocka_unit_test(test_global_set_at_load_refused),
        cmocka_unit_test(test_string_metatable_locked),
        cmocka_unit_test(test_infinite_loop_at_load),
        cmocka_unit_test(test_infinite_loop_in_call),
        cmocka_unit_test(test_budget_cannot_be_swallowed),
        cmocka_unit_test(test_c_work_is_charged),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_limits_are_parameters),
        cmocka_unit_test(test_memory_bombs),
        cmocka_unit_test(test_memory_bomb_at_load),
        cmocka_unit_test(test_wrapped_allocator),
        cmocka_unit_test(test_string_find_bounded),
        cmocka_unit_test(test_errors_and_results),
        cmocka_unit_test(test_error_sink),
        cmocka_unit_test(test_value_json),
        cmocka_unit_test(test_shipped_policies_load),
        cmocka_unit_test(test_seed_numbers),
        cmocka_unit_test(test_defaults_match_lua),
        cmocka_unit_test(test_broken_edit_keeps_old_generation),
        cmocka_unit_test(test_held_generation_survives_swap),
        cmocka_unit_test(test_selftest_failure_refuses),
        cmocka_unit_test(test_entry_point_checks),
        cmocka_unit_test(test_rule_validation),
        cmocka_unit_test(test_directory_problems),
        cmocka_unit_test(test_check_does_not_swap),
        cmocka_unit_test(test_generation_zero_uses_defaults),
        cmocka_unit_test(test_runtime_failure_uses_default),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
