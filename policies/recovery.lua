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

-- Invariants: actions are known ones, the consensus task is never cut off
-- by a breaker, and backoff delays are positive and bounded by the
-- jittered ceiling. The thresholds themselves are the operator's to edit.
function M.selftest()
  local known = { immediate = true, backoff = true, circuit_breaker = true }
  for failures = 1, 20 do
    assert(known[M.action("rpc_client", failures, 60)], "unknown action for " .. failures .. " failures")
    assert(M.action("consensus", failures, 60) ~= "circuit_breaker", "consensus is never cut off")
  end
  local cap = CEILING_MS * (1 + JITTER)
  for attempt = 1, 30 do
    local lo, hi = M.backoff_ms(attempt, 0), M.backoff_ms(attempt, 1)
    assert(lo > 0 and lo <= hi and hi <= cap + 1, "backoff_ms(" .. attempt .. ") out of bounds")
  end
  return true
end

return M
