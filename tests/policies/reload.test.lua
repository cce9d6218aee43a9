-- Reload semantics through the real host: all or nothing, file:line errors,
-- generations held by requests in flight.
local t = ...

local function expect_contains(s, needle)
  if not s:find(needle, 1, true) then error(("expected %q in %q"):format(needle, s), 2) end
end

t.test("a bad script keeps the old generation", function()
  t.eq(t.generation(), 1)
  local src = t.replace(t.source("retry.lua"), "local MAX_ATTEMPTS = 10", "local MAX_ATTEMPTS = = 10")
  local ok, errors, generation = t.load({ ["retry.lua"] = src })
  t.eq(ok, false)
  t.eq(#errors, 1)
  -- "policy reload halted: <dir>/retry.lua:<line>: <what>"
  expect_contains(errors[1], "policy reload halted: " .. t.dir() .. "/retry.lua:")
  expect_contains(errors[1], ": unexpected symbol near '='")
  t.eq(generation, 1)
  t.eq(t.generation(), 1)
  -- The old policies still answer, without errors.
  t.eq(t.shipped("classify", 503, ""), "http_5xx")
  t.eq(t.call("retry", "should_retry", { "timeout", 1, true }, false), true)
  t.eq(t.counters("retry").errors, 0)
  local good, failed = t.reloads()
  t.eq({ good, failed }, { 1, 1 })
end)

t.test("the error names the line", function()
  local src = "local M = {}\n\nfunction M.classify(o)\n  return o.status\nend\n\nlocal = 1\nreturn M\n"
  local ok, errors = t.load({ ["retry.lua"] = src })
  t.eq(ok, false)
  expect_contains(errors[1], t.dir() .. "/retry.lua:7: ")
end)

t.test("every broken file is reported, and nothing is swapped", function()
  local ok, errors = t.load({
    ["retry.lua"] = "return {",
    ["backoff.lua"] = "leak = true\nreturn {}\n",
    ["recovery.lua"] = false,
  })
  t.eq(ok, false)
  t.eq(#errors, 3)
  expect_contains(errors[1], "/backoff.lua:1: attempt to set global 'leak'")
  expect_contains(errors[2], "/retry.lua:1: ")
  expect_contains(errors[3], "/recovery.lua: missing; the host requires this policy")
  t.eq(t.generation(), 1)
end)

t.test("a generation held by a request stays valid after a swap", function()
  local h = t.hold()
  local src = t.replace(t.source("backoff.lua"), "local REQUEST_BUDGET_MS = 2500", "local REQUEST_BUDGET_MS = 4000")
  local ok, errors = t.load({ ["backoff.lua"] = src })
  assert(ok, errors[1])
  t.eq(t.generation(), 2)
  t.eq(t.call("backoff", "budget_ms", {}, 0), 4000)
  t.eq(t.held_number(h), 1)
  t.eq(t.call_held(h, "backoff", "budget_ms", {}, 0), 2500)
  t.eq(t.call_held(h, "backoff", "delay_ms", { 3, 0.5 }, 0), 400)
  t.release(h)
end)

t.test("a failing selftest refuses the load", function()
  -- An edit that breaks an invariant: a breaker on the consensus task.
  local src = t.replace(t.source("recovery.lua"), "consensus = { immediate_max = 1, breaker_at = false",
    "consensus = { immediate_max = 1, breaker_at = 5")
  local ok, errors = t.load({ ["recovery.lua"] = src })
  t.eq(ok, false)
  expect_contains(errors[1], "/recovery.lua:")
  expect_contains(errors[1], ": selftest failed: consensus is never cut off")
  t.eq(t.generation(), 1)
end)

t.test("a missing entry point refuses the load", function()
  local src = t.replace(t.source("recovery.lua"), "function M.backoff_ms(", "local function backoff_ms(")
  src = t.replace(src, "M.backoff_ms(attempt, 0), M.backoff_ms(attempt, 1)",
    "backoff_ms(attempt, 0), backoff_ms(attempt, 1)")
  local ok, errors = t.load({ ["recovery.lua"] = src })
  t.eq(ok, false)
  expect_contains(errors[1], "missing entry point 'backoff_ms' (a function of 2 parameters)")
end)

t.test("a policy that fails at run time falls back and is counted", function()
  local src = t.replace(t.source("recovery.lua"), "function M.action(task, failures, window_s)",
    "function M.action(task, failures, window_s)\n  if task == \"spin\" then while true do end end\n" ..
    "  if task == \"boom\" then error(\"boom\") end")
  local ok, errors = t.load({ ["recovery.lua"] = src })
  assert(ok, errors[1])
  t.eq(t.shipped("action", "spin", 9, 10), "circuit_breaker") -- the C++ default
  t.eq(t.shipped("action", "boom", 1, 10), "immediate")
  t.eq(t.shipped("action", "rpc_client", 3, 10), "backoff")
  local c = t.counters("recovery")
  t.eq({ c.calls, c.errors, c.budget, c.runtime }, { 3, 2, 1, 1 })
  expect_contains(c.last_error, t.dir() .. "/recovery.lua:")
  expect_contains(c.last_error, ": boom")
end)

t.test("extra policies load alongside the shipped ones", function()
  local ok, errors = t.load({
    ["greeting.lua"] = "return { hello = function(name) return 'hello ' .. name end, version = 3 }\n",
  })
  assert(ok, errors[1])
  t.eq(t.call("greeting", "hello", { "router" }, ""), "hello router")
  t.eq(t.data("greeting", "version"), 3)
  local ok2, value = t.try("greeting", "nope", {})
  t.eq(ok2, false)
  expect_contains(value, "no entry point 'nope'")
end)
