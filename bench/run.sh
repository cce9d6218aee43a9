#!/bin/sh
# make bench: rampartd vs nginx on GET /health, alternating wrk rounds.
#
#   bench/run.sh [BUILD_DIR]        (default: build)
#
# Environment: BENCH_PAIRS (5), BENCH_SECONDS (10), BENCH_WARMUP (2, 0 = none),
# BENCH_CONNECTIONS (64), BENCH_THREADS (1), BENCH_KEEP=1 keeps the temporary
# directory (configs, server logs, raw wrk output).
#
# Everything runs on 127.0.0.1. The work is done by bench/http_vs_nginx.py,
# which stops what it starts; this wrapper owns the temporary directory, bounds
# the whole run with timeout(1), and on exit kills by PID whatever the helper
# recorded in $tmp/pids and is still alive (a backstop if the helper was killed).
# Exit status: 0 when the benchmark ran (its targets are informational).
set -eu

build_dir=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)

for tool in wrk python3 timeout; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool not found (make deps)" >&2; exit 1; }
done
[ -x /usr/sbin/nginx ] || { echo "bench: /usr/sbin/nginx not found (make deps)" >&2; exit 1; }
[ -x "$build_dir/rampartd" ] || { echo "bench: $build_dir/rampartd not found (build first)" >&2; exit 1; }

pairs=${BENCH_PAIRS:-5}
seconds=${BENCH_SECONDS:-10}
warmup=${BENCH_WARMUP:-2}
case "$pairs$seconds$warmup" in *[!0-9]*|'') echo "bench: BENCH_PAIRS/SECONDS/WARMUP must be integers" >&2; exit 1 ;; esac
# Two wrk runs per pair plus the warm-ups, each with slack, plus start/stop.
limit=$(( pairs * 2 * (seconds + 15) + 2 * (warmup + 15) + 60 ))

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rampart-bench.XXXXXX")
helper=""
# shellcheck disable=SC2317,SC2013  # called from the EXIT trap; PIDs are one word each
cleanup() {
    status=$?
    trap - EXIT INT TERM HUP
    if [ -n "$helper" ] && kill -0 "$helper" 2>/dev/null; then
        kill -TERM "$helper" 2>/dev/null || true
        wait "$helper" 2>/dev/null || true
    fi
    if [ -f "$tmp/pids" ]; then
        # Backstop: anything the helper started and did not stop. Only PIDs it
        # recorded, and only while they still run one of the programs it
        # starts (so a recycled PID is left alone).
        left=""
        for pid in $(cat "$tmp/pids"); do
            case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
                rampartd|nginx|wrk) kill -TERM "$pid" 2>/dev/null && left="$left $pid" ;;
            esac
        done
        if [ -n "$left" ]; then
            sleep 1
            for pid in $left; do
                case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
                    rampartd|nginx|wrk) kill -KILL "$pid" 2>/dev/null || true ;;
                esac
            done
        fi
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "bench: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Run the helper in the background and wait, so a signal to this shell runs the
# trap at once instead of after the helper ends.
timeout --signal=TERM --kill-after=20 "$limit" \
    python3 "$here/http_vs_nginx.py" --build "$build_dir" --tmpdir "$tmp" &
helper=$!
rc=0
wait "$helper" || rc=$?
helper=""
if [ "$rc" = 124 ]; then
    echo "bench: the run exceeded its ${limit}s bound" >&2
fi
exit "$rc"
