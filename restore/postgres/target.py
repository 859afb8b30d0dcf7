"""A PostgreSQL database as a restore target: built in a private schema, published in
one transaction (restore.postgres.replay), from either kind of full backup."""

from __future__ import annotations

from restore.dispatch import unknown_codec
from restore.planner import Plan
from restore.replay import RestoreResult
from trade_stream.object_format import CODEC_PGCOPY, CODEC_SQLITE_FILE
from trade_stream.postgres.database import PostgresDatabase
from trade_stream.progress import Progress, no_progress
from trade_stream.storage.store import BackupStore


class PostgresTarget:
    dialect = "postgresql"
    accepts_kafka = False

    def __init__(self, url: str) -> None:
        self.db = PostgresDatabase(url)

    def restore(self, store: BackupStore, plan: Plan, codec: str, *, force: bool = False,
                progress: Progress = no_progress) -> RestoreResult:
        if codec not in (CODEC_SQLITE_FILE, CODEC_PGCOPY):
            raise unknown_codec(plan.full, codec)
        from restore.postgres.replay import restore_postgres

        return restore_postgres(store, plan, self.db, force=force, progress=progress)

    def mapping(self, store: BackupStore, plan: Plan, codec: str) -> list[str]:
        if codec != CODEC_SQLITE_FILE:
            return []
        from restore.postgres.from_sqlite import mapping_notes

        return mapping_notes(store, plan)
