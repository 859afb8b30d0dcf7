"""``restore_to``: one entry point for every restore, choosing the path by the target's
dialect and the full backup's codec.

=================  ===============  ==========================================
full backup codec  target           path
=================  ===============  ==========================================
sqlite-file        sqlite:///...    ``replay.restore_sqlite`` (physical)
pgcopy-binary      sqlite:///...    ``cross_dialect.restore_rows_to_sqlite``
sqlite-file        postgresql://    ``replay_postgres.restore_postgres`` (mapped)
pgcopy-binary      postgresql://    ``replay_postgres.restore_postgres``
=================  ===============  ==========================================
"""

from __future__ import annotations

from restore.planner import Plan
from restore.replay import RestoreResult, restore_sqlite
from trade_stream.errors import IntegrityError, StorageError
from trade_stream.manifest import ManifestEntry
from trade_stream.object_format import CODEC_SQLITE_FILE
from trade_stream.postgres.database import is_postgres, open_database
from trade_stream.progress import Progress, no_progress
from trade_stream.postgres.snapshot_rows import CODEC_PGCOPY as CODEC_ROWS
from trade_stream.storage.store import BackupStore


def full_codec(store: BackupStore, entry: ManifestEntry) -> str:
    problems = []
    for location in store.locations:
        try:
            with store.open_reader(location, entry) as reader:
                return reader.header.codec
        except (IntegrityError, StorageError, OSError) as exc:
            problems.append(str(exc))
    raise IntegrityError(f"{entry.object}: no readable copy in any location ({'; '.join(problems)})")


def restore_to(store: BackupStore, plan: Plan, target_url: str, *, force: bool = False,
               progress: Progress = no_progress) -> RestoreResult:
    target = open_database(target_url)
    codec = full_codec(store, plan.full)
    if codec not in (CODEC_SQLITE_FILE, CODEC_ROWS):
        raise IntegrityError(f"{plan.full.object}: unknown full backup codec {codec!r}")
    if is_postgres(target):
        from restore.postgres.replay import restore_postgres

        return restore_postgres(store, plan, target, force=force, progress=progress)
    if codec == CODEC_ROWS:
        from restore.cross_dialect import restore_rows_to_sqlite

        return restore_rows_to_sqlite(store, plan, target, force=force, progress=progress)
    return restore_sqlite(store, plan, target, force=force, progress=progress)
