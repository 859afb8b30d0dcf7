"""A PostgreSQL database as a ``Source``: logical decoding through a replication slot of
ours (capture.py, wal2json.py), full backups as binary COPY inside an exported snapshot
(backup.py). Nothing here imports psycopg until a connection is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from trade_stream.errors import BadInputError
from trade_stream.manifest import ManifestEntry
from trade_stream.postgres.database import PostgresDatabase
from trade_stream.progress import Progress, no_progress
from trade_stream.source import BackupEngine, ChangeLog, EngineOptions, PendingWatch
from trade_stream.storage.store import BackupStore


class PostgresSource:
    dialect = "postgresql"
    database_file: Path | None = None
    physical_snapshots = False  # full backups are COPY streams: no drills or consolidation yet

    def __init__(self, url: str, include: list[str] | None = None, exclude: list[str] | None = None,
                 schema: str = "") -> None:
        self.db = PostgresDatabase(url, include, exclude, schema)

    @property
    def url_text(self) -> str:
        return self.db.url_text

    @property
    def display_url(self) -> str:
        return self.db.safe_url()

    @property
    def name(self) -> str:
        return self.db.name

    def exists(self) -> bool:
        return self.db.exists()

    def require_exists(self) -> None:
        self.db.require_exists()

    def engine(self, store: BackupStore, options: EngineOptions | None = None, *,
               progress: Progress = no_progress,
               annotate: Callable[[], dict[str, str]] | None = None) -> BackupEngine:
        from trade_stream.postgres.backup import PostgresBackupEngine

        if options is None:
            options = EngineOptions()
        return PostgresBackupEngine(self.db, store, work_dir=options.work_dir, level=options.level,
                                    progress=progress, annotate=annotate)

    def capture_status(self, store: BackupStore, entries: list[ManifestEntry]) -> dict[str, Any]:
        from trade_stream.postgres.capture import slot_name_for
        from trade_stream.postgres.status import capture_status

        capture = capture_status(self.db, slot_name_for(store.source))
        if capture.get("installed") and entries:
            capture["last_seq"] = entries[-1].last_seq
        try:
            conn = self.db.connect()
        except BadInputError:
            return capture
        try:
            capture["unprotected"] = (self.db.select(conn).left_out + self.db.unlogged(conn)
                                      + self.db.foreign_tables(conn) + self.db.out_of_reach(conn))
        finally:
            conn.close()
        return capture

    def uninstall(self, source_name: str) -> dict[str, Any]:
        from trade_stream.postgres.status import uninstall_capture

        return uninstall_capture(self.db, source_name)

    def capture_id(self, source_name: str) -> str | None:
        from trade_stream.postgres.capture import PostgresCapture, slot_name_for

        conn = self.db.connect()
        try:
            capture = PostgresCapture(self.db, slot_name_for(source_name))
            return capture.meta(conn).get("capture_id") if capture.is_installed(conn) else None
        finally:
            conn.close()

    def stored_upto(self) -> int | None:
        return None  # the slot keeps what is not confirmed; confirmation follows storage

    def watch(self, state_dir: Path | None = None) -> PendingWatch | None:
        return None  # counting needs a peek at the slot: the agent seals on the clock

    def change_log(self) -> ChangeLog | None:
        return None  # the slot is read once, by the incremental that stores it
