#!/usr/bin/env bash
# The one command that runs every test: the native unit tests, then the end-to-end run (the
# worker built with wrangler.toml's build command and served by `wrangler dev` in workerd, against
# the local stand-ins; see e2e/tests/workerd/). Works from a fresh clone: the toolchain is
# installed where missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false

bash scripts/toolchain.sh
cargo test --workspace --exclude e2e
cargo test -p e2e --test workerd
