#!/usr/bin/env bash
# `make compose-test`: compose.yaml run for real. Builds the images (scripts/images.sh, cached), generates the
# secrets into a git-ignored env file, brings the deployment up with docker-compose on its own bridge network, waits
# on the health checks, runs tests/test_compose_run.py against the gateway (end to end, then `docker kill` and
# `docker network disconnect` faults), and tears everything down, volumes too. Bounded: every wait has a timeout
# and the whole run is killed after SMARTGATE_COMPOSE_TIMEOUT seconds (default 900).
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=${SMARTGATE_DEBIAN_SUITE:-bookworm}
PROJECT=${SMARTGATE_COMPOSE_PROJECT:-smartgate-ct}
STATE=.cache/compose
TIMEOUT=${SMARTGATE_COMPOSE_TIMEOUT:-900}
PYTHON=${PYTHON:-.venv/bin/python}
t0=$SECONDS
log() { echo "compose-test: [$((SECONDS - t0))s] $*" >&2; }

docker info >/dev/null 2>&1 || {
  echo "compose-test: no Docker engine; start one (as root: dockerd --iptables=false --ip-masq=false &)" >&2
  exit 1
}
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null \
    && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "compose-test: installing docker-compose (Debian package)" >&2  # an engine without the compose client
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null
fi
if docker compose version >/dev/null 2>&1; then COMPOSE_BIN=(docker compose); else COMPOSE_BIN=(docker-compose); fi

scripts/images.sh
log "images ready"

# Secrets: random per run, in a file only root can read, never in compose.yaml or git (.cache/ is ignored).
mkdir -p "$STATE"
chmod 700 "$STATE"
envfile=$STATE/$PROJECT.env
port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
signing_key=$(docker run --rm --network none smartgate:local smartgate ledger keygen compose-test.smartgate |
  grep -o 'PRIVATE+KEY+[^ ]*')
exchange_key=$(docker run --rm --network none smartgate:local smartgate exchange keygen --code vn-kimthanh | tail -n 1)
umask 077
cat >"$envfile" <<EOF
SMARTGATE_SECRET_KEY=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(48))')
POSTGRES_PASSWORD=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(24))')
SMARTGATE_APP_DATABASE_PASSWORD=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(24))')
SMARTGATE_LEDGER_SIGNING_KEY=$signing_key
SMARTGATE_EXCHANGE_SIGNING_KEY=$exchange_key
SMARTGATE_CHAIN_RPC_URL=
SMARTGATE_CHAIN_PRIVATE_KEY=
SMARTGATE_PORT=127.0.0.1:$port
SMARTGATE_IMAGE=smartgate:local
SMARTGATE_POSTGRES_IMAGE=smartgate-postgres:$SUITE
SMARTGATE_NATS_IMAGE=smartgate-nats:$SUITE
SMARTGATE_ANVIL_IMAGE=smartgate-anvil:$SUITE
EOF
compose=("${COMPOSE_BIN[@]}" -p "$PROJECT" --env-file "$envfile" -f compose.yaml)

teardown() {
  log "logs of the run: $STATE/$PROJECT.log"
  "${compose[@]}" logs --no-color >"$STATE/$PROJECT.log" 2>&1 || true
  "${compose[@]}" down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1 || true
  rm -f "$envfile"
  log "torn down"
}
trap teardown EXIT
# Whatever a run killed half-way left behind.
"${compose[@]}" down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1 || true

log "up (waits on the health checks of postgres, nats, migrate and the four services)"
up_start=$SECONDS
timeout "$TIMEOUT" "${compose[@]}" up -d --no-build 2>"$STATE/up.log" || {
  cat "$STATE/up.log" >&2
  log "compose up failed"
  "${compose[@]}" ps >&2 || true
  exit 1
}
url=http://127.0.0.1:$port
for _ in $(seq 120); do
  if "$PYTHON" -c "import httpx, sys; sys.exit(httpx.get('$url/readyz', timeout=3).status_code != 200)" 2>/dev/null; then
    break
  fi
  sleep 1
done
log "healthy and ready at $url in $((SECONDS - up_start))s"

test_start=$SECONDS
SMARTGATE_COMPOSE="${compose[*]}" SMARTGATE_COMPOSE_URL=$url PYTHONPATH=$PWD \
  timeout "$TIMEOUT" "$PYTHON" -m pytest tests/test_compose_run.py -q -p no:randomly -p no:cacheprovider -x
log "tests passed in $((SECONDS - test_start))s; whole run $((SECONDS - t0))s"
