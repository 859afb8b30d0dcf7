#!/usr/bin/env bash
# Create .venv (once) and install tradevault with its test dependencies into it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"

# Debian packages the tests and the benchmark use: the real git, sqlite3 and zstd tools,
# promtool (package prometheus) for the alert rules, and PostgreSQL 15 with the wal2json
# output plugin (the PostgreSQL tests start a private cluster from these binaries).
need=()
for pair in git:git sqlite3:sqlite3 zstd:zstd promtool:prometheus; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair##*:}")
done
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql postgresql-15)
[ -f /usr/lib/postgresql/15/lib/wal2json.so ] || need+=(postgresql-15-wal2json)
if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "please install: ${need[*]} (apt-get install ${need[*]})" >&2
    fi
fi
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.tradevault-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[test]'
    touch "$stamp"
fi
