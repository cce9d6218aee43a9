#!/bin/sh
# Install the Debian packages rampart builds, tests and benchmarks with.
# Idempotent and quiet when everything is already there. Needs root (or sudo).
set -eu

# Build and runtime libraries, then the tools the tests and benchmarks drive.
PKGS="build-essential pkg-config meson ninja-build clang libclang-rt-14-dev
clang-format clang-tidy
libuv1-dev libmbedtls-dev libluajit2-5.1-dev libcjson-dev libyaml-dev libcmocka-dev
node-llhttp python3 curl openssl wrk nginx-light prometheus lua-check etcd-server
dnsmasq-base"  # dnsmasq-base: the DNS server the SRV discovery tests start (no system service)
# The Raft engine comes from bookworm-backports (0.22.1); bookworm's own 0.15 loses data.
BACKPORTS_PKGS="libraft-dev"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
raft_ok=0
ver=$(dpkg-query -W -f='${Version}' libraft-dev 2>/dev/null || true)
case "$ver" in 0.22.*) raft_ok=1 ;; esac

[ -z "$missing" ] && [ "$raft_ok" = 1 ] && exit 0

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

if [ "$raft_ok" = 0 ] && ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "install-deps: adding bookworm-backports for libraft-dev 0.22" >&2
    echo "deb http://deb.debian.org/debian bookworm-backports main" |
        $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
fi
echo "install-deps: installing:$missing $( [ "$raft_ok" = 1 ] || echo "$BACKPORTS_PKGS (backports)")" >&2
$SUDO apt-get update -qq >/dev/null
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ "$raft_ok" = 0 ]; then
    $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports $BACKPORTS_PKGS >/dev/null
fi
ver=$(dpkg-query -W -f='${Version}' libraft-dev 2>/dev/null || true)
case "$ver" in
    0.22.*) ;;
    *) echo "install-deps: libraft-dev is '$ver', need 0.22.x from bookworm-backports" >&2; exit 1 ;;
esac
