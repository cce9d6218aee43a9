#!/bin/sh
# make bench, in six parts, each printing its own section:
#   1. rampartd vs nginx on GET /health, alternating wrk rounds (bench/http_vs_nginx.py);
#   2. the plugin chain: rampartd without plugins vs with [ratelimit, idempotency,
#      metrics], alternating wrk rounds (bench/plugin_chain.py);
#   3. the rate-limit decision micro-benchmark (bench/ratelimit_decision.py);
#   4. TLS: rampartd + transport_tls vs nginx with the same certificate, alternating
#      rounds of keep-alive HTTPS (wrk), resumed handshakes (openssl s_time -reuse)
#      and full handshakes (openssl s_time -new) (bench/tls_vs_nginx.py);
#   5. the KV store vs a one-member etcd (Debian's etcd-server), alternating wrk
#      rounds of PUT and GET, plus RSS after 10,000 keys (bench/kv_vs_etcd.py; data
#      under /var/tmp, a real disk);
#   6. a 3-node cluster (mutual TLS on the peer port) vs a 3-member etcd: PUT and GET
#      in alternating wrk rounds, kill -9 of the leader (time to a write and to a new
#      leader), RSS per node after 10,000 keys (bench/cluster_vs_etcd.py).
#
#   bench/run.sh [BUILD_DIR]        (default: build)
#
# Environment: BENCH_PAIRS (5), BENCH_SECONDS (10), BENCH_WARMUP (2, 0 = none),
# BENCH_CONNECTIONS (64), BENCH_THREADS (1) for parts 1, 2 and 4 (BENCH_SECONDS is
# also s_time's -time in part 4); BENCH_DECISIONS
# (10000000) for part 3; BENCH_KEEP=1 keeps the temporary directory (configs,
# server logs, raw wrk output); BENCH_FAILOVERS (5) for part 6; BENCH_PARTS
# ("1 2 3 4 5 6") the parts to run, by number.
#
# Everything runs on 127.0.0.1. The helpers (Python, shared code in
# bench/benchlib.py) stop what they start; this wrapper owns the temporary
# directory, bounds each part with timeout(1), and on exit kills by PID whatever
# a helper recorded in $tmp/pids and is still alive (a backstop if a helper was
# killed). Exit status: 0 when every part ran (the targets are informational);
# otherwise the status of the first part that failed, after running the others.
set -eu

build_dir=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)

for tool in wrk python3 timeout openssl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool not found (make deps)" >&2; exit 1; }
done
[ -x /usr/sbin/nginx ] || { echo "bench: /usr/sbin/nginx not found (make deps)" >&2; exit 1; }
[ -x "$build_dir/rampartd" ] || { echo "bench: $build_dir/rampartd not found (build first)" >&2; exit 1; }

parts=${BENCH_PARTS:-1 2 3 4 5 6}
case "$parts" in *[!1-6\ ]*|'') echo "bench: BENCH_PARTS must list part numbers 1-6" >&2; exit 1 ;; esac
pairs=${BENCH_PAIRS:-5}
seconds=${BENCH_SECONDS:-10}
warmup=${BENCH_WARMUP:-2}
case "$pairs$seconds$warmup" in *[!0-9]*|'') echo "bench: BENCH_PAIRS/SECONDS/WARMUP must be integers" >&2; exit 1 ;; esac
# Per wrk part: two wrk runs per pair plus the warm-ups, each with slack, plus start/stop.
limit=$(( pairs * 2 * (seconds + 15) + 2 * (warmup + 15) + 60 ))
decision_limit=300
# Part 5: four workloads of alternating pairs, plus the fsync probes, the RSS loads and start/stop.
kv_limit=$(( 4 * pairs * 2 * (seconds + 15) + 240 ))
# Part 6: the same four workloads, the failovers (each with a restart and a settle) and the start-up.
failovers=${BENCH_FAILOVERS:-5}
case "$failovers" in *[!0-9]*|'') echo "bench: BENCH_FAILOVERS must be an integer" >&2; exit 1 ;; esac
cluster_limit=$(( 4 * pairs * 2 * (seconds + 15) + 2 * failovers * 60 + 300 ))
# Part 4: three sections (wrk, s_time -reuse, s_time -new) of that size, plus the certificates.
tls_limit=$(( 3 * (pairs * 2 * (seconds + 15) + 2 * (warmup + 15)) + 120 ))

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
                rampartd|nginx|wrk|openssl|bench_ratelimit|etcd) kill -TERM "$pid" 2>/dev/null && left="$left $pid" ;;
            esac
        done
        if [ -n "$left" ]; then
            sleep 1
            for pid in $left; do
                case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
                    rampartd|nginx|wrk|openssl|bench_ratelimit|etcd) kill -KILL "$pid" 2>/dev/null || true ;;
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

# run_part TITLE LIMIT COMMAND...: one part under timeout(1), in the background so
# that a signal to this shell runs the trap at once instead of after the part ends.
# The first failing part's status becomes the script's; the other parts still run.
rc=0
run_part() {
    title=$1 bound=$2
    shift 2
    case " $parts " in *" ${title%%/*} "*) ;; *) printf '\n==== %s: skipped (BENCH_PARTS=%s) ====\n' "$title" "$parts"; return 0 ;; esac
    printf '\n==== %s ====\n' "$title"
    timeout --signal=TERM --kill-after=20 "$bound" "$@" &
    helper=$!
    part_rc=0
    wait "$helper" || part_rc=$?
    helper=""
    if [ "$part_rc" = 124 ]; then
        echo "bench: $title: the run exceeded its ${bound}s bound" >&2
    elif [ "$part_rc" != 0 ]; then
        echo "bench: $title: failed (exit status $part_rc)" >&2
    fi
    [ "$rc" != 0 ] || rc=$part_rc
}

run_part "1/6 rampartd vs nginx (bench/http_vs_nginx.py)" "$limit" \
    python3 "$here/http_vs_nginx.py" --build "$build_dir" --tmpdir "$tmp"
run_part "2/6 plugin chain: no plugins vs ratelimit+idempotency+metrics (bench/plugin_chain.py)" "$limit" \
    python3 "$here/plugin_chain.py" --build "$build_dir" --tmpdir "$tmp"
run_part "3/6 rate-limit decision (bench/ratelimit_decision.py)" "$decision_limit" \
    python3 "$here/ratelimit_decision.py" --build "$build_dir" --pidfile "$tmp/pids" \
    --timeout $(( decision_limit - 10 ))
run_part "4/6 TLS: rampartd+transport_tls vs nginx, same certificate (bench/tls_vs_nginx.py)" "$tls_limit" \
    python3 "$here/tls_vs_nginx.py" --build "$build_dir" --tmpdir "$tmp"
run_part "5/6 KV store: rampartd vs etcd (bench/kv_vs_etcd.py)" "$kv_limit" \
    python3 "$here/kv_vs_etcd.py" --build "$build_dir" --tmpdir "$tmp"
run_part "6/6 3-node cluster vs 3-member etcd (bench/cluster_vs_etcd.py)" "$cluster_limit" \
    python3 "$here/cluster_vs_etcd.py" --build "$build_dir" --tmpdir "$tmp"
exit "$rc"
