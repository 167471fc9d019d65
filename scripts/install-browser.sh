#!/usr/bin/env bash
# Headless Chromium and its driver from the Debian archive, for the report's browser tests
# (`pytest -m browser`). Nothing is downloaded at test time. Needs root (or sudo).
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
chromium --version
chromedriver --version
