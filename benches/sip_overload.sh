#!/bin/sh
# Overload shedding over loopback: SIPp callers (benches/sip/uac-shed.xml) hold each call
# HOLD_MS against route point 8999 of the bench configuration with sip.max_calls=MAX_CALLS,
# first at RATE calls/s (under the limit: the clean baseline), then at twice RATE. Prints,
# per phase, calls answered per second, 503s (shed), failures, the goodput ratio of the
# overloaded phase to the clean one, and the engine's RSS before and after.
# Usage: benches/sip_overload.sh   (env: RATE=100 SECS=8 HOLD_MS=2000 MAX_CALLS=300 BIN=...)
# Bounded: two phases of SECS seconds plus call draining; loopback only.
set -eu
cd "$(dirname "$0")/.."
rate=${RATE:-100}
secs=${SECS:-8}
hold=${HOLD_MS:-2000}
max_calls=${MAX_CALLS:-300}
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release/boomerang}
[ -x "$bin" ] || cargo build --release --bin boomerang
ulimit -n 65536 2>/dev/null || true

conf=benches/sip/.overload.yaml
sed -e 's/15070/15170/; s/18070/18170/; s/boomerang-bench-data/boomerang-overload-data/' \
    benches/sip/bench.yaml >"$conf"
printf 'sip:\n  max_calls: %s\n  max_setup_calls: %s\n' "$max_calls" "$max_calls" >>"$conf"

RUST_LOG=${RUST_LOG:-warn} "$bin" serve --config "$conf" >/tmp/boomerang-overload.log 2>&1 &
engine=$!
trap 'kill $engine 2>/dev/null; rm -f "$conf"' EXIT
sleep 1
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$engine/status"; }

phase() { # phase LABEL RATE -> prints a line, sets $answered
    dir=$(mktemp -d)
    (cd "$dir" && sipp -sf "$OLDPWD/benches/sip/uac-shed.xml" 127.0.0.1:15170 -s 8999 \
        -d "$hold" -r "$2" -m $(( $2 * secs )) -i 127.0.0.1 -p 0 -mp 40000 \
        -nostdin -timeout $(( secs * 3 + hold / 1000 ))s -trace_counts -trace_stat \
        -fd 1 >/dev/null 2>&1) || true
    counts=$(ls "$dir"/*counts*.csv | head -1)
    stat=$(ls "$dir"/*_.csv | head -1)
    # Counts CSV: one column per scenario message; the last line holds the totals. Column
    # names are "<index>_<message>_Recv": the 503 is message 2, the 200 of the INVITE message 3.
    answered=$(tail -1 "$counts" | cut -d';' -f"$(head -1 "$counts" | tr ';' '\n' | grep -n '^3_200_Recv' | cut -d: -f1)")
    shed=$(tail -1 "$counts" | cut -d';' -f"$(head -1 "$counts" | tr ';' '\n' | grep -n '^2_503_Recv' | cut -d: -f1)")
    failed=$(tail -1 "$stat" | cut -d';' -f18)
    printf '%-9s rate %4s/s  answered %6s (%s/s)  503 %6s  failed %5s\n' \
        "$1" "$2" "$answered" "$(( answered / secs ))" "$shed" "$failed"
    rm -rf "$dir"
}

echo "max_calls $max_calls, calls held ${hold} ms, ${secs} s per phase; RSS before: $(rss)"
phase clean "$rate"
clean=$answered
sleep $(( hold / 1000 + 1 ))
phase overload $(( rate * 2 ))
echo "goodput ratio (overload/clean): $(awk "BEGIN {printf \"%.2f\", $answered / ($clean ? $clean : 1)}")"
echo "RSS after: $(rss)"
