-- policies/recovery.lua through the real host.
local t = ...

t.test("immediate, then backoff, then the circuit breaker", function()
  t.eq(t.call("recovery", "action", { "rpc_client", 1, 60 }, "?"), "immediate")
  for failures = 2, 4 do
    t.eq(t.call("recovery", "action", { "rpc_client", failures, 60 }, "?"), "backoff")
  end
  t.eq(t.call("recovery", "action", { "gossip", 5, 60 }, "?"), "circuit_breaker")
  t.eq(t.call("recovery", "action", { "gossip", 5, 3600 }, "?"), "backoff")
  t.eq(t.call("recovery", "action", { "consensus", 100, 10 }, "?"), "backoff")
  t.eq(t.shipped("action", "rpc_client", 7, 30), "circuit_breaker")
end)

t.test("restart backoff: floor 100 ms, ceiling 30 s, jitter 25 %", function()
  for n = 1, 40 do
    for i = 0, 10 do
      local d = t.call("recovery", "backoff_ms", { n, i / 10 }, -1)
      assert(d >= 100 and d <= 30000, ("backoff_ms(%d, %g) = %g"):format(n, i / 10, d))
    end
  end
  t.eq(t.call("recovery", "backoff_ms", { 3, 0 }, -1), 300)
  t.eq(t.call("recovery", "backoff_ms", { 3, 1 }, -1), 500)
  t.eq(t.shipped("backoff_ms", 40, 0.5), 30000)
end)

t.test("the task table is visible as data", function()
  local tasks = t.data("recovery", "tasks")
  t.eq(tasks.default.breaker_at, 5)
  t.eq(tasks.consensus.breaker_at, false)
end)

t.test("breaker cool-down and the recovery decisions", function()
  t.eq(t.call("recovery", "cooldown_ms", { "rpc_client", 1 }, -1), 30000)
  t.eq(t.call("recovery", "cooldown_ms", { "rpc_client", 7 }, -1), 30000)
  t.eq(t.call("recovery", "on_plugin_failure", { "metrics", "metrics.push" }, "?"), "disable")
  t.eq(t.call("recovery", "on_quorum_loss", {}, "?"), "refuse")
  t.eq(t.call("recovery", "on_disk_full", {}, "?"), "transfer")
  t.eq(t.call("recovery", "on_pin_mismatch", { "node_2" }, -1), 60)
  t.eq(t.data("recovery", "tasks").default.cooldown_s, 30)
end)

t.test("a decision outside the contract refuses the load", function()
  local src = t.replace(t.source("recovery.lua"), 'return "refuse"', 'return "panic"')
  local ok, errors = t.load({ ["recovery.lua"] = src })
  t.eq(ok, false)
  assert(errors[1]:find("on_quorum_loss", 1, true), errors[1])
end)
