#!/usr/bin/env bash
# Runs every test: native unit tests of the core and the stand-ins, then the end-to-end scenarios
# (the worker built and run in workerd against the stand-ins).
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false
bash scripts/toolchain.sh
cargo test --workspace --exclude e2e
if [ -f e2e/tests/workerd.rs ]; then
  cargo test -p e2e --test workerd
fi
