# shellcheck shell=bash
# testnet-common.sh: the helpers scripts/testnet.sh and scripts/testnet-rounds.sh
# share, sourced by both. Expects N (the node count), the NODEn_* variables
# of DIR/env and TOKEN; `http` needs curl.

node_var() { local v="NODE$1_$2"; printf '%s' "${!v-}"; }

# http METHOD ADDR PATH [BODY]: prints "STATUS BODY"; STATUS 000 when unreachable
http() {
    local method=$1 addr=$2 path=$3 body=${4-} out
    local args=(-sS -m 3 -o - -w '\n%{http_code}' -X "$method" -H "Authorization: Bearer ${TOKEN:-}")
    [ "$method" = PUT ] && args+=(--data-binary "$body")
    out=$(curl "${args[@]}" "http://$addr$path" 2>/dev/null) || true
    [ -n "$out" ] || out=$'\n000'
    printf '%s %s\n' "${out##*$'\n'}" "${out%$'\n'*}"
}

# put_any KEY VALUE SECONDS [SKIP]: PUT through the first node that takes it
# (the leader, or any node once followers forward); prints that node's number
put_any() {
    local key=$1 value=$2 deadline=$((SECONDS + $3)) skip=${4-} i
    while [ $SECONDS -lt $deadline ]; do
        for i in $(seq 1 $N); do
            [ "$i" = "$skip" ] && continue
            if [ "$(http PUT "$(node_var "$i" API)" "/v1/kv/$key" "$value" | cut -d' ' -f1)" = 200 ]; then
                echo "$i"
                return 0
            fi
        done
        sleep 0.2
    done
    return 1
}

# leader_node: the number of the node GET /v1/status/leader names (by its peer
# or API address, or its id), if any node answers it; empty otherwise
leader_node() {
    local i j out
    for i in $(seq 1 $N); do
        out=$(http GET "$(node_var "$i" API)" /v1/status/leader)
        [ "${out%% *}" = 200 ] || continue
        out=${out#* }
        out=${out//\"/}
        for j in $(seq 1 $N); do
            case "$out" in
            "$(node_var "$j" PEER)" | "$(node_var "$j" API)" | "node_$j") echo "$j"; return 0 ;;
            esac
        done
    done
}

has_value() { [ "$(http GET "$(node_var "$1" API)" "/v1/kv/$2?raw&stale")" = "200 $3" ]; }

wait_value() {  # wait_value I KEY VALUE SECONDS: a stale read on node I returns VALUE
    local deadline=$((SECONDS + $4))
    while [ $SECONDS -lt $deadline ]; do
        has_value "$1" "$2" "$3" && return 0
        sleep 0.1
    done
    return 1
}
