"""A SQLite file as a restore target: a SQLite full backup is decompressed and replayed
into (physical), a PostgreSQL one is loaded row by row (from_postgres)."""

from __future__ import annotations

from restore.dispatch import unknown_codec
from restore.planner import Plan
from restore.replay import RestoreResult
from trade_stream.object_format import CODEC_PGCOPY, CODEC_SQLITE_FILE
from trade_stream.progress import Progress, no_progress
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.store import BackupStore


class SqliteTarget:
    dialect = "sqlite"
    accepts_kafka = True

    def __init__(self, url: str) -> None:
        self.db = DatabaseService(url)

    def restore(self, store: BackupStore, plan: Plan, codec: str, *, force: bool = False,
                progress: Progress = no_progress) -> RestoreResult:
        if codec == CODEC_SQLITE_FILE:
            from restore.sqlite.replay import restore_sqlite

            return restore_sqlite(store, plan, self.db, force=force, progress=progress)
        if codec == CODEC_PGCOPY:
            from restore.sqlite.from_postgres import restore_rows_to_sqlite

            return restore_rows_to_sqlite(store, plan, self.db, force=force, progress=progress)
        raise unknown_codec(plan.full, codec)

    def mapping(self, store: BackupStore, plan: Plan, codec: str) -> list[str]:
        if codec != CODEC_PGCOPY:
            return []
        from restore.sqlite.from_postgres import mapping_notes

        return mapping_notes(store, plan)
