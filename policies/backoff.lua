-- Backoff between the attempts of an outbound peer request.
-- Seed: anna phase 1.11 §2 (base 100 ms, factor 2, jitter ±20 %, max 5 s,
-- 10 attempts, 2.5 s per request). The contract is in docs/policies.md.
--
-- delay_ms(attempt, rand01): the wait before retry number `attempt`
-- (1 = the first retry, the seed's "attempt 2"). rand01 is a uniform random
-- number in [0, 1] from the host, so the same inputs give the same delay.
-- budget_ms(): the time one attempt may take before it counts as a timeout.

local BASE_MS = 100
local FACTOR = 2
local JITTER = 0.20 -- ±20 %
local MAX_MS = 5000 -- the cap applies before jitter: capped delays are 4-6 s
local REQUEST_BUDGET_MS = 2500

local M = {}

local function clamp01(x)
  if type(x) ~= "number" or x ~= x then return 0.5 end
  if x < 0 then return 0 end
  if x > 1 then return 1 end
  return x
end

function M.delay_ms(attempt, rand01)
  local n = tonumber(attempt) or 1
  if n ~= n or n < 1 then n = 1 end
  n = math.floor(n)
  local delay = BASE_MS * FACTOR ^ (n - 1)
  if delay > MAX_MS then delay = MAX_MS end
  return math.floor(delay * (1 + JITTER * (2 * clamp01(rand01) - 1)) + 0.5)
end

function M.budget_ms()
  return REQUEST_BUDGET_MS
end

-- Invariants any sensible edit keeps (the seed's exact numbers are checked
-- by the tests, not here, so an operator may change them): delays are
-- positive, grow with the attempt, stay within the jittered cap, and jitter
-- stays inside [lo, hi].
function M.selftest()
  local cap = MAX_MS * (1 + JITTER)
  local previous_lo = 0
  for n = 1, 30 do
    local lo, mid, hi = M.delay_ms(n, 0), M.delay_ms(n, 0.5), M.delay_ms(n, 1)
    assert(lo > 0 and lo <= mid and mid <= hi, "delay_ms(" .. n .. "): jitter out of order")
    assert(hi <= cap + 1, "delay_ms(" .. n .. ") = " .. hi .. " exceeds the cap")
    assert(lo >= previous_lo, "delay_ms must not shrink as attempts grow")
    previous_lo = lo
  end
  assert(M.budget_ms() > 0, "the per-request budget must be positive")
  return true
end

return M
