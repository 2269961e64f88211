#!/usr/bin/env bash
# Make Debian's chromium available for the browser tests (tests/test_reports_in_browser.py).
# Idempotent: does nothing when `chromium` is on PATH already. Installs with apt-get only as root;
# otherwise prints the command to run.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    echo "chromium found: $(command -v chromium)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "chromium is not installed. Install it as root with:" >&2
    echo "    apt-get update && apt-get install -y chromium" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium is not installed and apt-get is not available: install Chromium with this system's" \
        "package manager so that \`chromium\` is on PATH" >&2
    exit 1
fi
echo "Installing Debian's chromium package"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
echo "chromium installed: $(command -v chromium)"
