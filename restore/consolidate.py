"""Consolidation: a new full backup built from the store, without touching the source.

A restore of the latest point decompresses the last full backup and replays every event
stored after it; after a busy day that replay, not the decompression, is what the engineer
waits for at 3 a.m. Consolidating restores the chain's latest point into a private file
(verified like every restore: checksums, row counts) and stores that file as the next full
backup of the same capture, so the next restore starts from it and replays nothing
(a "synthetic full"). The trading database is never read: it costs the source nothing.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

from restore.evidence import witnesses
from restore.planner import Plan, Target, plan_restore
from restore.sqlite.replay import restore_sqlite
from trade_stream.errors import BadInputError
from trade_stream.manifest import FULL
from trade_stream.priority import at_low_priority
from trade_stream.progress import Progress, no_progress
from trade_stream.publish import BackupResult
from trade_stream.schema import DatabaseSchema
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import schema_of


def _latest_plan(store: BackupStore) -> Plan | None:
    """How a restore of the latest point would go today (None: no backups yet)."""
    entries, damaged = store.entries_and_damage()
    # a head beyond the catalog: a full built from an older point would bury the evidence
    return plan_restore(entries, Target(), damaged, witnesses(store)) if entries else None


def _replayed(plan: Plan) -> int:
    return sum(e.count for e in plan.incrementals)


def events_since_full(engine: BackupEngine) -> int:
    """Events a restore of the latest point would replay today."""
    plan = _latest_plan(engine.store)
    return _replayed(plan) if plan else 0


def consolidate(engine: BackupEngine, progress: Progress = no_progress, *, work_dir: str | None = None,
                min_events: int = 1) -> BackupResult:
    """Store the latest point as a full backup when a restore would replay at least
    ``min_events`` events to reach it; otherwise store nothing (``skipped`` says why).
    Runs below the bot's CPU and disk priority, like a full backup."""
    return at_low_priority(lambda: _consolidate(engine, progress, work_dir, min_events))


def _consolidate(engine: BackupEngine, progress: Progress, work_dir: str | None, min_events: int) -> BackupResult:
    started = time.perf_counter()
    with engine.exclusive():
        plan = _latest_plan(engine.store)
        if plan is None:
            raise BadInputError("no backups yet: run `tradevault backup full` first")
        if schema_of(engine.store, plan.full).get("dialect", "sqlite") != "sqlite":
            raise BadInputError("consolidation builds SQLite snapshots: this source is not SQLite")
        replay = _replayed(plan)
        if not plan.incrementals or replay < max(min_events, 1):
            return BackupResult(FULL, None, None, plan.stop_seq, 0, 0, 0.0, [],
                                skipped=f"a restore of the latest point replays {replay:,} event(s) "
                                        f"(consolidating from {max(min_events, 1):,})")
        with tempfile.TemporaryDirectory(prefix="tradevault-consolidate-", dir=work_dir) as tmp:
            path = Path(tmp) / "consolidated.sqlite"
            restored = restore_sqlite(engine.store, plan, DatabaseService(f"sqlite:///{path}"), progress=progress)
            info = _snapshot_info(path, restored.last_seq, restored.tables, plan.full.capture_id)
            origin = {"consolidated_from": [plan.full.object, *restored.incrementals],
                      "events_replayed": restored.events}
            # the same restore point as the last incremental: the same config commits
            result = engine.store_full_file(path, info, restored.last_ts or plan.full.last_ts or 0, origin,
                                            dict(plan.incrementals[-1].config))
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _snapshot_info(path: Path, seq: int, counts: dict[str, int], capture_id: str) -> dict:
    """What a full backup records of its file, read from the consolidated file itself; the
    file goes back to rollback-journal mode, the mode every stored snapshot has, and is
    compacted."""
    db = DatabaseService(f"sqlite:///{path}")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("VACUUM")  # replayed updates split pages: a compact file restores faster
        tables = [db.table_schema(conn, name) for name in sorted(counts)]
    finally:
        conn.close()
    return {"seq": seq, "schema": DatabaseSchema(dialect="sqlite", tables=tables), "counts": counts,
            "capture_id": capture_id}

