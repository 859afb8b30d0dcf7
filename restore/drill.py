"""Restore drills: prove, continuously, that the backups restore to what the source held.

A drill copies the source (SQLite's online backup API: a consistent copy at one seq S
without blocking writers), makes sure the stored chain reaches S, restores ``--seq S``
into a scratch database and compares per-table row counts and content digests with the
copy, and its schema (every table, index, view and trigger statement). Equal digests and
schemas at the same seq mean the backups reproduce the source exactly.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection

from restore.planner import Target, plan_restore
from restore.sqlite.replay import restore_sqlite
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.capture import SqliteCapture
from trade_stream.sqlite.database import DatabaseService
from trade_stream.sqlite.digest import database_digest


@dataclass
class DrillResult:
    ok: bool
    seq: int
    restore_seconds: float
    seconds: float
    tables: dict[str, int] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    finished_at: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def schema_objects(conn: sqlite3.Connection, tables: Collection[str]) -> dict[tuple[str, str], str]:
    """The protected tables with their indexes and triggers, and the views: (type, name) ->
    statement (tradevault's capture objects aside)."""
    return {(kind, name): sql for kind, name, table, sql in conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL"
        " AND substr(name, 1, 12) != '_tradevault_'") if kind == "view" or table in tables}


def schema_differences(expected: dict[tuple[str, str], str], actual: dict[tuple[str, str], str]) -> list[str]:
    """A restore whose schema differs from the source's is a failed drill, whatever its rows."""
    out = [f"{kind} {name}: missing from the restore" for kind, name in sorted(expected.keys() - actual.keys())]
    out += [f"{kind} {name}: not in the source" for kind, name in sorted(actual.keys() - expected.keys())]
    out += [f"{kind} {name}: definition differs" for (kind, name), sql in sorted(expected.items())
            if (kind, name) in actual and actual[(kind, name)] != sql]
    return out


def restore_drill(engine: BackupEngine, work_dir: str = "", seal: Callable[[], Any] | None = None) -> DrillResult:
    """``seal``: how the caller seals an incremental (the agent hands its commit points to
    each one); by default ``engine.incremental``."""
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="tradevault-drill-", dir=work_dir or None))
    try:
        copy_path = scratch / "source-at-seq.sqlite"
        source = engine.db.connect(readonly=True)
        target = sqlite3.connect(copy_path)
        try:
            source.backup(target, pages=-1)
        finally:
            target.close()
            source.close()
        copy = sqlite3.connect(copy_path)
        try:
            capture = SqliteCapture(engine.db)
            seq = capture.last_seq(copy)
            schema = capture.schema_at(copy, seq)
            keys = {t.name: t.primary_key for t in schema.tables}
            expected_counts = DatabaseService.row_counts(copy, keys)
            expected = database_digest(copy, keys)
            expected_schema = schema_objects(copy, keys)
        finally:
            copy.close()
        (seal or engine.incremental)()  # the chain now reaches at least ``seq``
        store = engine.store
        entries, damaged = store.entries_and_damage()
        plan = plan_restore(entries, Target(seq=seq), damaged)
        restored_path = scratch / "restored.sqlite"
        began = time.perf_counter()
        restore_sqlite(store, plan, DatabaseService(f"sqlite:///{restored_path}"))
        restore_seconds = time.perf_counter() - began
        restored = sqlite3.connect(restored_path)
        try:
            counts = DatabaseService.row_counts(restored, keys)
            actual = database_digest(restored, keys)
            restored_schema = schema_objects(restored, keys)
        finally:
            restored.close()
        mismatches = [f"{t}: {counts[t]} rows, source had {expected_counts[t]}" for t in keys
                      if counts[t] != expected_counts[t]]
        mismatches += [f"{t}: content differs" for t in keys
                       if actual[t] != expected[t] and counts[t] == expected_counts[t]]
        mismatches += schema_differences(expected_schema, restored_schema)
        return DrillResult(ok=not mismatches, seq=seq, restore_seconds=round(restore_seconds, 3),
                           seconds=round(time.perf_counter() - started, 3), tables=counts,
                           mismatches=mismatches, finished_at=time.time_ns() // 1000)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
