#!/bin/sh
# Cost of the metrics on the SIP call path: two engines from benches/sip/bench.yaml, one with
# `metrics.enabled: true` (the default) and one with `false`, get the same SIPp `uac` load
# (call setup + teardown against route point 8999) in alternating rounds in the same run.
# Prints per round the calls completed, calls/s and the engine's CPU time per call (from
# /proc/PID/stat), then the off/on ratios of the totals. Near saturation failed calls (and
# their retransmissions) swamp the difference: compare rounds without failures.
# Usage: benches/sip_metrics_cost.sh [RATE] [ROUNDS]   (default 100 calls/s, 3 rounds of SECS=10)
# BIN=target/release/boomerang for a release build (default: the debug build, built if absent).
# Needs: sipp (apt-get install -y sip-tester).
set -eu
cd "$(dirname "$0")/.."
rate=${1:-100}
rounds=${2:-3}
secs=${SECS:-10}
bin=${BIN:-${CARGO_TARGET_DIR:-target}/debug/boomerang}
[ -x "$bin" ] || cargo build --bin boomerang
ulimit -n 65536 2>/dev/null || true
dir=$(mktemp -d)
tck=$(getconf CLK_TCK)

start() { # start NAME SIP_PORT HTTP_PORT ENABLED -> pid
    sed -e "s/15070/$2/; s/18070/$3/; s|/tmp/boomerang-bench-data|$dir/$1-data|" \
        -e "s|prompts_dir: ../../prompts|prompts_dir: $PWD/prompts|" \
        -e "s|flows_dir: flows|flows_dir: $PWD/benches/sip/flows|" \
        benches/sip/bench.yaml >"$dir/$1.yaml"
    printf 'metrics:\n  enabled: %s\n' "$4" >>"$dir/$1.yaml"
    RUST_LOG=${RUST_LOG:-warn} "$bin" serve --config "$dir/$1.yaml" >"$dir/$1.log" 2>&1 &
    echo $!
}

cpu() { # cpu PID -> utime+stime in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}

on=$(start on 15072 18072 true)
off=$(start off 15074 18074 false)
trap 'kill $on $off 2>/dev/null || true; rm -rf "$dir"' EXIT
sleep 2

echo "rate $rate/s, $secs s per round, $rounds rounds; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-4s %5s %8s %7s %9s %12s\n' '' round ok failed 'calls/s' 'cpu ms/call'
for round in $(seq "$rounds"); do
    # The order alternates, so neither engine always runs first.
    order="on off"
    [ $((round % 2)) -eq 0 ] && order="off on"
    for which in $order; do
        if [ "$which" = on ]; then pid=$on port=15072; else pid=$off port=15074; fi
        out="$dir/stat.csv"
        rm -f "$out"
        c0=$(cpu "$pid")
        t0=$(date +%s.%N)
        sipp -sn uac "127.0.0.1:$port" -s 8999 -r "$rate" -m $((rate * secs)) -d 0 \
            -i 127.0.0.1 -p 0 -mp 40000 -nostdin -timeout $((secs * 3))s \
            -max_recv_loops 100000 -trace_stat -stf "$out" -fd 1 >/dev/null 2>&1 || true
        t1=$(date +%s.%N)
        c1=$(cpu "$pid")
        ok=$(tail -1 "$out" | cut -d';' -f16)
        failed=$(tail -1 "$out" | cut -d';' -f18)
        echo "$which $ok $failed $t0 $t1 $c0 $c1" >>"$dir/rounds"
        awk -v w="$which" -v r="$round" -v ok="$ok" -v f="$failed" -v t0="$t0" -v t1="$t1" \
            -v c0="$c0" -v c1="$c1" -v tck="$tck" 'BEGIN {
            printf "%-4s %5d %8d %7d %9.1f %12.3f\n", w, r, ok, f, ok / (t1 - t0),
                (c1 - c0) * 1000 / tck / (ok > 0 ? ok : 1) }'
    done
done
awk -v tck="$tck" '{ ok[$1] += $2; t[$1] += $5 - $4; c[$1] += $7 - $6 }
END {
    printf "total on : %d calls, %.1f calls/s, %.3f cpu ms/call\n", ok["on"], ok["on"] / t["on"], c["on"] * 1000 / tck / ok["on"]
    printf "total off: %d calls, %.1f calls/s, %.3f cpu ms/call\n", ok["off"], ok["off"] / t["off"], c["off"] * 1000 / tck / ok["off"]
    printf "off/on: calls/s %.3f, cpu per call %.3f\n", (ok["off"] / t["off"]) / (ok["on"] / t["on"]), (c["off"] / ok["off"]) / (c["on"] / ok["on"])
}' "$dir/rounds"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
