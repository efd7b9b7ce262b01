#!/bin/sh
# Engine memory under a login flood (issue #15, item 1): 500 concurrent failed logins from 100
# loopback addresses, first with the password-check pool opened to 256 slots (what every login
# hashing at once amounted to before the pool), then with the default pool (one slot per core),
# in the same run. Prints each engine's peak RSS (VmHWM) and RSS once the flood is over.
# Usage: benches/login_flood.sh [N]   (default 500). Needs python3. Loopback only, one round.
set -eu
cd "$(dirname "$0")/.."
n=${1:-500}
. benches/lib.sh
bin=$(engine_bin)  # Argon2 is built optimised in debug too
ulimit -n 8192 2>/dev/null || true
work=$(mktemp -d)
trap 'kill $engine 2>/dev/null || true; rm -rf "$work"' EXIT

run() { # run LABEL CONCURRENCY
    port=$(free_port)
    cat >"$work/$1.yaml" <<YAML
listeners: {http: "127.0.0.1:$port", sip_udp: [], sip_tcp: []}
store: {data_dir: "$work/$1"}
admin: {login_concurrency: $2, login_wait_ms: 30000}
YAML
    start_engine "$bin" "$work/$1.yaml" "$port"
    base=$(awk '/VmRSS/{print $2}' /proc/$engine/status)
    t0=$(date +%s.%N)
    statuses=$(python3 benches/http/login_flood.py "$port" "$n" 100)
    t1=$(date +%s.%N)
    sleep 2
    peak=$(awk '/VmHWM/{print $2}' /proc/$engine/status)
    after=$(awk '/VmRSS/{print $2}' /proc/$engine/status)
    printf '%-8s slots %3s  idle %6d KiB  peak %8d KiB  after %8d KiB  %5.1f s  %s\n' \
        "$1" "$2" "$base" "$peak" "$after" "$(echo "$t1 - $t0" | bc)" "$statuses"
    kill $engine; wait $engine 2>/dev/null || true
}

run before 256
run after 0
