#!/usr/bin/env bash
# Measures the bridge (e2e/benches/bridge.rs): callback latency while Accelo is slow, drain time
# and Accelo calls per ticket, a duplicate storm. The worker is built and run in workerd as in
# the e2e run, against the local stand-ins; the harness itself is built optimised (`cargo bench`).
# Prints a table; fails only if the run breaks down or the storm makes a duplicate issue.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false

bash scripts/toolchain.sh
cargo bench -p e2e --bench bridge
