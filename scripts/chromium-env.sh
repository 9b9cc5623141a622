#!/usr/bin/env bash
# Installs Debian's Chromium when missing (the HTML report tests open reports in it,
# headless) and prints its path on the last line.
#
#   bash scripts/chromium-env.sh
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  echo "chromium-env: installing Debian's chromium" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq >&2 || true
  $sudo_cmd apt-get install -y -qq --no-install-recommends chromium >&2
fi
command -v chromium
