#!/usr/bin/env bash
# Debian packages the tests need: headless Chromium (browser tests, driven by Playwright; no
# browser download), docker-compose 1.29 (validates docker-compose.yml without an engine) and
# nginx (checks the map API's caching proxy config; the bench runs through it).
set -euo pipefail
need=()
[ -x /usr/lib/chromium/chromium-headless-shell ] || need+=(chromium-headless-shell)
command -v docker-compose >/dev/null || need+=(docker-compose)
[ -x /usr/sbin/nginx ] || need+=(nginx)  # checks deploy/nginx/map-api.conf (nginx -t)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "The tests need Debian packages: ${need[*]}. Install them with" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
  echo "then run the test command again." >&2
  exit 1
fi
echo "Installing Debian packages for the tests: ${need[*]} ..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
