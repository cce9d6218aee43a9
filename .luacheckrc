-- Policies run in a sandbox with read-only globals: only the standard
-- functions the policy host allows are known here (core/policy/sandbox.h).
std = "luajit"
max_line_length = 120

stds.rampart_policy = {
  read_globals = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall", "rawequal", "rawget", "select",
    "setmetatable", "getmetatable", "tonumber", "tostring", "type", "unpack", "_G", "_VERSION",
    string = { fields = { "byte", "char", "find", "format", "len", "lower", "rep", "reverse", "sub", "upper" } },
    table = { fields = { "concat", "insert", "remove", "sort" } },
    math = { fields = {
      "abs", "acos", "asin", "atan", "atan2", "ceil", "cos", "cosh", "deg", "exp", "floor", "fmod", "frexp",
      "huge", "ldexp", "log", "log10", "max", "min", "modf", "pi", "pow", "rad", "sin", "sinh", "sqrt", "tan",
      "tanh",
    } },
    bit = { fields = {
      "arshift", "band", "bnot", "bor", "bswap", "bxor", "lshift", "rol", "ror", "rshift", "tobit", "tohex",
    } },
    coroutine = { fields = { "create", "resume", "running", "status", "wrap", "yield" } },
  },
}
files["policies/"] = { std = "rampart_policy" }
-- The policy tests (tests/policies/*.test.lua) run in the same sandbox.
files["tests/policies/"] = { std = "rampart_policy" }
