-- policies/retry.lua through the real host.
local t = ...

local CLASSES = { "success", "network_error", "tls_error", "http_4xx", "http_5xx", "timeout" }
local RETRYABLE = { network_error = true, http_5xx = true, timeout = true }

t.test("outcomes map to the seed's classes", function()
  local cases = {
    { 200, "", "success" }, { 201, "", "success" }, { 302, "", "success" },
    { 400, "", "http_4xx" }, { 401, "", "http_4xx" }, { 429, "", "http_4xx" },
    { 500, "", "http_5xx" }, { 503, "", "http_5xx" },
    { 0, "connect", "network_error" }, { 0, "reset", "network_error" }, { 0, "dns", "network_error" },
    { 0, "tls", "tls_error" }, { 0, "timeout", "timeout" }, { 0, "", "network_error" },
    { 700, "", "network_error" },
  }
  for _, c in ipairs(cases) do
    t.eq(t.call("retry", "classify", { { status = c[1], error = c[2] } }, "?"), c[3],
      ("classify{status=%d, error=%q}"):format(c[1], c[2]))
    t.eq(t.shipped("classify", c[1], c[2]), c[3])
  end
end)

t.test("network_error, http_5xx and timeout are retried, 10 attempts at most", function()
  for _, class in ipairs(CLASSES) do
    for attempt = 1, 11 do
      local expected = RETRYABLE[class] == true and attempt < 10
      t.eq(t.call("retry", "should_retry", { class, attempt, true }, nil), expected,
        ("should_retry(%s, %d, true)"):format(class, attempt))
      t.eq(t.shipped("should_retry", class, attempt, true), expected)
    end
  end
end)

t.test("requests that are not idempotent are not retried", function()
  for _, class in ipairs(CLASSES) do
    t.eq(t.call("retry", "should_retry", { class, 1, false }, nil), false, class)
  end
end)

t.test("max_attempts is exported as data", function()
  t.eq(t.data("retry", "max_attempts"), 10)
end)

t.test("an unknown class from an edited policy falls back to the default", function()
  local src = t.replace(t.source("retry.lua"), 'if status >= 500 and status <= 599 then return "http_5xx" end',
    'if status == 502 then return "gateway" end\n  if status >= 500 and status <= 599 then return "http_5xx" end')
  local ok, errors = t.load({ ["retry.lua"] = src })
  assert(ok, errors[1])
  t.eq(t.shipped("classify", 502, ""), "http_5xx")
  local c = t.counters("retry")
  t.eq(c.bad_result, 1)
  assert(c.last_error:find('classify returned "gateway", not a retry class', 1, true), c.last_error)
end)
