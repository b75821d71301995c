#!/usr/bin/env bash
# Installs what building and testing the bridge needs, only where it is missing or at the wrong
# version: the wasm32 target, worker-build, wasm-bindgen-cli (the exact version in Cargo.lock)
# and the pinned npm packages (wrangler, esbuild, binaryen's wasm-opt).
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "toolchain: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! "$CARGO_BIN/worker-build" --version 2>/dev/null | grep -q "$WORKER_BUILD_VERSION"; then
  echo "toolchain: installing worker-build $WORKER_BUILD_VERSION (takes several minutes once)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

if ! "$CARGO_BIN/wasm-bindgen" --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  echo "toolchain: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (takes several minutes once)"
  # Not --locked: its lockfile names a webpki-roots release the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# A stamp of the lockfile tells whether node_modules matches it (npm ci is not re-run while
# wrangler, which runs this script as its build, is using node_modules).
LOCK_SUM=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -x node_modules/.bin/wrangler ] || [ "$(cat node_modules/.lock-stamp 2>/dev/null)" != "$LOCK_SUM" ]; then
  echo "toolchain: installing the pinned npm packages"
  WRANGLER_SEND_METRICS=false npm ci --no-audit --no-fund --loglevel=error
  echo "$LOCK_SUM" > node_modules/.lock-stamp
fi
