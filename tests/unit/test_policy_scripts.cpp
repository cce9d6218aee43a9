// Runs tests/policies/*.test.lua through the real policy host.
//
// Each script runs in the same sandbox as a policy (with bigger bounds) and
// gets one argument, `t`, the host's test API:
//   t.test(name, fn)                  register a test; fn raises to fail
//   t.load{["file.lua"] = text|false} reload: the shipped policies plus these
//                                     files (false deletes one); returns ok,
//                                     errors (list), generation number
//   t.generation()                    the running generation's number
//   t.call(policy, fn, args, fallback) Generation::call on the running one
//   t.try(policy, fn, args)           ok, value or error (Generation::try_call)
//   t.hold() -> h; t.call_held(h, policy, fn, args, fallback); t.held_number(h);
//   t.release(h)                      keep a generation as a request would
//   t.data(policy, key), t.json(policy, key)
//   t.shipped(name, ...)              the typed C++ calls of policy/shipped.h
//   t.counters(policy), t.reloads()   counters; reloads() returns ok, failed
//   t.source(file), t.dir()           a shipped file's text; the policy dir
//   t.replace(text, from, to)         plain replace of the first `from`
//   t.eq(actual, expected, what)      deep equality or an error showing both
// Every test starts from a fresh host with the shipped policies loaded
// (generation 1).
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "policy/lua_value.h"
#include "policy/policy_host.h"
#include "policy/sandbox.h"
#include "policy/shipped.h"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
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

const std::string kShipped = std::string(RAMPART_SOURCE_ROOT) + "/policies";

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct Runner {
    std::string dir;
    std::unique_ptr<PolicyHost> host;
    std::map<int, std::shared_ptr<const Generation>> held;
    int next_handle = 1;

    Runner() {
        char tmpl[] = "/tmp/rampart-policy-scripts-XXXXXX";
        dir = mkdtemp(tmpl);
    }
    ~Runner() { fs::remove_all(dir); }

    void write_policies(const std::map<std::string, std::optional<std::string>>& overrides) {
        for (const auto& e : fs::directory_iterator(dir)) fs::remove_all(e.path());
        for (const auto& e : fs::directory_iterator(kShipped)) {
            if (e.path().extension() == ".lua") fs::copy_file(e.path(), dir / e.path().filename());
        }
        for (const auto& [name, text] : overrides) {
            if (text) {
                std::ofstream(dir + "/" + name, std::ios::binary) << *text;
            } else {
                fs::remove(dir + "/" + name);
            }
        }
    }

    void reset(Limits limits = {}) {
        held.clear();
        host = std::make_unique<PolicyHost>(limits);
        write_policies({});
        LoadReport r = host->load(dir);
        if (!r.ok) throw std::runtime_error("the shipped policies do not load: " + r.errors.front());
    }
};

Runner& runner(lua_State* L) { return *static_cast<Runner*>(lua_touserdata(L, lua_upvalueindex(1))); }

PolicyValue arg(lua_State* L, int index) {
    PolicyValue v;
    std::string err;
    if (!to_value(L, index, &v, &err)) luaL_error(L, "argument %d: %s", index, err.c_str());
    return v;
}

std::vector<PolicyValue> arg_list(lua_State* L, int index) {
    PolicyValue v = arg(L, index);
    return v.as_table().array;
}

int lt_load(lua_State* L) {
    Runner& r = runner(L);
    std::map<std::string, std::optional<std::string>> overrides;
    if (lua_istable(L, 1)) {
        lua_pushnil(L);
        while (lua_next(L, 1) != 0) {
            std::string name = luaL_checkstring(L, -2);
            if (lua_isstring(L, -1)) {
                overrides[name] = std::string(lua_tostring(L, -1));
            } else {
                overrides[name] = std::nullopt;
            }
            lua_pop(L, 1);
        }
    }
    r.write_policies(overrides);
    LoadReport report = r.host->load(r.dir);
    lua_pushboolean(L, report.ok);
    std::vector<PolicyValue> errors(report.errors.begin(), report.errors.end());
    push_value(L, PolicyValue::array(std::move(errors)));
    lua_pushnumber(L, static_cast<double>(report.generation));
    return 3;
}

int lt_generation(lua_State* L) {
    lua_pushnumber(L, static_cast<double>(runner(L).host->generation_number()));
    return 1;
}

int call_on(lua_State* L, const Generation& g, int first) {
    std::string policy = luaL_checkstring(L, first);
    std::string fn = luaL_checkstring(L, first + 1);
    std::vector<PolicyValue> args = arg_list(L, first + 2);
    push_value(L, g.call(policy, fn, args, arg(L, first + 3)));
    return 1;
}

int lt_call(lua_State* L) { return call_on(L, *runner(L).host->current(), 1); }

int lt_try(lua_State* L) {
    std::vector<PolicyValue> args = arg_list(L, 3);
    CallResult r = runner(L).host->current()->try_call(luaL_checkstring(L, 1), luaL_checkstring(L, 2), args);
    lua_pushboolean(L, r.ok());
    if (r.ok()) {
        push_value(L, r.value);
    } else {
        lua_pushstring(L, r.error.c_str());
    }
    return 2;
}

const Generation& held_generation(lua_State* L, int index) {
    Runner& r = runner(L);
    auto it = r.held.find(static_cast<int>(luaL_checkinteger(L, index)));
    if (it == r.held.end()) luaL_error(L, "no held generation %d", static_cast<int>(lua_tointeger(L, index)));
    return *it->second;
}

int lt_hold(lua_State* L) {
    Runner& r = runner(L);
    r.held[r.next_handle] = r.host->current();
    lua_pushinteger(L, r.next_handle++);
    return 1;
}

int lt_call_held(lua_State* L) { return call_on(L, held_generation(L, 1), 2); }

int lt_held_number(lua_State* L) {
    lua_pushnumber(L, static_cast<double>(held_generation(L, 1).number()));
    return 1;
}

int lt_release(lua_State* L) {
    runner(L).held.erase(static_cast<int>(luaL_checkinteger(L, 1)));
    return 0;
}

int lt_data(lua_State* L) {
    push_value(L, runner(L).host->current()->data(luaL_checkstring(L, 1), luaL_checkstring(L, 2)));
    return 1;
}

int lt_json(lua_State* L) {
    lua_pushstring(L, runner(L).host->current()->rules_json(luaL_checkstring(L, 1), luaL_checkstring(L, 2)).c_str());
    return 1;
}

int lt_shipped(lua_State* L) {
    const Generation& g = *runner(L).host->current();
    std::string name = luaL_checkstring(L, 1);
    auto num = [&](int i) { return luaL_checknumber(L, i); };
    auto integer = [&](int i) { return static_cast<int>(luaL_checkinteger(L, i)); };
    if (name == "classify") {
        RequestOutcome o{integer(2), luaL_optstring(L, 3, "")};
        lua_pushstring(L, classify(g, o).c_str());
    } else if (name == "should_retry") {
        lua_pushboolean(L, should_retry(g, luaL_checkstring(L, 2), integer(3), lua_toboolean(L, 4)));
    } else if (name == "delay_ms") {
        lua_pushnumber(L, backoff_delay_ms(g, integer(2), num(3)));
    } else if (name == "budget_ms") {
        lua_pushnumber(L, request_budget_ms(g));
    } else if (name == "action") {
        lua_pushstring(L, recovery_action(g, luaL_checkstring(L, 2), integer(3), num(4)).c_str());
    } else if (name == "backoff_ms") {
        lua_pushnumber(L, recovery_backoff_ms(g, integer(2), num(3)));
    } else if (name == "rules_json") {
        lua_pushstring(L, ratelimit_rules_json(g).c_str());
    } else {
        return luaL_error(L, "t.shipped: unknown function '%s'", name.c_str());
    }
    return 1;
}

int lt_counters(lua_State* L) {
    const PolicyCounters& c = runner(L).host->counters(luaL_checkstring(L, 1));
    push_value(L, PolicyValue::object({{"calls", c.calls},
                                       {"errors", c.errors},
                                       {"runtime", c.runtime},
                                       {"budget", c.budget},
                                       {"deadline", c.deadline},
                                       {"memory", c.memory},
                                       {"bad_result", c.bad_result},
                                       {"missing", c.missing},
                                       {"last_error", c.last_error}}));
    return 1;
}

int lt_reloads(lua_State* L) {
    lua_pushnumber(L, static_cast<double>(runner(L).host->reloads_ok()));
    lua_pushnumber(L, static_cast<double>(runner(L).host->reloads_failed()));
    return 2;
}

int lt_source(lua_State* L) {
    std::string name = luaL_checkstring(L, 1);
    std::string text;
    try {
        text = read_text(kShipped + "/" + name);
    } catch (const std::exception& e) {
        return luaL_error(L, "%s", e.what());
    }
    lua_pushlstring(L, text.data(), text.size());
    return 1;
}

int lt_dir(lua_State* L) {
    lua_pushstring(L, runner(L).dir.c_str());
    return 1;
}

int lt_replace(lua_State* L) {
    size_t n;
    const char* s = luaL_checklstring(L, 1, &n);
    std::string text(s, n), from = luaL_checkstring(L, 2), to = luaL_checkstring(L, 3);
    size_t at = text.find(from);
    if (at == std::string::npos) return luaL_error(L, "t.replace: \"%s\" not found", from.c_str());
    text.replace(at, from.size(), to);
    lua_pushlstring(L, text.data(), text.size());
    return 1;
}

int lt_eq(lua_State* L) {
    PolicyValue a = arg(L, 1), b = arg(L, 2);
    if (!(a == b)) {
        return luaL_error(L, "%s: got %s, expected %s", luaL_optstring(L, 3, "t.eq"), a.to_json().c_str(),
                          b.to_json().c_str());
    }
    return 0;
}

const char kTestsKey = 0;  // registry: the list of registered test functions

int lt_test(lua_State* L) {
    luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushlightuserdata(L, const_cast<char*>(&kTestsKey));
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, static_cast<int>(lua_objlen(L, -2)) + 1);
    return 0;
}

void push_api(lua_State* L, Runner* r) {
    const luaL_Reg api[] = {
        {"test", lt_test},
        {"load", lt_load},
        {"generation", lt_generation},
        {"call", lt_call},
        {"try", lt_try},
        {"hold", lt_hold},
        {"call_held", lt_call_held},
        {"held_number", lt_held_number},
        {"release", lt_release},
        {"data", lt_data},
        {"json", lt_json},
        {"shipped", lt_shipped},
        {"counters", lt_counters},
        {"reloads", lt_reloads},
        {"source", lt_source},
        {"dir", lt_dir},
        {"replace", lt_replace},
        {"eq", lt_eq},
    };
    lua_newtable(L);
    for (const luaL_Reg& f : api) {
        lua_pushlightuserdata(L, r);
        lua_pushcclosure(L, f.func, 1);
        lua_setfield(L, -2, f.name);
    }
}

void run_script(void** state) {
    const std::string& path = *static_cast<const std::string*>(*state);
    const std::string name = fs::path(path).filename().string();
    std::string source = read_text(path);
    Runner r;
    std::string err;
    // The scripts' own state: the policy sandbox with generous bounds.
    std::unique_ptr<Sandbox> sb = Sandbox::create(64u << 20, &err);
    if (!sb) fail_msg("%s", err.c_str());
    const uint64_t budget = 1'000'000'000;
    const uint32_t deadline_ms = 60'000;

    std::vector<std::string> names;
    RunResult setup = sb->protect([&](lua_State* L) {
        lua_pushlightuserdata(L, const_cast<char*>(&kTestsKey));
        lua_newtable(L);
        lua_rawset(L, LUA_REGISTRYINDEX);
        RunResult c = sb->load(source, "@" + name);
        if (c.ok()) {
            push_api(L, &r);
            c = sb->call(1, 0, budget, deadline_ms);
        }
        if (!c.ok()) throw std::runtime_error(c.message);
        lua_pushlightuserdata(L, const_cast<char*>(&kTestsKey));
        lua_rawget(L, LUA_REGISTRYINDEX);
        for (size_t i = 1; i <= lua_objlen(L, -1); ++i) {
            lua_rawgeti(L, -1, static_cast<int>(i));
            lua_rawgeti(L, -1, 1);
            names.push_back(lua_tostring(L, -1));
            lua_pop(L, 2);
        }
    });
    if (!setup.ok()) fail_msg("%s: %s", name.c_str(), setup.message.c_str());
    if (names.empty()) fail_msg("%s registers no tests", name.c_str());

    int failed = 0;
    for (size_t i = 0; i < names.size(); ++i) {
        RunResult result;
        RunResult outer = sb->protect([&](lua_State* L) {
            r.reset();
            lua_pushlightuserdata(L, const_cast<char*>(&kTestsKey));
            lua_rawget(L, LUA_REGISTRYINDEX);
            lua_rawgeti(L, -1, static_cast<int>(i + 1));
            lua_rawgeti(L, -1, 2);
            result = sb->call(0, 0, budget, deadline_ms);
        });
        if (!outer.ok()) result = outer;
        print_message("    %s %s: %s%s\n", result.ok() ? "ok  " : "FAIL", name.c_str(), names[i].c_str(),
                      result.ok() ? "" : ("\n         " + result.message).c_str());
        if (!result.ok()) ++failed;
    }
    if (failed) fail_msg("%s: %d of %zu tests failed", name.c_str(), failed, names.size());
}

}  // namespace

int main(void) {
    std::vector<std::string> scripts;
    for (const auto& e : fs::directory_iterator(std::string(RAMPART_SOURCE_ROOT) + "/tests/policies")) {
        std::string f = e.path().filename().string();
        if (f.size() > 9 && f.compare(f.size() - 9, 9, ".test.lua") == 0) scripts.push_back(e.path().string());
    }
    std::sort(scripts.begin(), scripts.end());
    std::vector<std::string> names;
    std::vector<CMUnitTest> tests;
    for (const std::string& s : scripts) names.push_back(fs::path(s).filename().string());
    for (size_t i = 0; i < scripts.size(); ++i) {
        tests.push_back(CMUnitTest{names[i].c_str(), run_script, nullptr, nullptr, &scripts[i]});
    }
    if (tests.empty()) {
        print_error("no tests/policies/*.test.lua found\n");
        return 1;
    }
    return _cmocka_run_group_tests("policy_scripts", tests.data(), tests.size(), nullptr, nullptr);
}
