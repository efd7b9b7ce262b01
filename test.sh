#!/usr/bin/env bash
# Runs every test boomerang has: installs the independent SIP peers the integration tests
# drive (SIPp from Debian's sip-tester, baresip), Chromium and chromedriver for the UI's browser
# tests, the README examples' tools (curl, jq) and PostgreSQL (started as a throwaway cluster
# for the PostgreSQL store), then the whole Rust workspace.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v baresip >/dev/null 2>&1 || need+=(baresip)
# The README's examples (tests/ops/readme_examples.rs) run as written: curl and jq.
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v jq >/dev/null 2>&1 || need+=(jq)
# The PostgreSQL store's tests run against a throwaway cluster (.ci/pg-cluster.sh).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# The cluster's SIP front (deploy/kamailio) is tested with Debian's Kamailio in front of nodes.
command -v kamailio >/dev/null 2>&1 || [ -x /usr/sbin/kamailio ] || need+=(kamailio)
# The Callback UI's browser tests (tests/ui) drive headless Chromium through chromedriver.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "test.sh: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# A throwaway PostgreSQL cluster in a temporary directory, removed at exit; its URL is in
# BOOMERANG_TEST_PG_URL, which the PostgreSQL store's tests need (they skip, saying so, without).
source .ci/pg-cluster.sh
pg_start

cargo test --workspace --all-targets "$@"
# Doc tests are not part of --all-targets.
cargo test --workspace --doc "$@"
