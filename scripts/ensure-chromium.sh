#!/usr/bin/env bash
# Make sure Debian's chromium is installed: the live chain page's tests drive it headless
# through Playwright (a Python package of the dev extra), which never downloads a browser.
set -euo pipefail
CHROMIUM="${TICKFLEET_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  echo "chromium: $CHROMIUM"
  exit 0
fi
echo "chromium not found at $CHROMIUM: installing Debian's chromium package"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
[ -x "$CHROMIUM" ] || { echo "chromium is still missing at $CHROMIUM" >&2; exit 1; }
echo "chromium: installed $CHROMIUM"
