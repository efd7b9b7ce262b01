#!/usr/bin/env bash
# PostgreSQL against SQLite in the same run (benches/store_pg.rs): durable creates/s and
# statements per callback lifecycle. Starts a throwaway PostgreSQL cluster with fsync on
# (.ci/pg-cluster.sh; installs nothing: needs Debian's postgresql).
# Usage: [DEV=1] benches/store_pg.sh [CALLBACKS] [CONCURRENT_CREATORS]
# (DEV=1: the dev profile, no release build — the ratios hold, the absolute figures are lower)
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/pg-cluster.sh
pg_start durable
if [ "${DEV:-}" = 1 ]; then
    cargo test --bench store_pg -- "$@"
else
    cargo bench --bench store_pg -- "$@"
fi
