#!/usr/bin/env bash
# Installs the few system pieces Python packages cannot bring: libzbar0 (pyzbar), curl and jq (the README's
# walk-through), the anvil EVM node and the pinned Solidity compiler (npm), for the tests Chromium (BROWSER=1), and
# nginx (NGINX=1: the template's test and the gateway benchmark run it as a child process; the system service is
# never started or enabled).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq "$@" >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$@" >/dev/null; }
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get install -y -qq "$@" >/dev/null
  else
    echo "system-deps: please install these Debian packages: $*" >&2
    return 1
  fi
}

if ! ldconfig -p 2>/dev/null | grep -q 'libzbar\.so\.0'; then
  echo "system-deps: installing libzbar0 (barcode and QR reading)"
  apt_install libzbar0
fi

# curl and jq: the README's walk-through (and tests/test_readme.py, which runs it) call the API with them.
for tool in curl jq; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "system-deps: installing $tool (the README's walk-through)"
    apt_install "$tool" || echo "system-deps: could not install $tool; the README test will skip (CI requires it)" >&2
  fi
done

# anvil, the EVM node the ledger's anchoring tests (and the compose deployment) run against.
if ! ls .tools/node_modules/@foundry-rs/anvil-*/bin/anvil >/dev/null 2>&1; then
  if command -v npm >/dev/null 2>&1; then
    echo "system-deps: installing anvil (npm @foundry-rs/anvil) into .tools/"
    npm install --silent --no-audit --no-fund --prefix .tools @foundry-rs/anvil >/dev/null 2>&1 \
      || echo "system-deps: npm could not install anvil; the anvil tests will skip (CI requires them)" >&2
  else
    echo "system-deps: npm not found; install Node.js/npm to run the anvil tests (CI requires them)" >&2
  fi
fi

# The Solidity compiler that builds contracts/Anchor.sol (npm `solc`: the official compiler as JavaScript, bundled in
# the package, so compiling downloads nothing). Exactly the version contracts/compile.py pins; the tests compare the
# committed bytecode with its output.
solc_version="$(sed -n 's/^SOLC_VERSION = "\(.*\)"$/\1/p' contracts/compile.py)"
if [ "$(node -p "require('./.tools/node_modules/solc/package.json').version" 2>/dev/null)" != "$solc_version" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "system-deps: installing solc $solc_version (npm solc) into .tools/"
    npm install --silent --no-audit --no-fund --save-exact --prefix .tools "solc@$solc_version" >/dev/null 2>&1 \
      || echo "system-deps: npm could not install solc; the contract build test will skip (CI requires it)" >&2
  else
    echo "system-deps: npm not found; install Node.js/npm to check the contract build (CI requires it)" >&2
  fi
fi

# Chromium for the review console's browser tests (`make test`; Playwright drives Debian's build, it downloads none).
if [ "${BROWSER:-0}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  echo "system-deps: installing chromium (browser tests of the review console)"
  apt_install chromium || echo "system-deps: could not install chromium; the browser tests will skip (CI requires them)" >&2
fi

# Fonts for the OCR benchmark's image generator (benchmarks only: the committed test images need none).
if [ "${FONTS:-0}" = 1 ] && ! fc-list 2>/dev/null | grep -qi dejavu; then
  echo "system-deps: installing fonts for the OCR image generator"
  apt_install fonts-dejavu-core fonts-urw-base35 fonts-noto-mono || true
fi

# nginx for deploy/nginx.conf.template's test (`make test`) and benchmarks/gateway.py (`make bench`). Debian starts the
# service on install where an init system runs; policy-rc.d forbids that for this install, since the tests and the
# benchmark run nginx as their own child process with a config, prefix and pid file of their own.
if [ "${NGINX:-0}" = 1 ] && ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "system-deps: installing nginx-light (the reverse-proxy template's test and the gateway benchmark)"
  if [ "$(id -u)" = 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    apt_install nginx-light || echo "system-deps: could not install nginx; its tests will skip (CI requires them)" >&2
    rm -f /usr/sbin/policy-rc.d
  else
    apt_install nginx-light || echo "system-deps: could not install nginx; its tests will skip (CI requires them)" >&2
  fi
fi
