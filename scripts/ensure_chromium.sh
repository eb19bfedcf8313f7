#!/usr/bin/env bash
# The browser tests drive Debian's chromium through Playwright (never `playwright install`:
# only package registries are reachable). Install it from apt when it is missing.
set -eu
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ERROR: $CHROMIUM is missing and apt-get is not available to install it." >&2
  echo "Install Chromium with your package manager and set CHROMIUM=/path/to/chromium," >&2
  echo "or skip the browser tests: make test PYTEST_ARGS='--ignore=exchange_site/tests/browser'" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "ERROR: installing chromium needs root (or sudo)." >&2; exit 1; }
  SUDO="sudo"
fi
echo "Installing chromium from Debian's packages for the browser tests" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
test -x "$CHROMIUM" || { echo "ERROR: chromium installed but $CHROMIUM is not there." >&2; exit 1; }
