"""Every incremental records the rows per table at its last seq (restore checks against
them). Tables with only key-keeping updates carry the previous count instead of counting
again; anything that can change a count is counted — checked against real counts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore


def _engine(tmp_path: Path) -> tuple[BackupEngine, sqlite3.Connection]:
    path = tmp_path / "db.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE plain (id INTEGER PRIMARY KEY, v)")
    conn.execute("CREATE TABLE refs (id INTEGER PRIMARY KEY, ref TEXT UNIQUE)")
    conn.execute("CREATE TABLE kv (k TEXT, n INTEGER, v, PRIMARY KEY (k, n)) WITHOUT ROWID")
    conn.executemany("INSERT INTO plain VALUES (?, ?)", [(i, i) for i in range(1, 51)])
    conn.executemany("INSERT INTO refs VALUES (?, ?)", [(i, f"r{i}") for i in range(1, 11)])
    conn.executemany("INSERT INTO kv VALUES (?, ?, ?)", [(f"k{i}", i, i) for i in range(1, 11)])
    store = BackupStore("db", [open_location("local", f"file://{tmp_path / 'backups'}")])
    engine = BackupEngine(DatabaseService(f"sqlite:///{path}"), store, work_dir=str(tmp_path))
    engine.full()
    return engine, conn


def _real(conn: sqlite3.Connection) -> dict[str, int]:
    return DatabaseService.row_counts(conn, ["kv", "plain", "refs"])


def test_counts_after_updates_inserts_deletes_key_changes_and_silent_replaces_are_exact(tmp_path):
    engine, conn = _engine(tmp_path)
    steps = [
        "UPDATE plain SET v = v + 1",                         # updates only: carried
        "UPDATE kv SET v = 'x' WHERE n < 5",                  # composite key kept: carried
        "INSERT INTO plain VALUES (100, 0)",                  # insert: counted
        "DELETE FROM kv WHERE n = 1",                         # delete: counted
        "UPDATE plain SET id = 200 WHERE id = 1",             # key change: counted
        "UPDATE OR REPLACE refs SET ref = 'r2' WHERE id = 1",  # drops row 2 without a delete event
        "INSERT OR REPLACE INTO plain VALUES (200, 5)",       # replace of an existing row
        "UPDATE OR REPLACE plain SET id = 2 WHERE id = 3",    # key change onto an existing row
    ]
    for sql in steps:
        conn.execute(sql)
        result = engine.incremental()
        assert result.tables == _real(conn), sql
    assert _real(conn)["refs"] == 9  # the silent replace really removed a row



def test_tables_with_only_key_keeping_updates_are_not_counted_again(tmp_path, monkeypatch):
    engine, conn = _engine(tmp_path)
    counted: list[str] = []
    original = DatabaseService.row_counts
    monkeypatch.setattr(DatabaseService, "row_counts",
                        staticmethod(lambda c, tables: counted.extend(tables) or original(c, tables)))
    conn.execute("UPDATE plain SET v = v + 1")
    conn.execute("UPDATE refs SET ref = ref || 'x'")
    recorded = engine.incremental().tables
    assert counted == ["refs"]  # a UNIQUE column: always counted; plain and kv carried over
    assert recorded == original(conn, ["kv", "plain", "refs"])
    assert "plain" not in counted and "kv" not in counted  # carried over
    assert "refs" in counted  # a UNIQUE column: always counted
