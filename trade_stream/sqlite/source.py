"""A SQLite database file as a ``Source``: triggers into a change log (capture.py), full
backups as compressed copies of the file (backup.py)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, Callable

from trade_stream.errors import BadInputError
from trade_stream.manifest import ManifestEntry, chain_position
from trade_stream.progress import Progress, no_progress
from trade_stream.source import BackupEngine, ChangeLog, EngineOptions, Pending, PendingWatch
from trade_stream.sqlite.capture import CHANGES, SqliteCapture
from trade_stream.sqlite.commit_points import CommitPointWatcher
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.store import BackupStore


class _ChangeLogWatch:
    """One read-only connection, asked every agent tick: the cheapest questions only (the
    highest seq and the oldest pending row's time, both by the seq index); and a watcher
    thread that learns the commit boundaries (commit_points.py)."""

    def __init__(self, db: DatabaseService, journal: Path | None) -> None:
        self.capture = SqliteCapture(db)
        self.conn = db.connect(readonly=True)
        self.watcher = CommitPointWatcher(db, journal)

    def pending(self, position: int | None) -> Pending:
        schema_changed = self.capture.needs_sync(self.conn)
        try:
            last = self.capture.last_seq(self.conn)
            position = position or 0
            if last <= position:
                return Pending(0, None, schema_changed)
            row = self.conn.execute(f"SELECT ts FROM {CHANGES} WHERE seq > ? ORDER BY seq LIMIT 1",
                                    (position,)).fetchone()
            return Pending(last - position, row[0] if row else None, schema_changed)
        except sqlite3.Error:
            return Pending(0, None, schema_changed)

    def commit_points(self) -> list[int]:
        return self.watcher.take()

    def close(self) -> None:
        self.watcher.close()
        self.conn.close()


class SqliteSource:
    dialect = "sqlite"
    physical_snapshots = True

    def __init__(self, url: str, include: list[str] | None = None, exclude: list[str] | None = None,
                 schema: str = "") -> None:
        if schema not in ("", "main"):
            raise BadInputError(f"[database] schema = {schema!r}: a SQLite database has one schema, main "
                                "(the setting is for PostgreSQL)")
        self.db = DatabaseService(url, include, exclude)

    @property
    def url_text(self) -> str:
        return self.db.url_text

    @property
    def display_url(self) -> str:
        return self.db.url_text

    @property
    def name(self) -> str:
        return self.db.name

    @property
    def database_file(self) -> Path | None:
        return self.db.path

    def exists(self) -> bool:
        return self.db.exists()

    def require_exists(self) -> None:
        self.db.require_exists()

    def engine(self, store: BackupStore, options: EngineOptions | None = None, *,
               progress: Progress = no_progress,
               annotate: Callable[[], dict[str, str]] | None = None) -> BackupEngine:
        from trade_stream.sqlite.backup import BackupEngine as SqliteBackupEngine

        if options is None:
            options = EngineOptions()
        return SqliteBackupEngine(self.db, store, work_dir=options.work_dir, level=options.level,
                                  use_wal=options.use_wal, progress=progress, annotate=annotate,
                                  copy_in_memory=options.copy_in_memory)

    def capture_status(self, store: BackupStore, entries: list[ManifestEntry]) -> dict[str, Any]:
        if not self.db.exists():
            return {"installed": False}
        now = time.time_ns() // 1000
        conn = self.db.connect(readonly=True)
        try:
            left_out = self.db.select(conn).left_out
            capture = SqliteCapture(self.db)
            if not capture.is_installed(conn):
                return {"installed": False, "unprotected": left_out}
            pending, oldest = capture.pending(conn, chain_position(entries) or 0)
            return {
                "installed": True,
                "unprotected": left_out,
                "last_seq": capture.last_seq(conn),
                "pending_events": pending,
                "lag_seconds": round((now - oldest) / 1e6, 3) if oldest else 0.0,
                "schema_change_pending": capture.needs_sync(conn),
            }
        finally:
            conn.close()

    def uninstall(self, source_name: str) -> dict[str, Any]:
        self.db.require_exists()
        conn = self.db.connect()
        try:
            capture = SqliteCapture(self.db)
            installed = capture.is_installed(conn)
            if installed:
                capture.uninstall(conn)
        finally:
            conn.close()
        return {"database": self.db.url_text, "capture_removed": installed}

    def capture_id(self, source_name: str) -> str | None:
        conn = self.db.connect(readonly=True)
        try:
            capture = SqliteCapture(self.db)
            return capture.meta(conn).get("capture_id") if capture.is_installed(conn) else None
        finally:
            conn.close()

    def stored_upto(self) -> int | None:
        if not self.db.exists():
            return None
        conn = self.db.connect_untouched()
        try:
            capture = SqliteCapture(self.db)
            return capture.stored_upto(conn) if capture.is_installed(conn) else None
        finally:
            conn.close()

    def watch(self, state_dir: Path | None = None) -> PendingWatch | None:
        journal = None
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            journal = state_dir / f"commit-points-{self.db.name}.log"
        return _ChangeLogWatch(self.db, journal)

    def change_log(self) -> ChangeLog | None:
        return SqliteCapture(self.db)
