#!/usr/bin/env bash
# Install Debian's Chromium for the console's browser tests (tests/browser) when it is missing.
# Playwright drives it at /usr/bin/chromium: a test tool's own browser download fails on these
# machines, so nothing is fetched by Playwright itself.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "Chromium is missing: run 'apt-get install chromium' as root" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing Debian's chromium for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends chromium >/dev/null \
  || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends chromium >/dev/null; }
test -x /usr/bin/chromium
