"""Replay a plan into a fresh SQLite database, atomically.

Everything happens in a hidden temporary file next to the target: the full snapshot is
decompressed into it, tradevault's capture objects are removed from it, the incremental
events are applied, row counts are checked against what the backups say, and only then
is the file renamed over the target. A failure at any point leaves the target untouched.
"""

from __future__ import annotations

import sqlite3
import time

from restore.latest import LatestPoint
from restore.planner import Plan
from restore.replay import RestoreResult, compare_counts, finished, replay_events
from restore.sqlite.apply import SqliteApplier, user_triggers_suspended
from trade_stream.durable import replacing_sqlite_file
from trade_stream.errors import BadInputError
from trade_stream.progress import Progress, no_progress
from trade_stream.schema import DatabaseSchema
from trade_stream.sqlite.capture import remove_capture_objects
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import decompress_full


def check_target(target: DatabaseService, force: bool) -> None:
    if not target.is_empty() and not force:
        raise BadInputError(f"restore target {target.path} is not empty (use --force to replace it)")
    parent = target.path.absolute().parent
    if not parent.is_dir():
        raise BadInputError(f"restore target directory does not exist: {parent}")


def restore_sqlite(store: BackupStore, plan: Plan, target: DatabaseService, *, force: bool = False,
                   progress: Progress = no_progress) -> RestoreResult:
    started = time.perf_counter()
    check_target(target, force)
    with replacing_sqlite_file(target.path) as temp:
        schema = DatabaseSchema.from_dict(decompress_full(store, plan.full, temp, progress))
        conn = sqlite3.connect(temp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = OFF")  # a private temp file: the rename is the commit
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute("PRAGMA cache_size = -32768")  # 32 MiB: replayed updates hit pages all over
            conn.execute("BEGIN")
            remove_capture_objects(conn)
            applier = SqliteApplier(conn, schema)
            latest = LatestPoint.read(store, plan, schema)
            with user_triggers_suspended(conn, latest.objects if latest.objects_known else None):
                result = replay_events(store, plan, applier, progress)
            commit_checked(conn, result, sorted(applier.tables), snapshot_file=True)
        finally:
            conn.close()
    return finished(result, str(target.path.absolute()), plan, started)


def commit_checked(conn: sqlite3.Connection, result: RestoreResult, tables: list[str], *,
                   snapshot_file: bool = False) -> None:
    """Row counts checked against what the backups recorded, then the private file is
    committed and switched to WAL, the mode a trading bot's database runs in.
    ``snapshot_file``: the file is a decompressed SQLite snapshot; with no event replayed it
    is byte for byte the file whose checksum was just verified and whose rows were counted
    when it was taken, so counting again would prove nothing."""
    unchanged = snapshot_file and result.events == 0 and result.tables is not None
    if not (unchanged and sorted(result.tables) == tables):
        result.tables = _check_counts(conn, result.tables, tables)
    result.rows = sum(result.tables.values())
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = WAL")


def _check_counts(conn: sqlite3.Connection, expected: dict[str, int] | None,
                  tables: list[str]) -> dict[str, int]:
    return compare_counts(DatabaseService.row_counts(conn, tables), expected)
