#!/bin/sh
# Call setup+teardown rate over loopback: SIPp's built-in `uac` against a route point whose
# flow answers, at rising rates; then, in the same run, against `sipp -sn uas` (SIPp's own C++
# responder) as the ceiling. Prints calls/s attempted, successful and failed for each.
# Usage: benches/sip_cps.sh [RATE...]   (default: 250 500 1000 2000 4000)
# Needs: sipp (apt-get install -y sip-tester), a release build (cargo build --release).
set -eu
cd "$(dirname "$0")/.."
rates=${*:-250 500 1000 2000 4000}
secs=${SECS:-10}
bin=${CARGO_TARGET_DIR:-target}/release/boomerang
[ -x "$bin" ] || cargo build --release --bin boomerang
ulimit -n 65536 2>/dev/null || true

run() { # run LABEL PORT RATE
    out=$(mktemp)
    sipp -sn uac "127.0.0.1:$2" -s 8999 -r "$3" -m $(( $3 * secs )) -d 0 -i 127.0.0.1 \
        -p 0 -mp 40000 -nostdin -timeout $(( secs * 3 ))s -max_recv_loops 100000 \
        -trace_stat -stf "$out" -fd 1 >/dev/null 2>&1 || true
    # The last statistics line: successful and failed cumulated calls.
    ok=$(tail -1 "$out" | cut -d';' -f16)
    failed=$(tail -1 "$out" | cut -d';' -f18)
    printf '%-10s rate %5s/s  ok %7s  failed %6s\n' "$1" "$3" "$ok" "$failed"
    rm -f "$out"
}

RUST_LOG=${RUST_LOG:-warn} "$bin" serve --config benches/sip/bench.yaml >/tmp/boomerang-bench.log 2>&1 &
engine=$!
sipp -sn uas -i 127.0.0.1 -p 15080 -nostdin -bg >/dev/null 2>&1 || true
trap 'kill $engine 2>/dev/null; pkill -f "sipp -sn uas -i 127.0.0.1 -p 15080" 2>/dev/null || true' EXIT
sleep 1
for r in $rates; do
    run boomerang 15070 "$r"
    run sipp-uas 15080 "$r"
done
