#!/usr/bin/env bash
# Lint and run the whole test suite in .venv (made by scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check autovoice tests scripts
.venv/bin/ruff format --check autovoice tests scripts
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
