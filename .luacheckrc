-- Policies run in a sandbox with read-only globals: only the standard
-- functions the policy host allows are known here.
std = "luajit"
max_line_length = 120
files["policies/"] = { std = "min" }
