#!/bin/sh
# Calls/s against cores, in one run: the release engine pinned to one core (`taskset -c 0`,
# sip.workers 1) and to two (`taskset -c 0,1`, sip.workers 2), and SIPp's own UAS
# (`sipp -sn uas`, its C++ responder) pinned the same ways, each driven by SIPp's built-in
# `uac` (answer, BYE at once) at rising rates. A rate is clean when every call of it succeeded
# (SECS seconds of calls, none failed); the table gives the highest clean rate of each target
# and the 2-core / 1-core ratios. Targets are measured in turn at each rate, so they share the
# machine's conditions. The load generator is not pinned: on a 2-core machine it shares the
# cores of the 2-core targets (and has core 1 to itself against the 1-core ones).
# Optional BASE_BIN=path/to/older/boomerang adds that build pinned to core 0 (a previous main,
# which knows no sip.workers: one endpoint task).
# Usage: benches/sip_cores.sh [RATE...]   (default: 500 1000 1500 2000 2500 3000 4000 5000 6000)
# Needs: sipp (apt-get install -y sip-tester), taskset, a release build.
set -eu
cd "$(dirname "$0")/.."
rates=${*:-500 1000 1500 2000 2500 3000 4000 5000 6000}
secs=${SECS:-5}
bin=${BIN:-target/release/boomerang}
[ -x "$bin" ] || cargo build --release --bin boomerang
ulimit -n 65536 2>/dev/null || true
work=$(mktemp -d)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

udp_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
tcp_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# engine NAME CPUS BIN [WORKERS]: starts BIN pinned to CPUS on free ports (sip.workers
# WORKERS when given) and records NAME's SIP port.
engine() {
    sip=$(udp_port)
    http=$(tcp_port)
    sed -e "s|127.0.0.1:15070|127.0.0.1:$sip|" -e "s|127.0.0.1:18070|127.0.0.1:$http|" \
        -e "s|prompts_dir: .*|prompts_dir: $PWD/prompts|" \
        -e "s|flows_dir: .*|flows_dir: $PWD/benches/sip/flows|" \
        -e "s|data_dir: .*|data_dir: $work/data-$1|" benches/sip/bench.yaml >"$work/$1.yaml"
    if [ -n "${4:-}" ]; then printf 'sip:\n  workers: %s\n' "$4" >>"$work/$1.yaml"; fi
    RUST_LOG=error taskset -c "$2" "$3" serve --config "$work/$1.yaml" >"$work/$1.log" 2>&1 &
    pids="$pids $!"
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1',$http),1)" 2>/dev/null && break
        sleep 0.1
    done
    eval "port_$1=$sip"
}

# uas NAME CPUS: SIPp's UAS pinned to CPUS.
uas() {
    sip=$(udp_port)
    out=$(taskset -c "$2" sipp -sn uas -i 127.0.0.1 -p "$sip" -nostdin -bg 2>&1 || true)
    pids="$pids $(echo "$out" | sed -n 's/.*PID=\[\([0-9]*\)\].*/\1/p')"
    eval "port_$1=$sip"
}

# measure PORT RATE: prints "OK FAILED" for SECS seconds of calls at RATE calls/s.
measure() {
    stat="$work/stat.csv"
    rm -f "$stat"
    sipp -sn uac "127.0.0.1:$1" -s 8999 -r "$2" -m $(($2 * secs)) -d 0 -i 127.0.0.1 \
        -p "$(udp_port)" -mp "$(udp_port)" -nostdin -timeout $((secs * 3))s \
        -max_recv_loops 100000 -trace_stat -stf "$stat" -fd 1 >/dev/null 2>&1 || true
    if [ -s "$stat" ]; then
        echo "$(tail -1 "$stat" | cut -d';' -f16) $(tail -1 "$stat" | cut -d';' -f18)"
    else
        echo "0 $(($2 * secs))"
    fi
}

targets="engine_1core engine_2core uas_1core uas_2core"
engine engine_1core 0 "$bin" 1
engine engine_2core 0,1 "$bin" 2
uas uas_1core 0
uas uas_2core 0,1
if [ -n "${BASE_BIN:-}" ]; then
    engine base_1core 0 "$BASE_BIN"
    targets="base_1core $targets"
fi
sleep 1

for t in $targets; do eval "best_$t=0; misses_$t=0; line_$t="; done
for r in $rates; do
    for t in $targets; do
        eval "misses=\$misses_$t; port=\$port_$t"
        [ "$misses" -ge 2 ] && continue
        set -- $(measure "$port" "$r")
        printf '%-13s rate %5s/s  ok %7s  failed %6s\n' "$t" "$r" "$1" "$2"
        if [ "$2" = 0 ] && [ "$1" = $((r * secs)) ]; then
            eval "best_$t=$r; misses_$t=0; line_$t=\"\$line_$t $r:ok\""
        else
            eval "misses_$t=$((misses + 1)); line_$t=\"\$line_$t $r:$2fail\""
        fi
    done
done

echo
echo "| target | cores | highest clean calls/s | per rate (failed calls) |"
echo "| --- | --- | --- | --- |"
for t in $targets; do
    eval "best=\$best_$t; line=\$line_$t"
    case $t in *1core) c=1 ;; *) c=2 ;; esac
    echo "| $t | $c | $best |$line |"
done
ratio() { python3 -c "print(f'{$1/$2:.2f}' if $2 else 'n/a')"; }
echo
echo "engine 2 cores / 1 core: $(ratio "$best_engine_2core" "$best_engine_1core")x"
echo "sipp-uas 2 cores / 1 core: $(ratio "$best_uas_2core" "$best_uas_1core")x"
echo "engine / sipp-uas at 1 core: $(ratio "$best_engine_1core" "$best_uas_1core")x"
echo "engine / sipp-uas at 2 cores: $(ratio "$best_engine_2core" "$best_uas_2core")x"
if [ -n "${BASE_BIN:-}" ]; then
    echo "engine workers=1 / base at 1 core: $(ratio "$best_engine_1core" "$best_base_1core")x"
fi
