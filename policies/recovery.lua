-- How the supervisor restarts a failed internal task.
-- Seed: anna phase 2 M2 (restart immediate / backoff / circuit breaker;
-- backoff floor 100 ms, ceiling 30 s, jitter ±25 %). The contract is in
-- docs/policies.md.
--
-- action(task, failures, window_s): failures = failures of `task` counted
--   over the last window_s seconds (including the one being handled).
-- backoff_ms(attempt, rand01): the wait before restart number `attempt`.

local FLOOR_MS = 100
local CEILING_MS = 30000
local JITTER = 0.25 -- ±25 %

-- immediate_max: failures restarted at once; breaker_at: failures within
-- window_s that open the circuit breaker (false: never, keep backing off).
local TASKS = {
  default = { immediate_max = 1, breaker_at = 5, window_s = 60 },
  consensus = { immediate_max = 1, breaker_at = false, window_s = 60 },
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

M.tasks = TASKS

function M.selftest()
  assert(M.action("rpc_client", 1, 60) == "immediate")
  assert(M.action("rpc_client", 2, 60) == "backoff")
  assert(M.action("rpc_client", 5, 60) == "circuit_breaker")
  assert(M.action("rpc_client", 5, 600) == "backoff", "5 failures over 10 min are not a burst")
  assert(M.action("consensus", 50, 60) == "backoff", "consensus is never cut off")
  assert(M.backoff_ms(1, 0) == 100 and M.backoff_ms(1, 1) == 125)
  assert(M.backoff_ms(2, 0) == 150 and M.backoff_ms(2, 1) == 250)
  assert(M.backoff_ms(20, 0) == 22500 and M.backoff_ms(20, 1) == 30000)
  return true
end

return M
