"""Builds the domain objects a command needs from the settings (the composition root)."""

from __future__ import annotations

from typing import Callable

from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.encryption import Cipher
from trade_stream.storage.locations import Location, open_location
from trade_stream.progress import Progress, no_progress
from trade_stream.storage.store import BackupStore
from tradevault.settings import Settings


def database(settings: Settings) -> DatabaseService:
    """DatabaseService for SQLite, PostgresDatabase for PostgreSQL (same duck type where shared)."""
    from trade_stream.postgres.database import open_database

    return open_database(settings.database.url, settings.database.include, settings.database.exclude)


def locations(settings: Settings) -> list[Location]:
    return [
        open_location(loc.name, loc.url, endpoint_url=loc.endpoint_url, region=loc.region,
                      access_key_id=loc.access_key_id, secret_access_key=loc.secret_access_key)
        for loc in settings.locations
    ]


def source_name(settings: Settings, db: DatabaseService) -> str:
    return settings.database.name or db.name


def cipher(settings: Settings) -> Cipher:
    return Cipher(settings.encryption.recipients, settings.encryption.identity_file)


def store(settings: Settings, db: DatabaseService | None = None) -> BackupStore:
    db = db or database(settings)
    return BackupStore(source_name(settings, db), locations(settings), cipher=cipher(settings),
                       min_locations=settings.backup.min_locations)


def engine(settings: Settings, progress: Progress = no_progress, *, db: DatabaseService | None = None,
           backup_store: BackupStore | None = None,
           annotate: Callable[[], dict[str, str]] | None = None) -> BackupEngine:
    """The backup engine of the configured source's dialect."""
    db = db or database(settings)
    backup_store = backup_store or store(settings, db)
    if getattr(db, "dialect", "") == "postgresql":
        from trade_stream.postgres.backup import PostgresBackupEngine

        return PostgresBackupEngine(db, backup_store, work_dir=settings.work_dir,  # type: ignore[return-value]
                                    level=settings.backup.compression_level, progress=progress, annotate=annotate)
    return BackupEngine(db, backup_store, work_dir=settings.work_dir, level=settings.backup.compression_level,
                        use_wal=settings.database.sqlite_wal, progress=progress, annotate=annotate,
                        copy_in_memory=settings.backup.copy_in_memory)
