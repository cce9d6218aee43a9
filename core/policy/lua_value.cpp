#include "policy/lua_value.h"

#include <cmath>
#include <cstdio>

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

namespace rampart::policy {

namespace {

void push_at(lua_State* L, const PolicyValue& v, int depth) {
    if (depth > kMaxValueDepth) luaL_error(L, "value nested too deeply");
    luaL_checkstack(L, 3, "value nested too deeply");
    switch (v.kind()) {
        case PolicyValue::Kind::Nil: lua_pushnil(L); return;
        case PolicyValue::Kind::Bool: lua_pushboolean(L, v.as_bool()); return;
        case PolicyValue::Kind::Number: lua_pushnumber(L, v.as_number()); return;
        case PolicyValue::Kind::String: lua_pushlstring(L, v.as_string().data(), v.as_string().size()); return;
        case PolicyValue::Kind::Table: break;
    }
    const PolicyTable& t = v.as_table();
    lua_createtable(L, static_cast<int>(t.array.size()), static_cast<int>(t.fields.size()));
    for (size_t i = 0; i < t.array.size(); ++i) {
        push_at(L, t.array[i], depth + 1);
        lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
    for (const auto& [name, value] : t.fields) {
        lua_pushlstring(L, name.data(), name.size());
        push_at(L, value, depth + 1);
        lua_rawset(L, -3);
    }
}

struct Converter {
    lua_State* L;
    size_t items = 0;
    std::string* error;

    bool fail(std::string msg) {
        *error = std::move(msg);
        return false;
    }

    bool convert(int index, PolicyValue* out, int depth) {
        if (++items > kMaxValueItems) return fail("value has more than " + std::to_string(kMaxValueItems) + " items");
        switch (lua_type(L, index)) {
            case LUA_TNIL: *out = PolicyValue(); return true;
            case LUA_TBOOLEAN: *out = PolicyValue(lua_toboolean(L, index) != 0); return true;
            case LUA_TNUMBER: *out = PolicyValue(static_cast<double>(lua_tonumber(L, index))); return true;
            case LUA_TSTRING: {
                size_t len;
                const char* s = lua_tolstring(L, index, &len);
                *out = PolicyValue(std::string(s, len));
                return true;
            }
            case LUA_TTABLE: break;
            default: return fail(std::string("cannot convert a ") + luaL_typename(L, index) + " value");
        }
        if (depth >= kMaxValueDepth) return fail("table nested more than " + std::to_string(kMaxValueDepth) + " deep");
        luaL_checkstack(L, 4, "value nested too deeply");
        index = index < 0 ? lua_gettop(L) + index + 1 : index;
        PolicyTable t;
        size_t n = lua_objlen(L, index);
        if (n > kMaxValueItems) return fail("value has more than " + std::to_string(kMaxValueItems) + " items");
        t.array.resize(n);
        for (size_t i = 0; i < n; ++i) {
            lua_rawgeti(L, index, static_cast<int>(i + 1));
            bool ok = convert(-1, &t.array[i], depth + 1);
            lua_pop(L, 1);
            if (!ok) return false;
        }
        lua_pushnil(L);
        while (lua_next(L, index) != 0) {
            std::string key;
            if (lua_type(L, -2) == LUA_TSTRING) {
                size_t len;
                const char* s = lua_tolstring(L, -2, &len);
                key.assign(s, len);
            } else if (lua_type(L, -2) == LUA_TNUMBER) {
                double d = lua_tonumber(L, -2);
                if (d >= 1 && d <= static_cast<double>(n) && d == std::floor(d)) {
                    lua_pop(L, 1);
                    continue;  // already in the array part
                }
                char buf[32];
                if (d == std::floor(d) && std::fabs(d) < 1e15) {
                    (void)std::snprintf(buf, sizeof buf, "%.0f", d);
                } else {
                    (void)std::snprintf(buf, sizeof buf, "%.17g", d);
                }
                key = buf;
            } else {
                std::string type = luaL_typename(L, -2);
                lua_pop(L, 2);
                return fail("cannot convert a table key of type " + type);
            }
            PolicyValue value;
            bool ok = convert(-1, &value, depth + 1);
            lua_pop(L, 1);
            if (!ok) {
                lua_pop(L, 1);
                return false;
            }
            t.fields.emplace_back(std::move(key), std::move(value));
        }
        *out = PolicyValue(std::move(t));
        return true;
    }
};

}  // namespace

void push_value(lua_State* L, const PolicyValue& v) { push_at(L, v, 0); }

bool to_value(lua_State* L, int index, PolicyValue* out, std::string* error) {
    Converter c{L, 0, error};
    return c.convert(index, out, 0);
}

}  // namespace rampart::policy
