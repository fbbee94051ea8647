#!/usr/bin/env bash
# Debian packages the suite drives for real: Chromium (the emulator's inbox page, tests/emulator/test_inbox_page.py,
# driven by Playwright) and redis-server (the Celery deployment test starts its own). Installed only when missing;
# without root and apt-get those tests skip with the reason (CI, where they are required, runs as root).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "Not installed (needs root and apt-get): ${missing[*]}; the tests that drive them will skip." >&2
fi
