#!/bin/sh
# What held HTTP connections cost the engine (issue #15, item 4): N connections (default 19000)
# from 100 loopback addresses, each stuck in a partial request head for HOLD seconds (default 12,
# longer than the default header timeout), then closed. First with the caps and timeouts opened wide (what the listener did before:
# nothing closed them), then with the defaults (4096 connections, 256 per address, 10 s for a
# request head), in the same run. Prints the connections the engine kept, its RSS while they
# were held and 6 s after they closed (the engine gives memory back every 5 s).
# Usage: benches/http_connections.sh [N] [HOLD]. Needs python3. Loopback only, one round.
set -eu
cd "$(dirname "$0")/.."
n=${1:-19000}
hold=${2:-12}
. benches/lib.sh
bin=$(engine_bin)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
work=$(mktemp -d)
trap 'kill $engine 2>/dev/null || true; rm -rf "$work"' EXIT

run() { # run LABEL API-SETTINGS
    port=$(free_port)
    cat >"$work/$1.yaml" <<YAML
listeners: {http: "127.0.0.1:$port", sip_udp: [], sip_tcp: []}
store: {data_dir: "$work/$1"}
api: {$2}
YAML
    start_engine "$bin" "$work/$1.yaml" "$port"
    base=$(awk '/VmRSS/{print $2}' /proc/$engine/status)
    held=$(python3 benches/http/hold_connections.py "$port" "$n" "$hold" "$engine")
    sleep 6
    after=$(awk '/VmRSS/{print $2}' /proc/$engine/status)
    printf '%-7s idle %6d KiB  %s  rss_6s_after_close_kib %d\n' "$1" "$base" "$held" "$after"
    kill $engine; wait $engine 2>/dev/null || true
}

run wide "max_connections: 1000000, max_connections_per_address: 1000000, header_timeout_seconds: 3600"
run default ""
