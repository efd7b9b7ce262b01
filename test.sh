#!/usr/bin/env bash
# Runs every test boomerang has: installs the independent SIP peers the integration tests
# drive (SIPp from Debian's sip-tester, baresip), Chromium and chromedriver for the UI's browser
# tests, and the README examples' tools (curl, jq), then the whole Rust workspace.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v baresip >/dev/null 2>&1 || need+=(baresip)
# The README's examples (tests/ops/readme_examples.rs) run as written: curl and jq.
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v jq >/dev/null 2>&1 || need+=(jq)
# The Callback UI's browser tests (tests/ui) drive headless Chromium through chromedriver.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "test.sh: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo test --workspace --all-targets "$@"
# Doc tests are not part of --all-targets.
cargo test --workspace --doc "$@"
