#!/bin/sh
# Run each libFuzzer target for SECONDS (default 300) from its seed corpus.
# Usage: scripts/fuzz.sh BUILD_DIR [SECONDS]
set -eu
build=$1
secs=${2:-300}
root=$(cd "$(dirname "$0")/.." && pwd)
for target in fuzz_http_parser fuzz_config fuzz_tls_session; do
    corpus=$(mktemp -d)
    cp "$root/tests/fuzz/corpus/$target"/* "$corpus"/ 2>/dev/null || true
    echo "fuzz: $target for ${secs}s"
    "$build/$target" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$corpus" 2>&1 | tail -n 12
    rm -rf "$corpus"
done
