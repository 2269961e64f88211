#!/usr/bin/env bash
# Set up .venv if needed, then run the whole test suite: lint, format check, import contracts and pytest.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/store -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports --no-cache
.venv/bin/python -m pytest "$@"
