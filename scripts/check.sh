#!/usr/bin/env bash
# Install everything the tests need, then run the whole suite: lint, types, tests.
# This is the README's second command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet -e ".[dev]"

# The HTML report is tested in a real browser: Debian's Chromium, never a downloaded one.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "scripts/check.sh: install Debian's chromium package (as root: apt-get install chromium)" >&2
        exit 2
    fi
fi

python -m ruff check .
python -m ruff format --check .
python -m mypy
python -m pytest "$@"
