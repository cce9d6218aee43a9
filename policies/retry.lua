-- Which outbound request failures are retried.
-- Seed: anna phase 1.11 §2 (classes success / network_error / tls_error /
-- http_4xx / http_5xx / timeout; network_error, http_5xx and timeout are
-- retryable; 10 attempts). The contract is in docs/policies.md.
--
-- classify(outcome): outcome = { status = <HTTP status or 0>, error = <""
--   or "timeout", "tls", or any other transport error name> }.
-- should_retry(class, attempt, method_is_idempotent): attempt = attempts
--   made so far (1 after the first failure).

local MAX_ATTEMPTS = 10

local RETRYABLE = {
  network_error = true,
  http_5xx = true,
  timeout = true,
}

local M = {}

function M.classify(outcome)
  if type(outcome) ~= "table" then return "network_error" end
  local err = outcome.error
  if err == "timeout" then return "timeout" end
  if err == "tls" then return "tls_error" end
  if err ~= nil and err ~= "" then return "network_error" end
  local status = tonumber(outcome.status) or 0
  if status >= 200 and status <= 399 then return "success" end
  if status >= 400 and status <= 499 then return "http_4xx" end
  if status >= 500 and status <= 599 then return "http_5xx" end
  return "network_error" -- no response, or not a valid status
end

function M.should_retry(class, attempt, method_is_idempotent)
  if not RETRYABLE[class] then return false end
  -- A request that is not idempotent may have been applied already.
  if method_is_idempotent ~= true then return false end
  local n = tonumber(attempt)
  if not n or n ~= n then return false end
  return n < MAX_ATTEMPTS
end

M.max_attempts = MAX_ATTEMPTS

-- Per-peer limits; the state itself lives in C++ (docs/policies.md).
-- budget: a gRPC-style retry throttle. Each failed attempt spends a token,
--   each success puts `refill` back, and retries go out only while more
--   than half of `tokens` are left: a peer that keeps failing is tried once
--   per request, never in a retry storm.
-- breaker: `failures` within `window_s` open the peer's circuit breaker;
--   requests to it then fail fast until `cooldown_s` has passed, when one
--   trial goes through; its success closes the breaker.
M.budget = { tokens = 10, refill = 0.1 }
M.breaker = { failures = 5, window_s = 60, cooldown_s = 30 }

-- Invariants: every outcome gets a known class, success and TLS errors are
-- never retried, non-idempotent requests are never retried, and attempts
-- are bounded. Which classes are retryable is the operator's to edit.
function M.selftest()
  local known = { success = true, network_error = true, tls_error = true, http_4xx = true,
                  http_5xx = true, timeout = true }
  local outcomes = { { status = 200 }, { status = 404 }, { status = 503 }, { error = "connect" },
                     { error = "tls" }, { error = "timeout" }, {} }
  for i, o in ipairs(outcomes) do
    local class = M.classify(o)
    assert(known[class], "classify case " .. i .. ": unknown class " .. tostring(class))
  end
  assert(M.classify({ status = 200 }) == "success", "200 is a success")
  for class in pairs(known) do
    assert(not M.should_retry(class, 1, false), class .. ": a non-idempotent request is never retried")
    assert(not M.should_retry(class, 1000, true), class .. ": attempts must be bounded")
  end
  assert(not M.should_retry("success", 1, true), "a success is not retried")
  assert(not M.should_retry("tls_error", 1, true), "a TLS failure is not retried")
  return true
end

return M
