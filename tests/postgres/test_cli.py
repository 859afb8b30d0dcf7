"""The ``tradevault`` command against a PostgreSQL source: backup full/incremental, status
(slot health), restore into PostgreSQL and SQLite, uninstall (drops the slot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.postgres.pg_helpers import connect, digest, execute

pytestmark = pytest.mark.xdist_group("postgres")

_SCRIPT = Path(sys.executable).parent / "tradevault"
TV = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "tradevault.cli"]


def tv(work_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEVAULT_")}
    return subprocess.run([*TV, *args, "-c", str(work_dir / "tradevault.toml")], capture_output=True, text=True,
                          cwd=work_dir, env=env, timeout=120)


def test_cli_backup_status_restore_uninstall(pg, work_dir):
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, v numeric)", "INSERT INTO t VALUES (1, 1.5), (2, 2.5)")
    (work_dir / "tradevault.toml").write_text(
        f'[database]\nurl = "{src}"\nname = "pgsrc"\n\n[[locations]]\nname = "local"\n'
        f'url = "file://{work_dir / "backups"}"\n\n[agent]\nstate_dir = "{work_dir / "state"}"\n'
        f'\n[config_vcs]\npaths = []\n'
    )
    full = tv(work_dir, "backup", "full", "--json")
    assert full.returncode == 0, full.stderr
    assert json.loads(full.stdout)["rows"] == 2
    # committed synchronously: the test cluster runs with synchronous_commit = off, and
    # status (read-only: it does not flush) counts only what the WAL writer has flushed
    execute(src, "SET synchronous_commit = on", "INSERT INTO t VALUES (3, 3.5)", "DELETE FROM t WHERE id = 1")
    status = tv(work_dir, "status", "--json")
    assert status.returncode == 0, status.stderr
    capture = json.loads(status.stdout)["capture"]
    assert capture["installed"] and capture["slot"] == "tradevault_pgsrc" and capture["pending_events"] == 2
    assert capture["retained_wal_bytes"] >= 0
    incremental = tv(work_dir, "backup", "incremental", "--json")
    assert incremental.returncode == 0 and json.loads(incremental.stdout)["events"] == 2
    restored = tv(work_dir, "restore", "--to", dst, "--json")
    assert restored.returncode == 0, restored.stderr
    assert digest(dst, {"t": ["id"]}) == digest(src, {"t": ["id"]})
    again = tv(work_dir, "restore", "--to", dst)
    assert again.returncode == 2 and "not empty" in again.stderr
    planned = tv(work_dir, "restore", "--to", f"sqlite:///{work_dir / 'copy.sqlite'}", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert "would map to the other dialect (2 decision(s)):" in planned.stdout
    assert "t.v: numeric -> DECIMAL_BLOB" in planned.stdout and not (work_dir / "copy.sqlite").exists()
    assert "owners and privileges not kept (SQLite has none)" in planned.stdout
    to_sqlite = tv(work_dir, "restore", "--to", f"sqlite:///{work_dir / 'copy.sqlite'}")
    assert to_sqlite.returncode == 0 and "mapped to the other dialect" in to_sqlite.stdout, to_sqlite.stderr
    removed = tv(work_dir, "uninstall", "--json")
    assert removed.returncode == 0 and json.loads(removed.stdout)["slot_dropped"] is True
    conn = connect(src)
    try:
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0] == 0
    finally:
        conn.close()
    assert tv(work_dir, "backup", "incremental").returncode == 2
