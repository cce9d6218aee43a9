#!/bin/sh
# clang-format (check only), clang-tidy on the core, luacheck on policies.
# Exits non-zero when any of them finds a problem.
set -u
cd "$(dirname "$0")/.."
status=0

echo "lint: clang-format"
files=$(git ls-files '*.cpp' '*.h' '*.c')
if ! clang-format --dry-run --Werror $files; then
    echo "lint: clang-format found differences (run: make format)"
    status=1
fi

echo "lint: clang-tidy"
[ -f build/compile_commands.json ] || meson setup build >/dev/null
# Test code is left to the tests (cmocka idioms trip the ownership checks).
tidy_files=$(git ls-files 'core/*.cpp' 'tools/*.cpp' 'plugins/*.cpp' | grep -v '/tests/')
if ! clang-tidy -p build --quiet $tidy_files 2>/dev/null | tee /tmp/rampart-tidy.log | grep -E 'warning:|error:'; then
    :
else
    echo "lint: clang-tidy reported problems (above)"
    status=1
fi

echo "lint: luacheck"
lua_files=$(git ls-files 'policies/*.lua' 'tests/policies/*.lua')
if [ -n "$lua_files" ]; then
    luacheck --no-color -q $lua_files || status=1
else
    echo "lint: no Lua files yet"
fi
[ $status = 0 ] && echo "lint: clean"
exit $status
