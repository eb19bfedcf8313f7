#!/usr/bin/env bash
# The multi-host test (multihost/, -m multihost) puts HAProxy from Debian in front of the web
# and ws hosts. Install it from apt when it is missing.
set -eu
HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
if [ -x "$HAPROXY" ] || command -v haproxy >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ERROR: haproxy is missing and apt-get is not available to install it." >&2
  echo "Install HAProxy with your package manager, or leave out the multi-host test:" >&2
  echo "  make test PYTEST_ARGS='-m \"not multihost\"'" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "ERROR: installing haproxy needs root (or sudo)." >&2; exit 1; }
  SUDO="sudo"
fi
echo "Installing haproxy from Debian's packages for the multi-host test" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq haproxy >/dev/null
command -v haproxy >/dev/null 2>&1 || { echo "ERROR: haproxy installed but not on PATH." >&2; exit 1; }
