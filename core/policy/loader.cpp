#include "policy/loader.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <string_view>

#include "policy/lua_value.h"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

namespace rampart::policy {

namespace {

std::string cat(std::initializer_list<std::string_view> parts) {
    std::string out;
    for (std::string_view p : parts) out += p;
    return out;
}

// Short enough that Lua never abbreviates it in a message (LUA_IDSIZE).
bool valid_file_name(const std::string& f) {
    std::string stem = f.substr(0, f.size() - 4);
    if (f.size() > 48 || stem.empty() || !((stem[0] >= 'a' && stem[0] <= 'z') || stem[0] == '_')) return false;
    return std::all_of(stem.begin(), stem.end(),
                       [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

bool read_file(const std::string& path, std::string* out, std::string* error) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *error = std::string("cannot open: ") + std::strerror(errno);
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *error = "not a regular file";
        return false;
    }
    if (static_cast<size_t>(st.st_size) > kMaxPolicyFileBytes) {
        close(fd);
        *error = "larger than " + std::to_string(kMaxPolicyFileBytes) + " bytes";
        return false;
    }
    out->clear();
    char buf[16384];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0 && out->size() <= kMaxPolicyFileBytes) out->append(buf, n);
    int saved = errno;
    close(fd);
    if (n < 0) {
        *error = std::string("cannot read: ") + std::strerror(saved);
        return false;
    }
    return true;
}

// The line of the last non-blank line: where the returned table usually is,
// so that is where problems with the table as a whole are reported.
int last_line(const std::string& src) {
    int line = 1, last = 1;
    bool blank = true;
    for (char c : src) {
        if (c == '\n') {
            if (!blank) last = line;
            ++line;
            blank = true;
        } else if (c != ' ' && c != '\t' && c != '\r') {
            blank = false;
        }
    }
    if (!blank) last = line;
    return last;
}

int line_defined(lua_State* L, int index) {
    lua_Debug ar;
    lua_pushvalue(L, index);
    if (!lua_getinfo(L, ">S", &ar) || ar.linedefined <= 0) return 1;
    return ar.linedefined;
}

std::string join_args(const std::vector<PolicyValue>& args) {
    std::string out;
    for (const auto& a : args)
        out += (out.empty() ? "" : ", ") + (a.is_string() ? "\"" + a.as_string() + "\"" : a.to_json());
    return out;
}

}  // namespace

std::unique_ptr<Generation> GenerationBuilder::empty() const {
    std::unique_ptr<Generation> g(new Generation());
    g->limits_ = limits_;
    g->counters_ = counters_;
    return g;
}

std::unique_ptr<Generation> GenerationBuilder::build(const std::string& dir_in, uint64_t number,
                                                     std::vector<std::string>* errors) const {
    std::string dir = dir_in;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    if (dir.empty()) dir = ".";
    size_t before = errors->size();

    std::vector<std::string> files;
    DIR* dp = opendir(dir.c_str());
    if (!dp) {
        errors->push_back(dir + ": cannot open the policy directory: " + std::strerror(errno));
        return nullptr;
    }
    while (dirent* e = readdir(dp)) {
        std::string f = e->d_name;
        if (f.size() > 4 && f[0] != '.' && f.compare(f.size() - 4, 4, ".lua") == 0) files.push_back(f);
    }
    closedir(dp);
    std::sort(files.begin(), files.end());

    std::unique_ptr<Generation> g = empty();
    g->number_ = number;
    g->dir_ = dir;
    std::string err;
    g->sandbox_ = Sandbox::create(limits_.memory_bytes, &err);
    if (!g->sandbox_) {
        errors->push_back(dir + ": " + err);
        return nullptr;
    }
    for (const std::string& f : files) {
        if (!valid_file_name(f)) {
            errors->push_back(
                cat({dir, "/", f, ": policy file names must match [a-z_][a-z0-9_]*.lua (48 characters at most)"}));
            continue;
        }
        load_file(*g, dir, f, errors);
    }
    for (const PolicySpec& spec : specs_) {
        if (std::find(files.begin(), files.end(), spec.name + ".lua") != files.end()) continue;
        std::string entries;
        for (const auto& e : spec.entries) entries += cat({entries.empty() ? "" : ", ", e.name});
        errors->push_back(cat({dir, "/", spec.name, ".lua: missing; the host requires this policy (", entries, ")"}));
    }
    if (files.empty() && specs_.empty()) errors->push_back(dir + ": no policies (*.lua)");
    if (errors->size() != before) return nullptr;
    g->sandbox_->protect([](lua_State* L) { lua_gc(L, LUA_GCCOLLECT, 0); });
    return g;
}

void GenerationBuilder::load_file(Generation& g, const std::string& dir, const std::string& file,
                                  std::vector<std::string>* errors) const {
    const std::string path = dir + "/" + file;
    const std::string name = file.substr(0, file.size() - 4);
    std::string source, read_error;
    if (!read_file(path, &source, &read_error)) {
        errors->push_back(path + ": " + read_error);
        return;
    }
    const int end_line = last_line(source);
    const PolicySpec* spec = nullptr;
    for (const PolicySpec& s : specs_) {
        if (s.name == name) spec = &s;
    }
    Sandbox& sb = *g.sandbox_;
    Generation::Policy pol;
    pol.path = path;
    size_t before = errors->size();
    auto fail = [&](int line, const std::string& msg) {
        errors->push_back(path + ":" + std::to_string(line) + ": " + msg);
    };
    // A Lua message already carries "file.lua:line: "; `what` goes after it.
    auto fail_lua = [&](int line, const std::string& what, const std::string& msg) {
        size_t colon =
            msg.compare(0, file.size() + 1, file + ":") == 0 ? msg.find(": ", file.size() + 1) : std::string::npos;
        if (colon == std::string::npos) return fail(line, what + msg);
        errors->push_back(dir + "/" + msg.substr(0, colon + 2) + what + msg.substr(colon + 2));
    };
    const uint64_t budget = limits_.load_instructions;
    const uint32_t deadline = limits_.load_deadline_ms;

    RunResult run = sb.protect([&](lua_State* L) {
        RunResult r = sb.load(source, "@" + file);
        if (r.ok()) r = sb.call(0, 1, budget, deadline);
        if (!r.ok()) return fail_lua(1, "", r.message);
        if (!lua_istable(L, -1)) {
            return fail(end_line,
                        std::string("the file must return a table of entry points, not a ") + luaL_typename(L, -1));
        }
        const int module = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, module) != 0) {
            if (lua_type(L, -2) != LUA_TSTRING) {
                lua_settop(L, module);
                return fail(end_line, "the returned table must have string keys only");
            }
            std::string key = lua_tostring(L, -2);
            if (lua_isfunction(L, -1)) {
                lua_pushvalue(L, -1);
                pol.functions[key] = luaL_ref(L, LUA_REGISTRYINDEX);
            } else {
                PolicyValue v;
                std::string e;
                if (!to_value(L, -1, &v, &e)) {
                    lua_settop(L, module);
                    return fail(end_line, cat({"field '", key, "': ", e}));
                }
                pol.data[key] = std::move(v);
            }
            lua_pop(L, 1);
        }
        if (!spec) return;
        for (const EntryPoint& e : spec->entries) {
            lua_pushstring(L, e.name.c_str());
            lua_rawget(L, module);
            int nparams = 0;
            bool vararg = false;
            if (lua_isnil(L, -1)) {
                fail(end_line, "missing entry point '" + e.name + "' (a function of " + std::to_string(e.params) +
                                   " parameters)");
            } else if (!lua_isfunction(L, -1)) {
                fail(end_line, "entry point '" + e.name + "' must be a function, not a " + luaL_typename(L, -1));
            } else if (sb.function_arity(-1, &nparams, &vararg) && nparams > e.params) {
                fail(line_defined(L, -1), e.name + " declares " + std::to_string(nparams) +
                                              " parameters; the host passes " + std::to_string(e.params));
            }
            lua_pop(L, 1);
        }
    });
    if (!run.ok()) fail_lua(1, "", run.message);
    if (errors->size() != before) return;

    // Captures, probes and the selftest: each its own run under the load budget.
    auto run_entry = [&](const std::string& fn, const std::string& label, const std::vector<PolicyValue>& args,
                         int nresults, std::vector<PolicyValue>* results, int* line) {
        RunResult r = sb.protect([&](lua_State* L) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, pol.functions.at(fn));
            *line = line_defined(L, -1);
            for (const auto& a : args) push_value(L, a);
            RunResult c = sb.call(static_cast<int>(args.size()), nresults, budget, deadline);
            if (!c.ok()) return fail_lua(*line, label, c.message);
            for (int i = 0; i < nresults; ++i) {
                PolicyValue v;
                std::string e;
                if (!to_value(L, -nresults + i, &v, &e)) return fail(*line, cat({fn, " returned ", e}));
                results->push_back(std::move(v));
            }
        });
        if (!r.ok()) fail_lua(*line, label, r.message);
    };
    if (spec) {
        for (const EntryPoint& e : spec->entries) {
            if (!e.capture && !e.probe) continue;
            std::vector<PolicyValue> out;
            int line = 1;
            size_t n = errors->size();
            run_entry(e.name, e.name + ": ", e.capture ? std::vector<PolicyValue>{} : e.probe_args, 1, &out, &line);
            if (errors->size() != n) continue;
            PolicyValue& v = out.front();
            std::string call = e.name + "(" + join_args(e.probe_args) + ")";
            if (e.returns != PolicyValue::Kind::Nil && v.kind() != e.returns) {
                fail(line, call + " returned a " + PolicyValue::kind_name(v.kind()) + "; the host needs a " +
                               PolicyValue::kind_name(e.returns));
            } else if (v.is_number() && !std::isfinite(v.as_number())) {
                fail(line, call + " returned a number that is not finite");
            } else if (!e.one_of.empty() &&
                       std::find(e.one_of.begin(), e.one_of.end(), v.as_string()) == e.one_of.end()) {
                fail(line, call + " returned \"" + v.as_string() + "\", which is not a known value");
            } else if (e.capture) {
                std::string problem = spec->validate ? spec->validate(e.name, &v) : "";
                if (!problem.empty()) {
                    fail(line, problem);
                } else {
                    pol.data[e.name] = std::move(v);
                }
            }
        }
    }
    if (errors->size() == before && pol.functions.count("selftest")) {
        std::vector<PolicyValue> out;
        int line = 1;
        run_entry("selftest", "selftest failed: ", {}, 2, &out, &line);
        if (errors->size() == before && out.size() == 2 && out[0].is_bool() && !out[0].as_bool()) {
            fail(line, "selftest failed" + (out[1].is_string() ? ": " + out[1].as_string() : std::string()));
        }
    }
    if (errors->size() != before) return;
    g.policies_.emplace(name, std::move(pol));
}

}  // namespace rampart::policy
