"""A SQLite backup into PostgreSQL (``restore_postgres`` uses these): the plan's point is
made as a SQLite file first, in a private directory (``point_file``: the physical snapshot
decompressed, and the incrementals replayed into it by the SQLite restore); what that file
says of its tables (``sqlite_catalog``) makes their PostgreSQL form
(``restore.schema_to_postgres``), every value judged against its declared limits; its
rows are bulk-loaded with COPY by ``restore.postgres.sqlite_load``."""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Collection, Iterator, NamedTuple

from primitives.sqlite_files import open_read_only
from restore.planner import Plan
from restore.postgres.generated import settle_generated
from restore.postgres.sqlite_catalog import read_tables, views
from restore.replay import RestoreResult
from restore.schema_to_postgres import table_to_postgres
from trade_stream.manifest import ManifestEntry
from trade_stream.object_format import CODEC_SQLITE_FILE
from trade_stream.postgres.database import post_load
from trade_stream.progress import Progress, no_progress
from trade_stream.schema import DatabaseSchema
from trade_stream.sqlite.database import DatabaseService
from trade_stream.sqlite.virtual_tables import virtual_tables
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import decompress_full, schema_of


@contextlib.contextmanager
def snapshot_file(store: BackupStore, entry: ManifestEntry, progress: Progress) -> Iterator[Path]:
    """The full backup's SQLite file, decompressed and verified, in a private directory
    removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tradevault-cross-") as tmp:
        path = Path(tmp) / "snapshot.sqlite"
        decompress_full(store, entry, path, progress)  # verified before it returns
        yield path


class Point(NamedTuple):
    """The SQLite file a restore into PostgreSQL loads (``point_file``)."""

    path: Path
    source: DatabaseSchema  # its tables, as the source's own capture describes them
    replayed: RestoreResult | None  # the SQLite restore that made it, if one did


@contextlib.contextmanager
def point_file(store: BackupStore, plan: Plan, source: DatabaseSchema, progress: Progress) -> Iterator[Point]:
    """The SQLite file a restore into PostgreSQL loads, in a private directory removed
    afterwards: the full backup's snapshot (described by ``source``, its recorded schema);
    with incrementals, the plan's point as the SQLite restore makes it.

    Why the events are not replayed into PostgreSQL: they mean what they meant to SQLite.
    ``INSERT OR REPLACE`` deletes the rows its new one conflicts with and fires no delete
    trigger (SQLite's rule without recursive triggers), so the stream holds an insert of a
    key the table still has. The SQLite restore applies inserts the way SQLite did;
    PostgreSQL refused them ("replay diverged ... duplicate key", exit 3)."""
    if not plan.incrementals:
        with snapshot_file(store, plan.full, progress) as path:
            yield Point(path, source, None)
        return
    from restore.dispatch import open_target  # the SQLite target, picked by name

    with tempfile.TemporaryDirectory(prefix="tradevault-cross-") as tmp:
        path = Path(tmp) / "point.sqlite"
        result = open_target(f"sqlite:///{path}").restore(store, plan, CODEC_SQLITE_FILE, progress=progress)
        conn = sqlite3.connect(path)
        try:  # out of WAL mode, which a reader opening it read-only cannot always use
            conn.execute("PRAGMA journal_mode = DELETE")
            tables = [DatabaseService.table_schema(conn, name) for name in sorted(result.tables)]
        finally:
            conn.close()
        if plan.tables is not None:  # the others' keys still tell a foreign key its parent's
            tables += [t for t in source.tables if t.name not in result.tables]
        yield Point(path, DatabaseSchema(dialect=source.dialect, tables=tables), result)


class Migration:
    """The PostgreSQL form of a SQLite file's tables (a backup's, at the restore's point)."""

    def __init__(self, schema: DatabaseSchema, positions: dict[str, list[Any]], notes: list[str],
                 views: list[tuple[str, str]]) -> None:
        self.schema = schema
        self._positions = positions
        self.notes = notes
        self.views = views

    @classmethod
    def read(cls, path: Path, source: DatabaseSchema, chosen: Collection[str] | None = None) -> "Migration":
        """The tables of the snapshot at ``path`` (described by ``source``), mapped;
        ``chosen``: only these (a foreign key still finds its parent's key)."""
        conn = open_read_only(path)
        try:
            tables = read_tables(conn, [t for t in source.tables if chosen is None or t.name in chosen])
            found = views(conn)
            virtual = virtual_tables(conn)
        finally:
            conn.close()
        keys = {t.name: list(t.primary_key) for t in source.tables}
        mapped = [table_to_postgres(t, keys) for t in tables]
        positions = {name: position for m in mapped for name, position in m.positions.items()}
        notes = [note for m in mapped for note in m.notes]
        notes += [f"virtual table {v.name} ({v.module}) not kept: SQLite's own"
                  + (f"; its rows are in table {v.content}" if v.content else "") for v in virtual.values()
                  if chosen is None or v.name in chosen or v.content in chosen]
        return cls(DatabaseSchema(dialect="postgresql", tables=[m.schema for m in mapped]), positions, notes, found)

    def positions(self, counters: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """The identity sequences' positions: each AUTOINCREMENT counter as the snapshot has
        it, or as the incrementals recorded it since (``counters``, by table)."""
        out = dict(self._positions)
        for table in self.schema.tables:
            sequence = (post_load(table).get("sequences") or {}).get((table.primary_key or [""])[0], {}).get("name")
            if sequence in out and table.name in counters:
                out[sequence] = max(out[sequence], counters[table.name])
        return out

    def settle_generated(self, conn: Any, path: Path) -> list[str]:
        """The generated columns checked against the values SQLite computed in the file at
        ``path`` (``restore.postgres.generated``); returns the notes."""
        source = open_read_only(path)
        try:
            return [note for table in self.schema.tables for note in settle_generated(conn, source, table)]
        finally:
            source.close()

    def create_views(self, conn: Any, latest: list[dict[str, str]] | None = None) -> None:
        """The source's views, each as SQLite wrote it: kept when PostgreSQL accepts it.
        ``latest``: the views and triggers the last incremental recorded (else the
        snapshot's views)."""
        import psycopg

        found = self.views if latest is None else [(o["name"], o["ddl"]) for o in latest if o["kind"] == "view"]
        for name, statement in found:
            try:
                with conn.transaction():
                    conn.execute(statement)
            except psycopg.Error as exc:
                self.notes.append(f"view {name} not kept: {str(exc).splitlines()[0]}")


def mapping_notes(store: BackupStore, plan: Plan) -> list[str]:
    """What the restore of ``plan`` into PostgreSQL changes or leaves out (``--dry-run``):
    the full backup's tables as its snapshot describes them."""
    source = DatabaseSchema.from_dict(schema_of(store, plan.full))
    with snapshot_file(store, plan.full, no_progress) as path:
        migration = Migration.read(path, source, plan.tables)
    return migration.notes + [f"view {name}: created if PostgreSQL accepts its SQL" for name, _ in migration.views]
