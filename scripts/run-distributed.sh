#!/usr/bin/env bash
# The distributed deployment without containers, on this machine's PostgreSQL and NATS JetStream: one process per
# service and the gateway on http://127.0.0.1:${PORT:-8000}. Ctrl-C stops them all. (compose.yaml is the same in
# containers.) Needs: PostgreSQL on 127.0.0.1:5432 (trust auth, as on the project's machines) and nats-server -js.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT=${PORT:-8000}
DB=${SMARTGATE_DIST_DB:-smartgate_dist}
# Migrations run as the owner (postgres); the services connect as APP_ROLE, which may read and append to the ledger
# and nothing more (no UPDATE/DELETE/TRUNCATE/ALTER there, not superuser): `smartgate migrate --grant` makes it.
APP_ROLE=${SMARTGATE_DIST_APP_ROLE:-smartgate_app}
export SMARTGATE_MIGRATE_DATABASE_URL=${SMARTGATE_MIGRATE_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/$DB}
export SMARTGATE_DATABASE_URL=${SMARTGATE_DATABASE_URL:-postgresql://$APP_ROLE@127.0.0.1:5432/$DB}
export SMARTGATE_BUS_URL=${SMARTGATE_BUS_URL:-nats://127.0.0.1:4222}
export SMARTGATE_BUS_STREAM=${SMARTGATE_BUS_STREAM:-SMARTGATE_DIST}
export SMARTGATE_BUS_PREFIX=${SMARTGATE_BUS_PREFIX:-smartgatedist}
export SMARTGATE_VAR_DIR=${SMARTGATE_VAR_DIR:-var/distributed}
export SMARTGATE_LOG_JSON=${SMARTGATE_LOG_JSON:-false}

if ! pg_isready -h 127.0.0.1 -p 5432 -q; then echo "run-distributed: PostgreSQL is not running on 127.0.0.1:5432" >&2; exit 1; fi
if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then echo "run-distributed: NATS is not running on 127.0.0.1:4222 (nats-server -js)" >&2; exit 1; fi
psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE \"$DB\""
mkdir -p "$SMARTGATE_VAR_DIR/logs"
$BIN/smartgate migrate --grant "$APP_ROLE"
[ -f "$SMARTGATE_VAR_DIR/demo.env" ] || $BIN/smartgate demo seed

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
routes=()
port=$((PORT + 1))
for service in declarations provenance inspection webhooks traceability exchange; do
  $BIN/smartgate serve --port "$port" --services "$service" --no-console >"$SMARTGATE_VAR_DIR/logs/$service.log" 2>&1 &
  pids+=($!)
  routes+=(--route "$service=http://127.0.0.1:$port")
  port=$((port + 1))
done
$BIN/smartgate gateway --port "$PORT" "${routes[@]}" &
pids+=($!)
echo "run-distributed: logs in $SMARTGATE_VAR_DIR/logs, demo keys in $SMARTGATE_VAR_DIR/demo.env"
wait -n "${pids[@]}"
echo "run-distributed: a process exited; stopping the others" >&2
