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

function M.selftest()
  local cases = {
    { { status = 200 }, "success" },
    { { status = 304 }, "success" },
    { { status = 404 }, "http_4xx" },
    { { status = 429 }, "http_4xx" },
    { { status = 503 }, "http_5xx" },
    { { status = 0, error = "connect" }, "network_error" },
    { { error = "reset" }, "network_error" },
    { { error = "tls" }, "tls_error" },
    { { error = "timeout" }, "timeout" },
    { {}, "network_error" },
  }
  for i, c in ipairs(cases) do
    local got = M.classify(c[1])
    assert(got == c[2], "classify case " .. i .. ": got " .. got)
  end
  for _, class in ipairs({ "network_error", "http_5xx", "timeout" }) do
    assert(M.should_retry(class, 1, true), class .. " is retryable")
    assert(M.should_retry(class, 9, true), class .. " is retried up to attempt 10")
    assert(not M.should_retry(class, 10, true), "at most 10 attempts")
    assert(not M.should_retry(class, 1, false), "not idempotent: no retry")
  end
  for _, class in ipairs({ "success", "tls_error", "http_4xx", "bogus" }) do
    assert(not M.should_retry(class, 1, true), class .. " is not retryable")
  end
  return true
end

return M
