#!/usr/bin/env bash
# Puts every document in a mappings folder (default fixtures/mappings: config.json → key
# `config`, ...) into the MAPPINGS namespace in one call. Extra arguments go to wrangler,
# e.g. `--local` or `--local --persist-to DIR`; without --local it writes to the deployed KV.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=fixtures/mappings
if [ "${1:-}" = "--dir" ]; then DIR=$2; shift 2; fi
BULK=$(mktemp)
trap 'rm -f "$BULK"' EXIT
node -e '
const fs = require("fs"), path = require("path"), dir = process.argv[1];
const docs = fs.readdirSync(dir).filter(f => f.endsWith(".json")).sort().map(f => {
  const value = fs.readFileSync(path.join(dir, f), "utf8").trim();
  JSON.parse(value); // refuse to upload a broken document
  return { key: f.slice(0, -5), value };
});
fs.writeFileSync(process.argv[2], JSON.stringify(docs));
console.error(`mappings: ${docs.map(d => d.key).join(", ")}`);
' "$DIR" "$BULK"
WRANGLER_SEND_METRICS=false npx wrangler kv bulk put --binding MAPPINGS "$@" "$BULK"
