-- policies/ratelimit.lua through the real host.
local t = ...

local function rule(name)
  for _, r in ipairs(t.data("ratelimit", "rules")) do
    if r.name == name then return r end
  end
  error("no rule " .. name)
end

t.test("the seed's three rules", function()
  t.eq(rule("auth_failures"), {
    name = "auth_failures", match = { auth = "failed", route_class = "any" }, key = "ip",
    limit = 10, window_s = 60, burst = 10, retry_after_s = 60,
    block = { threshold = 50, window_s = 600, duration_s = 3600 }, shadow = false, allow_cidrs = {},
  })
  local a = rule("authenticated")
  t.eq({ a.key, a.limit, a.window_s, a.match.auth }, { "identity", 100, 60, "authenticated" })
  local u = rule("unauthenticated")
  t.eq({ u.key, u.limit, u.window_s, u.match.auth }, { "ip", 30, 60, "unauthenticated" })
end)

t.test("plugins get the same rules as JSON", function()
  local json = t.json("ratelimit", "rules")
  t.eq(json, t.shipped("rules_json"))
  assert(json:find('"name":"auth_failures"', 1, true), json)
  assert(json:find('"block":{"duration_s":3600,"threshold":50,"window_s":600}', 1, true), json)
  assert(json:find('"allow_cidrs":[]', 1, true), json)
end)

t.test("optional fields are filled in at load", function()
  local src = t.replace(t.source("ratelimit.lua"), "    burst = 30,\n", "")
  src = t.replace(src, "    retry_after_s = 0,\n    shadow = false,\n    allow_cidrs = {},\n  },\n}",
    "  },\n}")
  src = t.replace(src, 'match = { auth = "unauthenticated", route_class = "any" }',
    'match = { auth = "unauthenticated" }')
  local ok, errors = t.load({ ["ratelimit.lua"] = src })
  assert(ok, errors[1])
  local u = rule("unauthenticated")
  t.eq({ u.burst, u.retry_after_s, u.shadow, u.allow_cidrs, u.match.route_class }, { 30, 0, false, {}, "any" })
end)

t.test("a rule the plugin could not enforce refuses the reload", function()
  local bad = {
    { "limit = 100,", "limit = -1,", "rules()[2] (authenticated): limit must be an integer" },
    { 'key = "identity",', 'key = "cookie",', 'rules()[2] (authenticated): key must be "ip" or "identity"' },
    { "window_s = 600,", "window_s = 0,", "rules()[1] (auth_failures): block.window_s must be a number" },
    { "shadow = false,", 'shadow = "yes",', "rules()[1] (auth_failures): shadow must be a boolean" },
    { 'name = "authenticated",', 'name = "auth_failures",', "rules()[2] (auth_failures): duplicate rule name" },
    { 'auth = "failed"', 'auth = "maybe"', "rules()[1] (auth_failures): match.auth must be" },
  }
  for _, case in ipairs(bad) do
    local src = t.replace(t.source("ratelimit.lua"), case[1], case[2])
    local ok, errors, generation = t.load({ ["ratelimit.lua"] = src })
    assert(not ok, case[2] .. " loaded")
    t.eq(generation, 1, "the running generation after " .. case[2])
    assert(errors[1]:find("policy reload halted: " .. t.dir() .. "/ratelimit.lua:", 1, true), errors[1])
    assert(errors[1]:find(case[3], 1, true), errors[1])
  end
  -- The limits in force are still the good ones.
  t.eq(rule("authenticated").limit, 100)
end)
