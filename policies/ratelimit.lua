-- Rate-limit rules. The limits themselves (token buckets, blocks) run in C
-- in the ratelimit plugin, so a reload never resets them; this file only
-- says what to limit. Seed: nebulagc phase 3 task 00023. The contract and
-- the fields of a rule are in docs/policies.md.
--
-- The `ratelimit` config keys (RAMPART_RATELIMIT_*) override these numbers:
--   auth_failures_per_min   -> auth_failures.limit
--   auth_failures_block_min -> auth_failures.block.duration_s / 60
--   requests_per_min        -> authenticated.limit
--   unauth_per_min          -> unauthenticated.limit

local RULES = {
  {
    -- 10 failed authentications per minute from one address -> 429 with
    -- Retry-After: 60; 50 within 10 minutes -> blocked for an hour.
    name = "auth_failures",
    match = { auth = "failed", route_class = "any" },
    key = "ip",
    limit = 10,
    window_s = 60,
    burst = 10,
    retry_after_s = 60,
    block = { threshold = 50, window_s = 600, duration_s = 3600 },
    shadow = false,
    allow_cidrs = {},
  },
  {
    -- 100 requests per minute per authenticated identity.
    name = "authenticated",
    match = { auth = "authenticated", route_class = "any" },
    key = "identity",
    limit = 100,
    window_s = 60,
    burst = 100,
    retry_after_s = 0, -- 0: until the bucket has a token again
    shadow = false,
    allow_cidrs = {},
  },
  {
    -- 30 requests per minute per address for health checks and every
    -- other unauthenticated request.
    name = "unauthenticated",
    match = { auth = "unauthenticated", route_class = "any" },
    key = "ip",
    limit = 30,
    window_s = 60,
    burst = 30,
    retry_after_s = 0,
    shadow = false,
    allow_cidrs = {},
  },
}

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

local M = {}

-- A fresh copy each time: the host keeps what it gets at load.
function M.rules()
  return copy(RULES)
end

-- Invariants: every rule is well formed (the host validates the details
-- again), names are unique, and the three rules the ratelimit config keys
-- map onto exist. The numbers are the operator's to edit.
function M.selftest()
  local seen = {}
  for i, r in ipairs(M.rules()) do
    assert(type(r.name) == "string" and not seen[r.name], "rule " .. i .. ": missing or repeated name")
    seen[r.name] = true
    assert(r.key == "ip" or r.key == "identity", r.name .. ": key must be ip or identity")
    assert(type(r.limit) == "number" and r.limit > 0, r.name .. ": limit must be positive")
    assert(r.window_s == nil or r.window_s > 0, r.name .. ": window_s must be positive")
    assert(r.burst == nil or r.burst >= 1, r.name .. ": burst must be at least 1")
  end
  for _, name in ipairs({ "auth_failures", "authenticated", "unauthenticated" }) do
    assert(seen[name], "rule " .. name .. " is needed (the ratelimit config keys map onto it)")
  end
  return true
end

return M
