-- How the supervisor restarts a failed internal task.
-- Seed: anna phase 2 M2 (restart immediate / backoff / circuit breaker;
-- backoff floor 100 ms, ceiling 30 s, jitter ±25 %). The contract is in
-- docs/policies.md.
--
-- action(task, failures, window_s): failures = failures of `task` counted
--   over the last window_s seconds (including the one being handled).
-- backoff_ms(attempt, rand01): the wait before restart number `attempt`.
-- cooldown_ms(task, times_opened): how long an open breaker waits before
--   its one trial restart (half-open).
-- Recovery decisions (each has a safe default in C++, used when a call fails):
-- on_plugin_failure(plugin, task): a plugin's background task tripped its
--   breaker: "disable" (leave it stopped, alert, keep serving) or
--   "fail_closed" (refuse API requests with 503 until the breaker closes).
-- on_quorum_loss(): a read that needs the leader arrives while the cluster
--   has none: "refuse" (503) or "serve_stale" (answer from this node).
-- on_disk_full(): free space fell below node.min_free_bytes on the leader:
--   "transfer" (hand leadership to a voter with room) or "stay" (keep it;
--   writes are refused either way).
-- on_pin_mismatch(peer): a peer's certificate did not match its pin:
--   seconds to refuse dialling it before trying again.

local FLOOR_MS = 100
local CEILING_MS = 30000
local JITTER = 0.25 -- ±25 %

-- immediate_max: failures restarted at once; breaker_at: failures within
-- window_s that open the circuit breaker (false: never, keep backing off);
-- cooldown_s: how long an open breaker waits before its trial restart.
-- Tasks are named as `rampartctl breaker list` shows them.
local TASKS = {
  default = { immediate_max = 1, breaker_at = 5, window_s = 60, cooldown_s = 30 },
  consensus = { immediate_max = 1, breaker_at = false, window_s = 60, cooldown_s = 30 },
}

local M = {}

function M.action(task, failures, window_s)
  local t = TASKS[task] or TASKS.default
  local n = tonumber(failures) or 1
  local w = tonumber(window_s) or math.huge
  if n <= t.immediate_max then return "immediate" end
  if t.breaker_at and n >= t.breaker_at and w <= t.window_s then return "circuit_breaker" end
  return "backoff"
end

function M.backoff_ms(attempt, rand01)
  local n = tonumber(attempt) or 1
  if n ~= n or n < 1 then n = 1 end
  n = math.floor(n)
  local r = tonumber(rand01) or 0.5
  if r ~= r then r = 0.5 end
  r = math.min(math.max(r, 0), 1)
  local delay = FLOOR_MS * 2 ^ (n - 1)
  if delay > CEILING_MS then delay = CEILING_MS end
  delay = delay * (1 + JITTER * (2 * r - 1))
  -- The floor and the ceiling bound the jittered delay too.
  return math.floor(math.min(math.max(delay, FLOOR_MS), CEILING_MS) + 0.5)
end

function M.cooldown_ms(task, times_opened) -- luacheck: no unused args
  local t = TASKS[task] or TASKS.default
  return (t.cooldown_s or TASKS.default.cooldown_s) * 1000
end

-- Plugins whose background work the node cannot run without: a failure of
-- theirs refuses requests rather than carry on without them.
local FAIL_CLOSED_PLUGINS = {}

function M.on_plugin_failure(plugin, task) -- luacheck: no unused args
  if FAIL_CLOSED_PLUGINS[plugin] then return "fail_closed" end
  return "disable"
end

-- Consistency first: without a leader a read may be stale, so refuse it;
-- clients that accept stale data ask for it with ?stale.
function M.on_quorum_loss()
  return "refuse"
end

function M.on_disk_full()
  return "transfer"
end

function M.on_pin_mismatch(peer) -- luacheck: no unused args
  return 60
end

M.tasks = TASKS
M.fail_closed_plugins = FAIL_CLOSED_PLUGINS

-- Invariants: actions are known ones, the consensus task is never cut off
-- by a breaker, and backoff delays are positive and bounded by the
-- jittered ceiling. The thresholds themselves are the operator's to edit.
function M.selftest()
  local known = { immediate = true, backoff = true, circuit_breaker = true }
  for failures = 1, 20 do
    assert(known[M.action("rpc_client", failures, 60)], "unknown action for " .. failures .. " failures")
    assert(M.action("consensus", failures, 60) ~= "circuit_breaker", "consensus is never cut off")
  end
  for opened = 1, 5 do
    assert(M.cooldown_ms("rpc_client", opened) > 0, "cooldown_ms must be positive")
  end
  local plugin = { disable = true, fail_closed = true }
  assert(plugin[M.on_plugin_failure("metrics", "metrics.push")], "unknown on_plugin_failure answer")
  assert(({ refuse = true, serve_stale = true })[M.on_quorum_loss()], "unknown on_quorum_loss answer")
  assert(({ transfer = true, stay = true })[M.on_disk_full()], "unknown on_disk_full answer")
  assert(M.on_pin_mismatch("node_2") >= 0, "on_pin_mismatch must not be negative")
  local cap = CEILING_MS * (1 + JITTER)
  for attempt = 1, 30 do
    local lo, hi = M.backoff_ms(attempt, 0), M.backoff_ms(attempt, 1)
    assert(lo > 0 and lo <= hi and hi <= cap + 1, "backoff_ms(" .. attempt .. ") out of bounds")
  end
  return true
end

return M
