#!/bin/bash
# Booking→INVITE latency of a callback booked on one node and dialled by another (issue #21):
# NOTIFY wake-ups (with the 1 s safety-net poll) against the 250 ms poll they replace, in the
# same run, on a throwaway PostgreSQL: 2 engine processes, 30 callbacks each way (after one
# warm-up), the trunk a
# loopback responder that timestamps each INVITE. Prints median / mean / max and the ratio.
# Usage: benches/cluster-wake.sh   (needs Debian's postgresql; loopback only)
set -eu
cd "$(dirname "$0")/.."
. .ci/pg-cluster.sh
pg_start
cargo test --test callbacks cluster_wake::claim_latency_with_wakeups_against_polling \
    -- --ignored --nocapture 2>&1 | grep -E "booking->INVITE|poll|ratio|test result"
