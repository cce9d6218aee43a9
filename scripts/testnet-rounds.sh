#!/usr/bin/env bash
# testnet-rounds.sh: the seed's pinned rounds against the running local
# testnet (`make testnet` first; issue 6, seed anna-phase-2 M5).
#
#   1. handshakes: every node's mutual-TLS handshakes with its pinned peers
#      succeed (rampart_tls_handshakes_total{result="ok"} grows, no pinning
#      violation) and a write replicates to every node;
#   2. rotation: one node (the target, a follower) gets a new key and
#      certificate by docs/tls.md's playbook, run as written (pin "next",
#      SIGHUP, install, SIGHUP, check, retire the old pin, SIGHUP); writes
#      replicate after every step;
#   3. wrong pin: the target's pins for its peers are replaced by wrong ones
#      and the target restarted (a reload keeps live connections by design,
#      so a restart forces new handshakes): its handshakes fail hard
#      (rampart_pinning_violations_total > 0, a masked fingerprint in its
#      log) and it stops receiving writes while the other two keep quorum;
#   4. fix: the right pins are written back and the target gets SIGHUP (no
#      restart): it reconnects, catches up, and new writes reach every node.
#
# Artifacts (replaced on every run) under RAMPART_TESTNET_ARTIFACTS (default
# artifacts/testnet): summary.txt, rounds.log (this script's output),
# round_N/ (metrics snapshots per node before/after, the round's log lines),
# logs/node_N.log (the nodes' full logs at the end).
# Exit 0 only if all four rounds pass. Every wait is bounded.
# Environment: RAMPART_TESTNET_DIR (default var/testnet), RAMPART_BUILD.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=3
DIR=${RAMPART_TESTNET_DIR:-var/testnet}
ART=${RAMPART_TESTNET_ARTIFACTS:-artifacts/testnet}
[ -f "$DIR/env" ] || { echo "testnet-rounds: no $DIR/env: start the testnet first (make testnet)" >&2; exit 1; }
# shellcheck disable=SC1091
. "$DIR/env"
BUILD=${RAMPART_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$(cd "$BUILD" && pwd) ;; esac
RAMPARTCTL=$BUILD/rampartctl
mkdir -p "$ART"
ART=$(cd "$ART" && pwd)
rm -rf "${ART:?}"/round_* "$ART/logs" "$ART/summary.txt" "$ART/rounds.log"
mkdir -p "$ART/logs"
exec > >(tee "$ART/rounds.log") 2>&1

# shellcheck source=scripts/testnet-common.sh
. "$ROOT/scripts/testnet-common.sh"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { log "FAIL: $*"; return 1; }

reload_env() { . "$DIR/env"; }

# replicates TAG [SKIP]: a write through a node that takes it reaches every node (but SKIP)
replicates() {
    local tag=$1 skip=${2-} value writer i
    value="$tag-$RANDOM$RANDOM"
    writer=$(put_any "rounds/$tag" "$value" 30 "$skip") || { fail "no node accepted a write of rounds/$tag within 30 s"; return 1; }
    for i in $(seq 1 $N); do
        [ "$i" = "$skip" ] && continue
        wait_value "$i" "rounds/$tag" "$value" 15 || { fail "rounds/$tag (written through node_$writer) never reached node_$i"; return 1; }
    done
    log "  write rounds/$tag through node_$writer replicated to every node${skip:+ but node_$skip}"
    LAST_KEY=rounds/$tag LAST_VALUE=$value
}

metrics() { curl -sS -m 3 "http://$(node_var "$1" API)/metrics" 2>/dev/null; }

snapshot() {  # snapshot ROUND NAME: every node's /metrics into round_ROUND/node_I.NAME.prom
    local i
    mkdir -p "$ART/round_$1"
    for i in $(seq 1 $N); do metrics "$i" >"$ART/round_$1/node_$i.$2.prom" || true; done
}

# msum I NAME [LABEL...]: the sum of a metric's samples on node I that carry every LABEL (k="v")
msum() {
    local i=$1 name=$2
    shift 2
    metrics "$i" | awk -v name="$name" -v filt="$*" '
        /^#/ { next }
        {
            split($1, a, "{"); if (a[1] != name) next
            n = split(filt, f, " "); for (k = 1; k <= n; k++) if (index($1, f[k]) == 0) next
            s += $NF
        }
        END { printf "%d\n", s }'
}

log_lines() { wc -l <"$(node_var "$1" DIR)/rampartd.log"; }
log_since() { tail -n +"$(($2 + 1))" "$(node_var "$1" DIR)/rampartd.log"; }
reloads() { grep -c '"transport material reloaded"' "$(node_var "$1" DIR)/rampartd.log" || true; }

wait_reload() {  # wait_reload I BEFORE: node I logged a new "transport material reloaded"
    local deadline=$((SECONDS + 10))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(reloads "$1")" -gt "$2" ] && return 0
        sleep 0.1
    done
    fail "node_$1 did not reload its transport material within 10 s"
}

# handshake FROM TO: a fresh mutual-TLS handshake to node TO's peer port with
# node FROM's certificate (the node id checked like a dialling node does)
handshake() {
    timeout 10 openssl s_client -connect "$(node_var "$2" PEER)" -CAfile "$CERT_DIR/ca.pem" \
        -cert "$CERT_DIR/node_$1.pem" -key "$CERT_DIR/node_$1.key" -verify_hostname "node_$2" \
        -verify_return_error </dev/null >/dev/null 2>&1
}

spki_pin() { "$RAMPARTCTL" pins compute "$1" | grep '^spki-sha256:'; }

all_running() {
    local i
    for i in $(seq 1 $N); do kill -0 "$(node_var "$i" PID)" 2>/dev/null || { fail "node_$i (pid $(node_var "$i" PID)) is not running"; return 1; }; done
}

# Pinning violation counters are per process since its start: rounds compare before/after.
violations_before() {
    local i
    for i in $(seq 1 $N); do VIOLATIONS[$i]=$(msum "$i" rampart_pinning_violations_total); done
}
no_new_violations() {
    local i now
    for i in $(seq 1 $N); do
        now=$(msum "$i" rampart_pinning_violations_total)
        [ "$now" = "${VIOLATIONS[$i]}" ] || { fail "node_$i counted $((now - VIOLATIONS[i])) pinning violation(s) in this round"; return 1; }
    done
    log "  no new pinning violation on any node"
}

# ---- the target: a follower ---------------------------------------------
pick_target() {
    local writer leader
    writer=$(put_any rounds/probe "probe" 30) || return 1
    leader=$(leader_node)
    # Without GET /v1/status/leader the target is a node other than the one
    # that took the write; with follower forwarding that may be the leader,
    # which the rounds survive too (the other two elect a new one).
    TARGET=$(( ${leader:-$writer} % N + 1 ))
    log "${leader:+leader node_$leader; }writes taken by node_$writer; the target node is node_$TARGET"
}

# ---- round 1: handshakes with pins ----------------------------------------
round_1() {
    local i j ok before after
    snapshot 1 before
    violations_before
    for i in $(seq 1 $N); do
        ok=$(msum "$i" rampart_tls_handshakes_total 'result="ok"')
        [ "$ok" -gt 0 ] || { fail "node_$i has no successful handshake"; return 1; }
        log "  node_$i: $ok successful handshakes since it started"
    done
    for j in $(seq 1 $N); do
        before=$(msum "$j" rampart_tls_handshakes_total 'side="server"' 'result="ok"')
        for i in $(seq 1 $N); do
            [ "$i" = "$j" ] && continue
            handshake "$i" "$j" || { fail "a handshake node_$i -> node_$j failed"; return 1; }
        done
        after=$(msum "$j" rampart_tls_handshakes_total 'side="server"' 'result="ok"')
        [ "$after" -ge $((before + N - 1)) ] || { fail "node_$j accepted $((after - before)) of $((N - 1)) handshakes"; return 1; }
        log "  node_$j accepted fresh handshakes from its $((N - 1)) pinned peers (server ok $before -> $after)"
    done
    no_new_violations || return 1
    replicates r1 || return 1
    snapshot 1 after
}

# ---- round 2: certificate rotation (docs/tls.md's playbook) ----------------
playbook() {  # the rotation block of docs/tls.md as "STEP<TAB>COMMAND" lines
    sed -n '/<!-- rotation:begin -->/,/<!-- rotation:end -->/p' "$ROOT/docs/tls.md" |
        awk '/^# / { step = substr($0, 3); next } /^\$ / { print step "\t" substr($0, 3) }'
}

round_2() {
    local x=$TARGET i pids="" pins_files="" step steps n=0 old_pin new_pin before_r=() script
    for i in $(seq 1 $N); do
        pids="$pids $(node_var "$i" PID)"
        [ "$i" = "$x" ] || pins_files="$pins_files $(node_var "$i" DIR)/pinned_certs.json"
    done
    old_pin=$(spki_pin "$CERT_DIR/node_$x.pem")
    snapshot 2 before
    violations_before
    steps=$(playbook | cut -f1 | uniq)
    [ "$(printf '%s\n' "$steps" | grep -c .)" = 5 ] || { fail "docs/tls.md's rotation playbook has not 5 steps"; return 1; }
    while IFS= read -r step; do
        n=$((n + 1))
        script="set -euo pipefail"$'\n'"$(playbook | awk -F'\t' -v s="$step" '$1 == s { print $2 }')"
        for i in $(seq 1 $N); do before_r[$i]=$(reloads "$i"); done
        log "  step $step"
        printf '%s\n' "$script" >"$ART/round_2/step_$n.sh"
        (cd "$CERT_DIR" && PATH="$BUILD:$PATH" CERT_DIR="$CERT_DIR" NODE="node_$x" NODE_PEER="$(node_var "$x" PEER)" \
            NODE_PID="$(node_var "$x" PID)" PIDS="$pids" PINS_FILES="$pins_files" \
            timeout 30 bash -c "$script") >"$ART/round_2/step_$n.out" 2>&1 ||
            { cat "$ART/round_2/step_$n.out"; fail "playbook step $step failed"; return 1; }
        if grep -q 'kill -HUP \$PIDS' <<<"$script"; then
            for i in $(seq 1 $N); do wait_reload "$i" "${before_r[$i]}" || return 1; done
        elif grep -q 'kill -HUP \$NODE_PID' <<<"$script"; then
            wait_reload "$x" "${before_r[$x]}" || return 1
        fi
        replicates "r2s$n" || return 1
    done <<<"$steps"
    new_pin=$(spki_pin "$CERT_DIR/node_$x.pem")
    [ "$new_pin" != "$old_pin" ] || { fail "node_$x still has its old key"; return 1; }
    for i in $(seq 1 $N); do
        [ "$i" = "$x" ] && continue
        "$RAMPARTCTL" pins show "$(node_var "$i" DIR)/pinned_certs.json" >"$ART/round_2/node_$i.pins.txt"
        grep -q "${new_pin#spki-sha256:}" "$ART/round_2/node_$i.pins.txt" &&
            ! grep -q "${old_pin#spki-sha256:}" "$ART/round_2/node_$i.pins.txt" ||
            { fail "node_$i does not pin exactly node_$x's new key"; return 1; }
        # New handshakes with the new certificate, both ways, against pins of the new key only.
        handshake "$x" "$i" && handshake "$i" "$x" || { fail "a fresh handshake node_$x <-> node_$i failed after rotation"; return 1; }
    done
    no_new_violations || return 1
    log "  node_$x now presents ${new_pin:0:20}…; its peers pin only the new key; fresh handshakes pass"
    snapshot 2 after
}

# ---- round 3: a wrong pin is a hard fail ----------------------------------
round_3() {
    local x=$TARGET i from deadline v
    snapshot 3 before
    PINS_X=$(node_var "$x" DIR)/pinned_certs.json
    cp -p "$PINS_X" "$ART/round_3/node_$x.pinned_certs.good.json"
    {
        printf '{"peers": {'
        local sep=""
        for i in $(seq 1 $N); do
            [ "$i" = "$x" ] && continue
            printf '%s"node_%s": "spki-sha256:%s"' "$sep" "$i" "$(openssl rand -hex 32)"
            sep=", "
        done
        printf '}, "report_only": false}\n'
    } >"$PINS_X.tmp" && mv -f "$PINS_X.tmp" "$PINS_X"
    cp -p "$PINS_X" "$ART/round_3/node_$x.pinned_certs.wrong.json"
    log "  node_$x: wrong pins for its peers written; restarting it (live connections survive a reload by design)"
    from=$(log_lines "$x")
    "$ROOT/scripts/testnet.sh" restart-node "$x" | sed 's/^/  /' || { fail "node_$x did not restart"; return 1; }
    reload_env
    deadline=$((SECONDS + 20))
    until [ "$(msum "$x" rampart_pinning_violations_total)" -gt 0 ] &&
        [ "$(msum "$x" rampart_tls_handshakes_total 'result="pin_mismatch"')" -gt 0 ]; do
        [ $SECONDS -lt $deadline ] || { fail "node_$x counted no pinning violation within 20 s"; return 1; }
        sleep 0.2
    done
    log_since "$x" "$from" | grep 'pin mismatch' >"$ART/round_3/node_$x.pin_violations.log" || true
    # "…" reaches the JSON log as its UTF-8 bytes escaped (\u00e2\u0080\u00a6: core/util/json.h)
    grep -Eq 'sha256:[0-9a-f]{4}(\.\.\.|…|\\u2026|(\\u00[0-9a-f]{2}){3})[0-9a-f]{4}([^0-9a-f]|$)' "$ART/round_3/node_$x.pin_violations.log" ||
        { fail "node_$x logged no masked fingerprint"; return 1; }
    if grep -Eq '[0-9a-f]{64}' "$ART/round_3/node_$x.pin_violations.log"; then
        fail "node_$x logged a whole fingerprint"; return 1
    fi
    log "  node_$x: $(msum "$x" rampart_pinning_violations_total) pinning violations; log: $(head -n1 "$ART/round_3/node_$x.pin_violations.log" | grep -Eo 'TLS [^"]*' | head -n1)"
    # The other two keep quorum and replicate; node_x gets nothing.
    replicates r3 "$x" || return 1
    sleep 3
    if has_value "$x" "$LAST_KEY" "$LAST_VALUE"; then fail "node_$x received $LAST_KEY despite the wrong pins"; return 1; fi
    R3_KEY=$LAST_KEY R3_VALUE=$LAST_VALUE
    log "  node_$x did not receive $R3_KEY in 3 s: its peers are cut off"
    for i in $(seq 1 $N); do
        [ "$i" = "$x" ] && continue
        v=$(msum "$i" rampart_tls_handshakes_total 'side="client"' 'result="ok"')
        log "  node_$i: client handshakes ok $v, failures $(( $(msum "$i" rampart_tls_handshakes_total 'side="client"') - v ))"
    done
    snapshot 3 after
}

# ---- round 4: fix the pins, SIGHUP, recover -------------------------------
round_4() {
    local x=$TARGET i before_r v1 v2 ok1 ok2
    snapshot 4 before
    PINS_X=$(node_var "$x" DIR)/pinned_certs.json
    echo '{"peers": {}, "report_only": false}' >"$PINS_X.tmp"
    for i in $(seq 1 $N); do
        [ "$i" = "$x" ] && continue
        "$RAMPARTCTL" pins add "$PINS_X.tmp" "node_$i" "$(spki_pin "$CERT_DIR/node_$i.pem")" >/dev/null ||
            { fail "rampartctl pins add failed"; return 1; }
    done
    mv -f "$PINS_X.tmp" "$PINS_X"
    cp -p "$PINS_X" "$ART/round_4/node_$x.pinned_certs.fixed.json"
    ok1=$(msum "$x" rampart_tls_handshakes_total 'result="ok"')
    before_r=$(reloads "$x")
    kill -HUP "$(node_var "$x" PID)"
    wait_reload "$x" "$before_r" || return 1
    log "  node_$x: right pins written back, reloaded on SIGHUP"
    [ -n "$R3_KEY" ] || { fail "round 3 wrote nothing to catch up on"; return 1; }
    wait_value "$x" "$R3_KEY" "$R3_VALUE" 30 || { fail "node_$x did not catch up ($R3_KEY) within 30 s of the fix"; return 1; }
    log "  node_$x caught up: it has $R3_KEY, written while it was cut off"
    replicates r4 || return 1
    ok2=$(msum "$x" rampart_tls_handshakes_total 'result="ok"')
    [ "$ok2" -gt "$ok1" ] || { fail "node_$x made no successful handshake after the fix"; return 1; }
    v1=$(msum "$x" rampart_pinning_violations_total)
    sleep 2
    v2=$(msum "$x" rampart_pinning_violations_total)
    [ "$v1" = "$v2" ] || { fail "node_$x still counts pinning violations after the fix ($v1 -> $v2)"; return 1; }
    log "  node_$x: handshakes ok $ok1 -> $ok2, pinning violations steady at $v2"
    snapshot 4 after
}

# ---- run ---------------------------------------------------------------------
NAMES=("" "handshakes between all nodes with pins" "certificate rotation with SIGHUP (docs/tls.md playbook)"
    "wrong pin -> hard fail" "fix the pin + SIGHUP -> recovers")
RESULTS=()
VIOLATIONS=()
R3_KEY="" R3_VALUE=""
failed=0
log "testnet in $DIR; artifacts in $ART"
all_running || { echo "testnet-rounds: the testnet is not running: make testnet" >&2; exit 1; }
if ! pick_target; then
    echo "testnet-rounds: no node accepted a write within 30 s" >&2
    exit 1
fi
for r in 1 2 3 4; do
    log "round $r: ${NAMES[$r]}"
    start=$SECONDS
    if all_running && "round_$r"; then
        RESULTS[$r]=PASS
    else
        RESULTS[$r]=FAIL
        failed=1
    fi
    log "round $r: ${RESULTS[$r]} ($((SECONDS - start)) s)"
done
reload_env
for i in $(seq 1 $N); do cp "$(node_var "$i" DIR)/rampartd.log" "$ART/logs/node_$i.log" 2>/dev/null || true; done
{
    echo "rampart testnet pinned rounds, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "testnet: $DIR; target node: node_$TARGET"
    for r in 1 2 3 4; do printf 'round %s: %-4s %s\n' "$r" "${RESULTS[$r]}" "${NAMES[$r]}"; done
    [ $failed = 0 ] && echo "result: PASS" || echo "result: FAIL"
} >"$ART/summary.txt"
cat "$ART/summary.txt"
exit $failed
