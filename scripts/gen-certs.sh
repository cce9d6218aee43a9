#!/bin/sh
# gen-certs.sh [--force] [DIR] [N]
#
# A private CA (10 years) and N node certificates (1 year) for rampart's
# mutual TLS, with the openssl CLI. ECDSA P-256 everywhere.
#   DIR/ca.pem DIR/ca.key                 the CA (keep ca.key offline)
#   DIR/node_I.pem DIR/node_I.key         node I (1..N), SANs
#       DNS:node_I, DNS:rampart-node-I, DNS:localhost, IP:127.0.0.1
# Keys are written 0600. If DIR already holds a CA the script refuses and
# writes nothing (exit 1), so running it twice is harmless; --force
# replaces the CA and all N node certificates.
# Defaults: DIR var/certs, N 3. See docs/tls.md.
set -eu

usage() {
    echo "usage: $0 [--force] [DIR] [N]" >&2
    echo "  DIR  output directory (default var/certs)" >&2
    echo "  N    number of node certificates, 1..999 (default 3)" >&2
    echo "  --force  replace an existing CA in DIR (every node certificate must then be re-issued)" >&2
    exit 2
}

force=0
dir=""
count=""
for arg in "$@"; do
    case "$arg" in
    --force) force=1 ;;
    -h | --help) usage ;;
    -*) echo "$0: unknown option $arg" >&2; usage ;;
    *)
        if [ -z "$dir" ]; then
            dir=$arg
        elif [ -z "$count" ]; then
            count=$arg
        else
            echo "$0: too many arguments" >&2
            usage
        fi
        ;;
    esac
done
dir=${dir:-var/certs}
count=${count:-3}
case "$count" in
'' | *[!0-9]*) echo "$0: N must be a number, got '$count'" >&2; usage ;;
esac
if [ "$count" -lt 1 ] || [ "$count" -gt 999 ]; then
    echo "$0: N must be between 1 and 999, got $count" >&2
    usage
fi
command -v openssl >/dev/null 2>&1 || { echo "$0: the openssl command is needed" >&2; exit 1; }

mkdir -p "$dir"
umask 077
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gen-certs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

newkey() {  # newkey FILE: a P-256 key, mode 0600
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve \
        -out "$1" 2>/dev/null
    chmod 0600 "$1"
}

if [ -e "$dir/ca.pem" ] || [ -e "$dir/ca.key" ]; then
    if [ "$force" -ne 1 ]; then
        echo "$0: $dir already holds a CA (ca.pem/ca.key): refusing to overwrite it; nothing written (--force replaces the CA and every node certificate)" >&2
        exit 1
    fi
    echo "replacing the CA in $dir (--force)" >&2
fi
newkey "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days 3650 -subj "/CN=rampart CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$tmp/ca.pem"

i=1
while [ "$i" -le "$count" ]; do
    name="node_$i"
    newkey "$tmp/$name.key"
    openssl req -new -key "$tmp/$name.key" -subj "/CN=$name" -out "$tmp/$name.csr"
    cat >"$tmp/$name.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=DNS:$name,DNS:rampart-node-$i,DNS:localhost,IP:127.0.0.1
EOF
    openssl x509 -req -in "$tmp/$name.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
        -sha256 -days 365 -extfile "$tmp/$name.ext" -out "$tmp/$name.pem" 2>/dev/null
    i=$((i + 1))
done
# Everything was made in the scratch dir: move it in only when all of it worked.
chmod 0644 "$tmp"/*.pem
chmod 0600 "$tmp"/*.key
i=1
while [ "$i" -le "$count" ]; do
    mv -f "$tmp/node_$i.key" "$tmp/node_$i.pem" "$dir/"
    i=$((i + 1))
done
mv "$tmp/ca.key" "$tmp/ca.pem" "$dir/"
echo "wrote $dir/ca.pem and $dir/ca.key (10 years)" >&2
echo "wrote $count node certificate(s) to $dir (1 year): node_1..node_$count" >&2
