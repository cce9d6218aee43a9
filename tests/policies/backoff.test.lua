-- policies/backoff.lua through the real host (run by tests/unit/test_policy_scripts.cpp).
local t = ...

-- The seed's table, by retry number (the seed counts the first try too).
local SEED = {
  { 80, 120 }, { 160, 240 }, { 320, 480 }, { 640, 960 }, { 1280, 1920 },
  { 2560, 3840 }, { 4000, 6000 }, { 4000, 6000 }, { 4000, 6000 }, { 4000, 6000 },
}

t.test("delays stay within the seed's ranges", function()
  for n, range in ipairs(SEED) do
    for i = 0, 20 do
      local r = i / 20
      local d = t.call("backoff", "delay_ms", { n, r }, -1)
      assert(d >= range[1] and d <= range[2], ("delay_ms(%d, %g) = %g"):format(n, r, d))
    end
    t.eq(t.call("backoff", "delay_ms", { n, 0 }, -1), range[1], "low end of retry " .. n)
    t.eq(t.call("backoff", "delay_ms", { n, 1 }, -1), range[2], "high end of retry " .. n)
  end
end)

t.test("jitter comes from the caller, so delays are deterministic", function()
  for n = 1, 10 do
    t.eq(t.call("backoff", "delay_ms", { n, 0.37 }, -1), t.call("backoff", "delay_ms", { n, 0.37 }, -2))
  end
  -- Out-of-range randoms are clamped, never extend the range.
  t.eq(t.call("backoff", "delay_ms", { 1, -3 }, -1), 80)
  t.eq(t.call("backoff", "delay_ms", { 1, 7 }, -1), 120)
end)

t.test("2.5 s per request, captured at load", function()
  t.eq(t.data("backoff", "budget_ms"), 2500)
  t.eq(t.shipped("budget_ms"), 2500)
  t.eq(t.call("backoff", "budget_ms", {}, 0), 2500)
end)

t.test("the typed C++ call agrees with the policy", function()
  for n = 1, 12 do
    t.eq(t.shipped("delay_ms", n, 0.5), t.call("backoff", "delay_ms", { n, 0.5 }, -1))
  end
  t.eq(t.counters("backoff").errors, 0)
end)

t.test("an operator's edit takes effect on reload", function()
  local src = t.source("backoff.lua")
  src = t.replace(src, "local MAX_MS = 5000", "local MAX_MS = 2000")
  local ok, errors, generation = t.load({ ["backoff.lua"] = src })
  assert(ok, errors[1])
  t.eq(generation, 2)
  t.eq(t.shipped("delay_ms", 9, 1), 2400)
end)
