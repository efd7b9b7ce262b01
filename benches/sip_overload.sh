#!/bin/sh
# Overload shedding over loopback (issue 15, item 2). SIPp callers (benches/sip/uac-shed.xml:
# INVITE, ACK, hold HOLD_MS, BYE; a 503 is acknowledged and counted as shed) call the bench
# route point, which answers, first at RATE calls/s (the clean rate), then at twice RATE. Each
# phase is repeated in the same run against `sipp -sn uas` (SIPp's own responder) as the
# baseline. Prints per phase the calls attempted per second (SIPp may fall behind its target),
# answered per second (goodput), 503s, failed calls and the load average; then the goodput
# ratio of the overloaded phase to the clean one, the engine's goodput against SIPp-UAS's, and
# the engine's RSS at start, SETTLE s after the clean phase (before the flood: transactions
# linger up to 32 s after their call), at its peak in the flood and SETTLE s after it.
# Usage: benches/sip_overload.sh   (env: RATE=2500 SECS=10 HOLD_MS=0 SETTLE=40 BIN=binary
#        SIP="max_calls: 150" — sip settings added to the bench configuration, one a line)
# Needs sipp (apt-get install -y sip-tester) and a release build. Bounded: four phases of
# about SECS s each plus draining; loopback only.
set -eu
cd "$(dirname "$0")/.."
rate=${RATE:-2500}
secs=${SECS:-10}
hold=${HOLD_MS:-0}
settle=${SETTLE:-40}
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release/boomerang}
[ -x "$bin" ] || cargo build --release --bin boomerang
ulimit -n 65536 2>/dev/null || true

conf=benches/sip/.overload.yaml
sed -e 's/15070/15170/; s/18070/18170/; s/boomerang-bench-data/boomerang-overload-data/' \
    benches/sip/bench.yaml >"$conf"
if [ -n "${SIP:-}" ]; then
    printf 'sip:\n' >>"$conf"
    printf '%s\n' "$SIP" | sed 's/^ */  /' >>"$conf"
fi
work=$(mktemp -d)
RUST_LOG=${RUST_LOG:-warn} "$bin" serve --config "$conf" >/tmp/boomerang-overload.log 2>&1 &
engine=$!
sipp -sn uas -i 127.0.0.1 -p 15180 -mp 42000 -nostdin >/dev/null 2>&1 &
uas=$!
# The engine's RSS (kB) every 0.25 s, for the peak.
(while kill -0 $engine 2>/dev/null; do
    awk '/VmRSS/ {print $2}' /proc/$engine/status 2>/dev/null || true
    sleep 0.25
done) >"$work/rss" &
sampler=$!
trap 'kill $engine $uas $sampler 2>/dev/null; rm -rf "$conf" "$work"' EXIT
sleep 2
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$engine/status"; }

phase() { # phase LABEL PORT RATE -> prints a line; sets $goodput (answered calls/s)
    dir=$(mktemp -d -p "$work")
    load=$(cut -d' ' -f1 /proc/loadavg)
    m=$(( $3 * secs ))
    (cd "$dir" && sipp -sf "$OLDPWD/benches/sip/uac-shed.xml" "127.0.0.1:$2" -s 8999 \
        -d "$hold" -r "$3" -m "$m" -i 127.0.0.1 -p 0 -mp 40000 -max_recv_loops 100000 \
        -nostdin -timeout $(( secs * 3 + hold / 1000 + 40 ))s -trace_counts -trace_stat \
        -fd 1 >/dev/null 2>&1) || true
    counts=$(ls "$dir"/*counts*.csv | head -1)
    stat=$(ls "$dir"/*_.csv | head -1)
    # Counts CSV: one column per scenario message, "<index>_<message>_Recv"; the last line
    # holds the totals. The 503 is message 3, the 200 answering the INVITE message 4.
    col() { head -1 "$counts" | tr ';' '\n' | grep -n "^$1\$" | cut -d: -f1; }
    answered=$(tail -1 "$counts" | cut -d';' -f"$(col 4_200_Recv)")
    shed=$(tail -1 "$counts" | cut -d';' -f"$(col 3_503_Recv)")
    failed=$(tail -1 "$stat" | cut -d';' -f18)
    # Seconds SIPp took to create its calls: where TotalCallCreated (field 13) reached m,
    # interpolated between the once-a-second statistics lines (field 3 ends with epoch time).
    span=$(awk -F';' -v m="$m" 'NR > 1 {
            split($3, c, "\t"); t = c[3]
            if (s == "") { split($1, a, "\t"); s = a[3]; pt = s; pn = 0 }
            n = $13
            if (!done && n >= m) { tt = (n > pn) ? pt + (t - pt) * (m - pn) / (n - pn) : t; done = 1 }
            pt = t; pn = n
        } END { if (!done) tt = pt; printf "%.2f", tt - s }' "$stat")
    goodput=$(awk "BEGIN {printf \"%.0f\", $answered / $span}")
    printf '%-9s | %6s | %9.0f | %6s | %8s | %6s | %6s | %s\n' "$1" "$3" \
        "$(awk "BEGIN {print $m / $span}")" "$goodput" "$answered" "$shed" "$failed" "$load"
}

echo "engine $bin, sip settings: ${SIP:-defaults}; calls held ${hold} ms, ${secs} s per phase"
printf '%-9s | %6s | %9s | %6s | %8s | %6s | %6s | %s\n' target rate/s attempt/s good/s \
    answered 503 failed "load (1 min)"
start_rss=$(rss)
phase boomerang 15170 "$rate"
clean=$goodput
clean_end=$(date +%s)
sleep 2
phase sipp-uas 15180 "$rate"
uas_clean=$goodput
left=$(( settle - ($(date +%s) - clean_end) ))
[ "$left" -gt 0 ] && sleep "$left"
pre=$(rss)
: >"$work/rss"
phase boomerang 15170 $(( rate * 2 ))
over=$goodput
flood_end=$(date +%s)
peak=$(sort -n "$work/rss" | tail -1)
phase sipp-uas 15180 $(( rate * 2 ))
uas_over=$goodput
left=$(( settle - ($(date +%s) - flood_end) ))
[ "$left" -gt 0 ] && sleep "$left"
after=$(rss)
ratio() { awk "BEGIN {printf \"%.2f\", $1 / ($2 ? $2 : 1)}"; }
echo "goodput at 2x / clean: boomerang $(ratio "$over" "$clean"), sipp-uas $(ratio "$uas_over" "$uas_clean")"
echo "boomerang / sipp-uas goodput: clean $(ratio "$clean" "$uas_clean"), at 2x $(ratio "$over" "$uas_over")"
echo "engine RSS MB: start $start_rss, ${settle} s after the clean phase (before the flood) $pre, peak $(awk "BEGIN {printf \"%.1f\", ${peak:-0} / 1024}"), ${settle} s after it $after ($(ratio "$after" "$pre") of before)"
