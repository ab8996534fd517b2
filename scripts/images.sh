#!/usr/bin/env bash
# Builds every image compose.yaml needs without a container registry (`make images`): a Debian base from
# debootstrap (`docker import`), then Python, PostgreSQL and NATS from Debian's packages, anvil from npm, and the
# platform from the Dockerfile on that Python. On a machine that pulls official images none of this is needed:
# `docker compose up --build` uses python:3.11-slim-bookworm, postgres, nats and foundry (docs/deployment.md).
#
# Cached: each image carries a label with the hash of its inputs (Dockerfile, context, base image id); an image
# whose label matches is not rebuilt. Builds use the host's network (--network host) for apt, pip and npm, since
# the engine here runs without NAT (dockerd --iptables=false --ip-masq=false).
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=${SMARTGATE_DEBIAN_SUITE:-bookworm}
MIRROR=${SMARTGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${SMARTGATE_IMAGE_CACHE:-.cache/images}
ANVIL_VERSION=${SMARTGATE_ANVIL_VERSION:-1.7.1}
export DOCKER_BUILDKIT=0 # the classic builder: no buildx needed, and --network host works
mkdir -p "$CACHE"

log() { echo "images: $*" >&2; }

label_of() { docker image inspect -f '{{index .Config.Labels "smartgate.inputs"}}' "$1" 2>/dev/null || true; }
image_id() { docker image inspect -f '{{.Id}}' "$1"; }

# Hash of files (paths given), skipping caches.
hash_files() {
  find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
}

# build TAG INPUTS docker-build-args... : skip when TAG's label equals INPUTS.
build() {
  local tag=$1 inputs=$2
  shift 2
  if [ "$(label_of "$tag")" = "$inputs" ]; then
    log "$tag is up to date"
    return
  fi
  log "building $tag"
  local start=$SECONDS
  docker build --quiet --network host --label "smartgate.inputs=$inputs" -t "$tag" "$@" >/dev/null \
    2> >(grep -v -e DEPRECATED -e BuildKit -e 'environment-variable' -e '^$' >&2)
  log "built $tag in $((SECONDS - start))s"
}

# 1. The base: a minimal Debian from debootstrap.
BASE=smartgate-base:$SUITE
base_inputs="debootstrap-minbase-$SUITE-$MIRROR"
if [ "$(label_of "$BASE")" != "$base_inputs" ]; then
  rootfs=$CACHE/rootfs-$SUITE
  if [ ! -x "$rootfs/usr/bin/apt-get" ]; then
    if ! command -v debootstrap >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing debootstrap (Debian package)"  # a fresh machine with an engine but no debootstrap
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
    fi
    command -v debootstrap >/dev/null || { echo "images: install debootstrap (apt-get install debootstrap)" >&2; exit 1; }
    log "debootstrap $SUITE into $rootfs"
    rm -rf "$rootfs"
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log"
  fi
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  log "importing $BASE"
  tar -C "$rootfs" -c . | docker import --change "LABEL smartgate.inputs=$base_inputs" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["bash"]' \
    - "$BASE" >/dev/null
fi
base_id=$(image_id "$BASE")

# 2. Python (with the machine's own certificate authorities, for pip behind an inspecting proxy), PostgreSQL and
# NATS from Debian's packages.
ctx=$CACHE/python-context
rm -rf "$ctx" && mkdir -p "$ctx/ca"
cp deploy/images/python.Dockerfile "$ctx/Dockerfile"
find /usr/local/share/ca-certificates -name '*.crt' -exec cp {} "$ctx/ca/" \; 2>/dev/null || true
build "smartgate-python:$SUITE" "$(hash_files "$ctx")-$base_id" --build-arg "BASE_IMAGE=$BASE" "$ctx"
for name in postgres nats; do
  inputs=$(hash_files deploy/images/$name.Dockerfile deploy/images/postgres-entrypoint.sh)-$base_id
  build "smartgate-$name:$SUITE" "$inputs" --build-arg "BASE_IMAGE=$BASE" -f "deploy/images/$name.Dockerfile" deploy/images
done

# 3. anvil from npm (the binary of @foundry-rs/anvil's platform package).
anvil_inputs=$(hash_files deploy/images/anvil.Dockerfile)-$ANVIL_VERSION-$base_id
if [ "$(label_of "smartgate-anvil:$SUITE")" != "$anvil_inputs" ]; then
  ctx=$CACHE/anvil-$ANVIL_VERSION
  if [ ! -x "$ctx/anvil" ]; then
    log "npm install @foundry-rs/anvil@$ANVIL_VERSION"
    mkdir -p "$ctx/npm"
    npm install --silent --no-audit --no-fund --prefix "$ctx/npm" "@foundry-rs/anvil@$ANVIL_VERSION" >/dev/null
    cp "$(ls "$ctx"/npm/node_modules/@foundry-rs/anvil-linux-*/bin/anvil | head -1)" "$ctx/anvil"
  fi
  cp deploy/images/anvil.Dockerfile "$ctx/Dockerfile"
  build "smartgate-anvil:$SUITE" "$anvil_inputs" --build-arg "BASE_IMAGE=$BASE" "$ctx"
else
  log "smartgate-anvil:$SUITE is up to date"
fi

# 4. The platform: the project's own Dockerfile on that Python.
python_id=$(image_id "smartgate-python:$SUITE")
# shellcheck disable=SC2046 # the sources the Dockerfile copies, one word each
platform_inputs=$(hash_files Dockerfile .dockerignore $(awk '/^COPY /{for (i = 2; i < NF; i++) print $i}' Dockerfile))-$python_id
build smartgate:local "$platform_inputs" --build-arg "BASE_IMAGE=smartgate-python:$SUITE" .
