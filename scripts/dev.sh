#!/usr/bin/env bash
# Runs the bridge locally: the worker in workerd (wrangler dev) with local KV and Durable Object
# state under .wrangler/, the demo mappings loaded, and local Accelo and Continuum stand-ins
# unless .dev.vars points at real ones. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false
PORT=${PORT:-8787}
ACCELO_PORT=${ACCELO_PORT:-8788}
CONTINUUM_PORT=${CONTINUUM_PORT:-8789}

bash scripts/toolchain.sh
[ -f .dev.vars ] || cp .dev.vars.example .dev.vars

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

VARS=()
if grep -qE '^(ACCELO_API_URL|ACCELO_DEPLOYMENT)=.+' .dev.vars; then
  echo "dev: .dev.vars configures real APIs; no stand-ins"
else
  cargo build --quiet --release -p standins
  target/release/standins --accelo-port "$ACCELO_PORT" --continuum-port "$CONTINUUM_PORT" &
  PIDS+=($!)
  VARS=(--var "ACCELO_API_URL:http://127.0.0.1:$ACCELO_PORT"
        --var "CONTINUUM_API_URL:http://127.0.0.1:$CONTINUUM_PORT"
        --var "CONTINUUM_INTEGRATOR_USER:acme"
        --var "PUBLIC_URL:http://127.0.0.1:$PORT")
fi

npx wrangler dev --port "$PORT" --ip 127.0.0.1 "${VARS[@]}" &
PIDS+=($!)
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 1
done
curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "dev: the worker did not start"; exit 1; }
bash scripts/load-mappings.sh --local

USER_NAME=$(grep -E '^CONTINUUM_INTEGRATOR_USER=' .dev.vars | cut -d= -f2- || true)
USER_NAME=${USER_NAME:-acme}
PASS=$(grep -E '^CONTINUUM_INTEGRATOR_PASSWORD=' .dev.vars | cut -d= -f2-)
ADMIN=$(grep -E '^ADMIN_TOKEN=' .dev.vars | cut -d= -f2-)
cat <<MSG

The bridge runs on http://127.0.0.1:$PORT (demo mappings loaded from fixtures/mappings).
Send it a Continuum ticket:
  curl -u '$USER_NAME:$PASS' -H 'Content-Type: application/json' \\
       --data @fixtures/tickets/new-ticket.json http://127.0.0.1:$PORT/continuum/$USER_NAME
Then look at what it did:
  curl -H 'Authorization: Bearer $ADMIN' http://127.0.0.1:$PORT/admin/status
  curl -H 'Authorization: Bearer $ADMIN' http://127.0.0.1:$PORT/admin/tickets/1001
  curl http://127.0.0.1:$ACCELO_PORT/__control/state     # the Accelo stand-in's issues
MSG
wait
