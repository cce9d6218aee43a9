-- The sandbox seen from Lua: these scripts run in it too, and so do the
-- policies loaded through t.load.
local t = ...

t.test("scripts see only the allow-list", function()
  for _, name in ipairs({ "io", "os", "debug", "jit", "ffi", "package", "require", "load", "loadstring",
                          "loadfile", "dofile", "rawset", "getfenv", "setfenv", "newproxy", "collectgarbage",
                          "print" }) do
    t.eq(_G[name], nil, name)
  end
  t.eq(type(getmetatable("")), "string")
  local key = "leak"
  -- The write is the point of the test.
  assert(not pcall(function() _G[key] = 1 end), "globals are read-only") -- luacheck: ignore 122
  t.eq(_G[key], nil)
end)

t.test("a policy probing the sandbox at load is refused with file:line", function()
  local ok, errors = t.load({ ["probe.lua"] = "local M = {}\nlocal f = io.open('/etc/passwd')\nreturn M\n" })
  t.eq(ok, false)
  assert(errors[1]:find(t.dir() .. "/probe.lua:2: attempt to index global 'io' (a nil value)", 1, true), errors[1])
end)

t.test("budget and memory bounds hold in a loaded policy", function()
  local ok, errors = t.load({
    ["probe.lua"] = "return {\n  spin = function() while true do end end,\n" ..
      "  bomb = function() local s = 'x' while true do s = s .. s end end,\n}\n",
  })
  assert(ok, errors[1])
  t.eq(t.call("probe", "spin", {}, "fallback"), "fallback")
  t.eq(t.call("probe", "bomb", {}, "fallback"), "fallback")
  local c = t.counters("probe")
  t.eq(c.errors, 2)
  t.eq(c.budget + c.memory, 2)
end)
