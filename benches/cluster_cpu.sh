#!/bin/bash
# Per-node CPU per call with 1 and with 3 nodes (issue #21, "Speed"), in one run: Kamailio (the
# shipped deploy/kamailio/kamailio.cfg) in front of one `boomerang serve` node, then in front of
# three, every node on one PostgreSQL (a throwaway cluster from .ci/pg-cluster.sh, a schema per
# set-up); CALLS SIPp callers (tests/sipp/cluster-caller.xml: answered, 100 ms, BYE through the
# route set) at RATE calls/s through Kamailio to route point 8999 (answer and wait). Each engine
# process's utime+stime is read from /proc before and after the calls, and over an idle window
# of the same length before them (a cluster node's own heartbeat, claims and agent view);
# printed: calls per node, CPU ms per call raw and net of idle, and the 3-node / 1-node ratio.
# Usage: [RATE=50] [BIN=target/release/boomerang] benches/cluster_cpu.sh [CALLS]   (default 600)
# Needs: sipp, kamailio, postgresql (Debian packages), python3. Loopback only.
set -eu
cd "$(dirname "$0")/.."
calls=${1:-600}
rate=${RATE:-50}
. benches/lib.sh
. .ci/pg-cluster.sh
bin=$(engine_bin)
kam=$(command -v kamailio || echo /usr/sbin/kamailio)
[ -x "$kam" ] || { echo "cluster_cpu: kamailio is not installed" >&2; exit 1; }
pg_start
work=$(mktemp -d)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    pg_stop
    rm -rf "$work"
}
trap cleanup EXIT
tck=$(getconf CLK_TCK)
echo "engine: $bin; $calls calls at $rate/s through Kamailio"

udp_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# kam_ticks PID: utime+stime of Kamailio's main process and its children (the workers).
kam_ticks() {
    local t=0 p
    for p in "$1" $(pgrep -P "$1"); do t=$(( t + $(cpu_ticks "$p" 2>/dev/null || echo 0) )); done
    echo "$t"
}
calls_of() { # calls_of HTTP_PORT: inbound calls to 8999 the node has ended
    python3 - "$1" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode()
print(int(sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
              if l.startswith('boomerang_calls_total{route_point="8999"'))))
PY
}

# node SETUP NAME: a node of SETUP (its own schema) on free ports; sets node_pid/node_sip/node_http.
node() {
    node_sip=$(udp_port)
    node_http=$(free_port)
    cat >"$work/$2.yaml" <<YAML
listeners: {sip_udp: ["127.0.0.1:$node_sip"], sip_tcp: [], http: "127.0.0.1:$node_http"}
media: {rtp_port_min: 30000, rtp_port_max: 60000, prompts_dir: "$PWD/prompts"}
store: {data_dir: "$work/data-$2", kind: postgres, url: "$BOOMERANG_TEST_PG_URL?options=-c%20search_path%3D$1"}
cluster: {node_id: "$2"}
flows_dir: "$PWD/benches/sip/flows"
route_points: [{number: "8999", flow: answer.yaml}]
YAML
    start_engine "$bin" "$work/$2.yaml" "$node_http"
    node_pid=$engine
    pids="$pids $engine"
}

# run SETUP N: N nodes behind a fresh Kamailio, idle window then the calls; prints the rows and
# sets per_call (CPU ms per call per node, net of idle).
run() {
    "$PG_BIN/psql" -q "$BOOMERANG_TEST_PG_URL" -c "CREATE SCHEMA $1" >/dev/null
    local ids="" https="" list="$work/$1.list" i
    : >"$list"
    for i in $(seq "$2"); do
        node "$1" "$1n$i"
        ids="$ids $node_pid"
        https="$https $node_http"
        echo "1 sip:127.0.0.1:$node_sip" >>"$list"
    done
    local front
    front=$(udp_port)
    "$kam" -DD -E -m 64 -M 8 -f deploy/kamailio/kamailio.cfg -A "LISTEN=udp:127.0.0.1:$front" \
        -A "DISPATCHER_LIST=\"$list\"" -A PING_INTERVAL=1 -A FR_TIMER=1000 \
        -P "$work/$1.kam.pid" -Y "$work" -w "$work" >/dev/null 2>"$work/$1.kam.log" &
    local kpid=$!
    pids="$pids $kpid"
    sleep 3
    local secs=$(( (calls + rate - 1) / rate + 1 )) p before=() idle=() after=()
    for p in $ids; do before+=("$(cpu_ticks "$p")"); done
    sleep "$secs"
    for p in $ids; do idle+=("$(cpu_ticks "$p")"); done
    local k0
    k0=$(kam_ticks "$kpid")
    sipp -sf tests/sipp/cluster-caller.xml "127.0.0.1:$front" -s 8999 -d 100 -r "$rate" \
        -m "$calls" -l 200 -i 127.0.0.1 -nostdin -timeout 120s -p "$(udp_port)" \
        -mp "$(udp_port)" >/dev/null 2>&1 || echo "  (some calls failed)"
    sleep 1
    for p in $ids; do after+=("$(cpu_ticks "$p")"); done
    local k1
    k1=$(kam_ticks "$kpid")
    local n=0 total_net=0 total_calls=0 h c raw net
    for h in $https; do
        c=$(calls_of "$h")
        raw=$(( after[n] - idle[n] ))
        net=$(( raw - (idle[n] - before[n]) ))
        printf '  %-6s node %d: %4d calls, %5d ms CPU (idle %4d ms over %ds), %.3f ms/call raw, %.3f net\n' \
            "$1" $((n + 1)) "$c" $(( raw * 1000 / tck )) $(( (idle[n] - before[n]) * 1000 / tck )) "$secs" \
            "$(echo "$raw * 1000 / $tck / ($c + 0.000001)" | bc -l)" "$(echo "$net * 1000 / $tck / ($c + 0.000001)" | bc -l)"
        total_net=$(( total_net + net ))
        total_calls=$(( total_calls + c ))
        n=$(( n + 1 ))
    done
    per_call=$(echo "$total_net * 1000 / $tck / ($total_calls + 0.000001)" | bc -l)
    printf '  %-6s %d node(s): %d calls, %.3f CPU ms per call (net of idle, all nodes); Kamailio %d ms\n' \
        "$1" "$2" "$total_calls" "$per_call" $(( (k1 - k0) * 1000 / tck ))
    kill $ids "$kpid" 2>/dev/null || true
    wait $ids "$kpid" 2>/dev/null || true
}

run one 1
one=$per_call
run three 3
three=$per_call
printf 'CPU ms per call: 1 node %.3f, 3 nodes %.3f; ratio 3/1 = %.2f\n' "$one" "$three" \
    "$(echo "$three / $one" | bc -l)"
