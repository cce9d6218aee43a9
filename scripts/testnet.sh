#!/usr/bin/env bash
# testnet.sh [start|stop|status|restart-node N]
#
# A local 3-node rampart cluster on loopback with mutual TLS and SPKI pins
# (issue 6, "A local testnet"); `make testnet` / `make testnet-stop`.
#
#   start         generate a CA and node certificates, write each node's
#                 rampart.yml, peers.yml and pinned_certs.json (the other
#                 nodes' spki-sha256: pins), start the three nodes in the
#                 background on random free loopback ports, wait for a
#                 leader, write a key through it, read it back through every
#                 node (?stale), and leave them running. If the testnet is
#                 already running it says so and changes nothing.
#   stop          SIGTERM each node by the pid in the env file, wait, report.
#   status        which nodes run, and whether they are ready.
#   restart-node N  stop node N and start it again from its config and data
#                 (the pid is updated in the env file).
#
# Environment: RAMPART_TESTNET_DIR (default var/testnet), RAMPART_BUILD
# (default build; rampartd, rampartctl and plugins/ are taken from there),
# RAMPART_TESTNET_STOP_TIMEOUT (seconds from SIGTERM to SIGKILL, default 15).
# Layout: DIR/env (shell syntax: NODEn_API, NODEn_PEER, NODEn_PID, CERT_DIR,
# TOKEN, ...), DIR/certs/ (CA and node keys; ca.key stays here),
# DIR/node_N/{rampart.yml,peers.yml,pinned_certs.json,rampartd.log,
# rampartd.pid,data/}. Everything under DIR is generated: no secret is kept
# in git (var/ is ignored).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=3
DIR=${RAMPART_TESTNET_DIR:-var/testnet}
BUILD=${RAMPART_BUILD:-build}
case "$DIR" in /*) ;; *) DIR=$PWD/$DIR ;; esac
case "$BUILD" in /*) ;; *) BUILD=$(cd "$BUILD" 2>/dev/null && pwd || echo "$PWD/$BUILD") ;; esac
RAMPARTD=$BUILD/rampartd
RAMPARTCTL=$BUILD/rampartctl
ENV_FILE=$DIR/env
CERT_DIR=$DIR/certs
STOP_TIMEOUT=${RAMPART_TESTNET_STOP_TIMEOUT:-15}
TERM_AT=()

# shellcheck source=scripts/testnet-common.sh
. "$ROOT/scripts/testnet-common.sh"

say() { printf 'testnet: %s\n' "$*"; }
die() { printf 'testnet: %s\n' "$*" >&2; exit 1; }

# ---- helpers --------------------------------------------------------------

# running PID: the process exists and is not a zombie (reaped by whoever
# adopted it, which may be late)
running() {
    kill -0 "$1" 2>/dev/null || return 1
    [ "$(sed -n 's/^[0-9]* (.*) \([A-Z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# is_rampartd PID: the process is alive and is a rampartd
is_rampartd() {
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q rampartd
}

load_env() {
    [ -f "$ENV_FILE" ] || return 1
    # shellcheck disable=SC1090
    . "$ENV_FILE"
}

running_nodes() {  # prints the numbers of the nodes whose pid is a live rampartd
    local i
    for i in $(seq 1 $N); do
        if is_rampartd "$(node_var "$i" PID)"; then printf '%s ' "$i"; fi
    done
}

write_env() {  # write_env: DIR/env from the NODEn_* variables, atomically
    local i tmp=$ENV_FILE.tmp
    {
        echo "# rampart testnet ($N nodes, mutual TLS + spki-sha256 pins); source this file."
        echo "# Written by scripts/testnet.sh; the nodes' logs: \$TESTNET_DIR/node_N/rampartd.log"
        echo "TESTNET_DIR=$DIR"
        echo "RAMPART_BUILD=$BUILD"
        for i in $(seq 1 $N); do
            echo "NODE${i}_ID=node_$i"
            echo "NODE${i}_API=$(node_var "$i" API)"
            echo "NODE${i}_PEER=$(node_var "$i" PEER)"
            echo "NODE${i}_PID=$(node_var "$i" PID)"
            echo "NODE${i}_DIR=$DIR/node_$i"
        done
        echo "CERT_DIR=$CERT_DIR"
        echo "TOKEN=$TOKEN"
    } >"$tmp"
    chmod 600 "$tmp"
    mv -f "$tmp" "$ENV_FILE"
}

start_node() {  # start_node I: rampartd in the background, its pid in the pid file and NODEi_PID
    local i=$1 nd=$DIR/node_$1 pid unset_args=() v
    for v in $(env | sed -n 's/^\(RAMPART_[A-Z0-9_]*\)=.*/\1/p'); do unset_args+=(-u "$v"); done
    (
        cd "$nd"
        exec setsid env "${unset_args[@]}" "$RAMPARTD" -c "$nd/rampart.yml" </dev/null >>"$nd/rampartd.log" 2>&1
    ) &
    pid=$!
    echo "$pid" >"$nd/rampartd.pid"
    printf -v "NODE${i}_PID" '%s' "$pid"
}

wait_health() {  # wait_health I SECONDS
    local i=$1 deadline=$((SECONDS + $2))
    while [ $SECONDS -lt $deadline ]; do
        kill -0 "$(node_var "$i" PID)" 2>/dev/null || return 1
        [ "$(http GET "$(node_var "$i" API)" /health | cut -d' ' -f1)" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

term_node() {  # term_node I: SIGTERM node I if it runs (0), else say so (1)
    local i=$1 pid
    pid=$(node_var "$i" PID)
    if ! is_rampartd "$pid"; then
        say "node_$i: not running${pid:+ (pid $pid gone)}"
        rm -f "$DIR/node_$i/rampartd.pid"
        return 1
    fi
    kill -TERM "$pid"
    TERM_AT[$i]=$(date +%s%N)
}

# reap_nodes I...: wait up to STOP_TIMEOUT s from each SIGTERM for the nodes to
# exit (all watched together), SIGKILL what is left, report each
reap_nodes() {
    local i pid now left=("$@") still
    while [ ${#left[@]} -gt 0 ]; do
        still=()
        now=$(date +%s%N)
        for i in "${left[@]}"; do
            pid=$(node_var "$i" PID)
            local ds=$(((now - TERM_AT[i]) / 100000000))
            if ! running "$pid"; then
                say "node_$i: pid $pid stopped ($((ds / 10)).$((ds % 10)) s after SIGTERM)"
                rm -f "$DIR/node_$i/rampartd.pid"
            elif [ "$ds" -ge $((STOP_TIMEOUT * 10)) ]; then
                kill -KILL "$pid" 2>/dev/null || true
                local k=0
                while running "$pid" && [ $k -lt 50 ]; do sleep 0.1; k=$((k + 1)); done
                say "node_$i: pid $pid did not stop within $STOP_TIMEOUT s of SIGTERM: killed (see $DIR/node_$i/rampartd.log)"
                rm -f "$DIR/node_$i/rampartd.pid"
            else
                still+=("$i")
            fi
        done
        left=("${still[@]}")
        [ ${#left[@]} -gt 0 ] && sleep 0.1
    done
    return 0
}

stop_node() { if term_node "$1"; then reap_nodes "$1"; fi; }

free_ports() {  # free_ports COUNT: distinct free loopback ports
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

tails() {
    local i
    for i in $(seq 1 $N); do
        echo "---- node_$i: $DIR/node_$i/rampartd.log (last lines)" >&2
        tail -n 15 "$DIR/node_$i/rampartd.log" >&2 2>/dev/null || true
    done
}

# ---- commands -------------------------------------------------------------

cmd_start() {
    local i j running ports pin
    { [ -x "$RAMPARTD" ] && [ -x "$RAMPARTCTL" ]; } || die "no rampartd/rampartctl in $BUILD (build first: make build, or set RAMPART_BUILD)"
    [ -f "$BUILD/plugins/transport_tls.so" ] || die "no $BUILD/plugins/transport_tls.so (build first)"
    for c in openssl curl python3 setsid; do command -v $c >/dev/null || die "the $c command is needed"; done
    if load_env; then
        running=$(running_nodes)
        if [ -n "$running" ]; then
            say "already running (nodes: ${running% }) in $DIR; nothing changed. Stop it with: make testnet-stop"
            print_howto
            return 0
        fi
    fi
    # A fresh testnet: new certificates, configs, ports, token and data.
    rm -rf "$CERT_DIR" "$ENV_FILE" "$DIR"/node_*
    mkdir -p "$DIR"
    say "certificates: scripts/gen-certs.sh $CERT_DIR $N"
    "$ROOT/scripts/gen-certs.sh" "$CERT_DIR" "$N" 2>/dev/null
    TOKEN=$(openssl rand -hex 24)
    read -r -a ports <<<"$(free_ports $((2 * N)))"
    for i in $(seq 1 $N); do
        printf -v "NODE${i}_API" '127.0.0.1:%s' "${ports[$((2 * i - 2))]}"
        printf -v "NODE${i}_PEER" '127.0.0.1:%s' "${ports[$((2 * i - 1))]}"
    done
    (umask 077; for i in $(seq 1 $N); do mkdir -p "$DIR/node_$i/data"; done)
    for i in $(seq 1 $N); do
        local nd=$DIR/node_$i
        {
            echo "# node_$i of the local testnet (scripts/testnet.sh)"
            echo "node: {id: node_$i, data_dir: $nd/data}"
            echo "api: {listen: \"$(node_var "$i" API)\"}"
            echo "peer:"
            echo "  listen: \"$(node_var "$i" PEER)\""
            echo "  peers_file: $nd/peers.yml"
            echo "  pins_file: $nd/pinned_certs.json"
            echo "log: {level: info, format: json}"
            echo "plugins: {dir: $BUILD/plugins, load: [transport_tls, metrics]}"
            echo "policies: {dir: $ROOT/policies}"
            echo "auth: {enabled: true, bootstrap_token: \"$TOKEN\"}"
        } >"$nd/rampart.yml"
        chmod 600 "$nd/rampart.yml"
        {
            echo "allow_insecure_peers: false"
            echo "tls:"
            echo "  ca_cert: $CERT_DIR/ca.pem"
            echo "  server_cert: $CERT_DIR/node_$i.pem"
            echo "  server_key: $CERT_DIR/node_$i.key"
            echo "peers:"
            for j in $(seq 1 $N); do
                [ "$j" = "$i" ] && continue
                echo "  - {node_id: node_$j, address: 127.0.0.1, port: ${ports[$((2 * j - 1))]}}"
            done
        } >"$nd/peers.yml"
        echo '{"peers": {}, "report_only": false}' >"$nd/pinned_certs.json"
        for j in $(seq 1 $N); do
            [ "$j" = "$i" ] && continue
            pin=$("$RAMPARTCTL" pins compute "$CERT_DIR/node_$j.pem" | grep '^spki-sha256:') ||
                die "rampartctl pins compute $CERT_DIR/node_$j.pem failed"
            "$RAMPARTCTL" pins add "$nd/pinned_certs.json" "node_$j" "$pin" >/dev/null
        done
    done
    for i in $(seq 1 $N); do start_node "$i"; done
    write_env
    for i in $(seq 1 $N); do
        wait_health "$i" 20 || { tails; cmd_stop >&2; die "node_$i did not come up (see $DIR/node_$i/rampartd.log)"; }
        say "node_$i: pid $(node_var "$i" PID), api $(node_var "$i" API), peer $(node_var "$i" PEER)"
    done
    local value writer leader
    value="hello-$(date +%s)"
    writer=$(put_any testnet/hello "$value" 30) || { tails; cmd_stop >&2; die "no leader within 30 s: no node accepted a write"; }
    leader=$(leader_node)
    if [ -n "$leader" ]; then
        say "leader: node_$leader; wrote testnet/hello=$value through node_$writer"
    else
        say "a leader is elected: node_$writer took the write testnet/hello=$value"
    fi
    for i in $(seq 1 $N); do
        wait_value "$i" testnet/hello "$value" 15 || { tails; cmd_stop >&2; die "node_$i never returned testnet/hello"; }
        say "node_$i: read testnet/hello=$value (?stale)"
    done
    say "ready: $N nodes with mutual TLS and pins; env in $ENV_FILE"
    print_howto
}

print_howto() {
    local ctl="$RAMPARTCTL"
    case "$ctl" in "$ROOT"/*) ctl=${ctl#"$ROOT"/} ;; esac
    echo "try:"
    echo "  . $ENV_FILE"
    echo "  RAMPART_HTTP_ADDR=\$NODE1_API RAMPART_HTTP_TOKEN=\$TOKEN $ctl util ready"
    echo "  curl -s -H \"Authorization: Bearer \$TOKEN\" \"http://\$NODE2_API/v1/kv/testnet/hello?raw&stale\""
    local pre=""
    [ "$DIR" = "$ROOT/var/testnet" ] || pre="RAMPART_TESTNET_DIR=$DIR "
    echo "  ${pre}scripts/testnet-rounds.sh     # the pinned rounds (artifacts/testnet/)"
    if [ -n "$pre" ]; then echo "  ${pre}scripts/testnet.sh stop"; else echo "  make testnet-stop"; fi
}

cmd_stop() {
    local i
    if ! load_env; then
        say "no testnet in $DIR (no env file): nothing to stop"
        return 0
    fi
    local sent=()
    for i in $(seq 1 $N); do if term_node "$i"; then sent+=("$i"); fi; done
    [ ${#sent[@]} -eq 0 ] || reap_nodes "${sent[@]}"
    say "stopped; logs and data kept in $DIR"
}

cmd_status() {
    local i pid code rc=0
    load_env || { say "no testnet in $DIR"; return 1; }
    for i in $(seq 1 $N); do
        pid=$(node_var "$i" PID)
        if is_rampartd "$pid"; then
            code=$(http GET "$(node_var "$i" API)" /ready | cut -d' ' -f1)
            say "node_$i: pid $pid, api $(node_var "$i" API), peer $(node_var "$i" PEER), /ready $code"
        else
            say "node_$i: not running"
            rc=1
        fi
    done
    return $rc
}

cmd_restart_node() {
    local i=${1-}
    case "$i" in [1-9]) [ "$i" -le $N ] || die "no node $i" ;; *) die "usage: $0 restart-node N" ;; esac
    load_env || die "no testnet in $DIR"
    stop_node "$i"
    start_node "$i"
    write_env
    wait_health "$i" 20 || { tails; die "node_$i did not come back (see $DIR/node_$i/rampartd.log)"; }
    say "node_$i: restarted, pid $(node_var "$i" PID)"
}

case "${1:-start}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
restart-node) cmd_restart_node "${2-}" ;;
-h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//' ;;
*) echo "usage: $0 [start|stop|status|restart-node N]" >&2; exit 2 ;;
esac
