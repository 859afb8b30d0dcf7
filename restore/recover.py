"""Recover on start: find out whether the protected database is missing or corrupt and,
if so, put the latest restore point in its place. The broken file is kept aside under a
timestamped name, never deleted (Litestream's ``restore -if-db-not-exists``, extended to
corruption)."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from primitives.sqlite_files import open_read_only
from restore.evidence import witnesses
from restore.planner import Target, plan_restore
from restore.sqlite.replay import restore_sqlite
from trade_stream.errors import BadInputError, IntegrityError, StorageError
from trade_stream.progress import Progress, no_progress
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.store import BackupStore

MISSING = "missing"
CORRUPT = "corrupt"


@dataclass
class DatabaseRecovery:
    database: str
    problem: str = ""  # "" = healthy
    kind: str = ""  # missing | corrupt
    action: str = "none"
    kept_aside: list[str] = field(default_factory=list)
    restored_seq: int | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def sqlite_problem(path: Path) -> tuple[str, str]:
    """(kind, problem) of a SQLite database file, ("", "") when healthy."""
    if not path.exists():
        return MISSING, f"{path} does not exist"
    if path.stat().st_size == 0:
        return MISSING, f"{path} is empty"
    try:
        conn = open_read_only(path)
        try:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            check = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return CORRUPT, f"{path} is corrupt: {exc}"
    if [row[0] for row in check] != ["ok"]:
        return CORRUPT, f"{path} fails SQLite's check: {check[0][0]}"
    if tables == 0:
        return MISSING, f"{path} holds no tables"
    return "", ""


def _set_aside(path: Path) -> list[str]:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    moved = []
    for suffix in ("", "-wal", "-shm", "-journal"):
        source = Path(str(path) + suffix)
        if source.exists():
            target = path.with_name(f"{path.name}.broken-{stamp}{suffix}")
            source.rename(target)
            moved.append(str(target))
    return moved


def recover_database(store: BackupStore, db: DatabaseService, *, if_missing: bool = True, if_corrupt: bool = True,
                     backups_known: str = "", progress: Progress = no_progress) -> DatabaseRecovery:
    """``backups_known``: the caller's evidence that backups of this source were taken
    (empty when it has none). A missing database with no backup and no such evidence is a
    first run (the bot creates it), not a failure."""
    started = time.perf_counter()
    path = db.path.absolute()
    report = DatabaseRecovery(database=str(path))
    kind, problem = sqlite_problem(path)
    report.kind, report.problem = kind, problem
    if not kind or (kind == MISSING and not if_missing) or (kind == CORRUPT and not if_corrupt):
        report.action = "none" if not kind else "left alone (not asked to recover this case)"
        return report
    unreachable = ""
    try:
        entries, damaged = store.entries_and_damage()
    except StorageError as exc:
        entries, damaged, unreachable = [], {}, str(exc)
    if not entries and kind == MISSING and not backups_known and not damaged:
        report.action = "first run: no backup yet (the agent takes the first full backup once the database exists)"
        if unreachable:
            report.action += f"; note: {unreachable}"
        report.kind, report.problem = "", ""
        return report
    if not entries:
        where = unreachable or "none found in " + ", ".join(location.name for location in store.locations)
        evidence = f", although backups were taken ({backups_known})" if backups_known else ""
        raise IntegrityError(f"{problem}, and no backup to restore it from: {where}{evidence}")
    plan = plan_restore(entries, Target(), damaged, witnesses(store))  # never an older point in silence
    if kind == CORRUPT or path.exists():
        report.kept_aside = _set_aside(path)
    try:
        result = restore_sqlite(store, plan, db, progress=progress)
    except BadInputError as exc:
        raise IntegrityError(f"{problem}; restore failed: {exc}") from None
    report.action = f"restored the latest restore point (seq {result.last_seq}) into place"
    report.restored_seq = result.last_seq
    report.seconds = round(time.perf_counter() - started, 3)
    return report
