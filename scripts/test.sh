#!/usr/bin/env bash
# Set up everything on a fresh machine, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The house rules first: style and likely bugs, the layering contracts, the typed cores.
.venv/bin/ruff check .
.venv/bin/lint-imports
.venv/bin/mypy
exec .venv/bin/python -m pytest -n 2 --dist loadgroup -q "$@"
