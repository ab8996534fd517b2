#!/usr/bin/env bash
# Installs the few system pieces Python packages cannot bring: libzbar0 (pyzbar) and the anvil EVM node (npm).
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
