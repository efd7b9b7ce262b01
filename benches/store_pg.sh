#!/usr/bin/env bash
# PostgreSQL against SQLite in the same run (benches/store_pg.rs): durable creates/s and
# statements per callback lifecycle. Starts a throwaway PostgreSQL cluster with fsync on
# (.ci/pg-cluster.sh; installs nothing: needs Debian's postgresql).
# Usage: benches/store_pg.sh [CALLBACKS] [CONCURRENT_CREATORS]
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/pg-cluster.sh
pg_start durable
cargo bench --bench store_pg -- "$@"
