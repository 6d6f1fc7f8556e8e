#!/usr/bin/env bash
# Debian's headless Chromium for the browser tests (Playwright drives it; no browser download).
set -euo pipefail
shell=/usr/lib/chromium/chromium-headless-shell
[ -x "$shell" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Browser tests need Debian's chromium-headless-shell: run" >&2
  echo "  sudo apt-get install -y chromium-headless-shell   (then re-run)" >&2
  exit 1
fi
echo "Installing chromium-headless-shell (Debian) for the browser tests..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-headless-shell >/dev/null
