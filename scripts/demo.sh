#!/usr/bin/env bash
# Set up everything on a fresh machine, then run the main job on the embedded default
# (SQLite + local directories): `tradevault demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/tradevault demo "$@"
