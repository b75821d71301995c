#!/usr/bin/env bash
# Builds the worker into build/ (wrangler runs this as its [build] command). worker-build would
# download wasm-bindgen, wasm-opt and esbuild; we hand it the local ones instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/toolchain.sh
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export WASM_BINDGEN_BIN="$CARGO_BIN/wasm-bindgen"
export WASM_OPT_BIN="$PWD/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
exec "$CARGO_BIN/worker-build" --release
