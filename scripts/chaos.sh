#!/bin/sh
# The long version of the cluster fault tests (tests/integration/test_cluster_faults.py):
# more rounds of each fault and longer client phases than `make test` runs.
# Usage: scripts/chaos.sh [BUILD_DIR]   (env: RAMPART_CHAOS_ROUNDS, default 5;
#        RAMPART_CHAOS_SECONDS, the client phase per round, default 8)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
export RAMPART_BUILD="$build"
export RAMPART_CHAOS_ROUNDS="${RAMPART_CHAOS_ROUNDS:-5}"
export RAMPART_CHAOS_SECONDS="${RAMPART_CHAOS_SECONDS:-8}"
export RAMPART_CHAOS_REPORT=1
cd "$root/tests/integration"
echo "chaos: $RAMPART_CHAOS_ROUNDS rounds, ${RAMPART_CHAOS_SECONDS}s client phases, build $build"
exec python3 -m unittest -v test_linearizability test_cluster_faults test_cluster_recover
