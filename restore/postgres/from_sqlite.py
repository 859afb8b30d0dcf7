"""A SQLite backup into PostgreSQL (``restore_postgres`` uses these): the physical
snapshot is decompressed into a private temporary file first; what it says of its tables
(``sqlite_catalog``) makes their PostgreSQL form (``restore.schema_to_postgres``); its
rows are bulk-loaded with COPY by ``restore.postgres.sqlite_load``;
events are mapped the same way before they are applied, and a value of an event that
breaks its column's declared limit widens the column first (``Migration.widen``)."""

from __future__ import annotations

import contextlib
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Collection, Iterator

from primitives.sqlite_files import open_read_only
from restore.planner import Plan
from restore.postgres.sqlite_catalog import from_statement, read_tables, views
from restore.schema_to_postgres import table_to_postgres
from restore.type_limits import Limit, fits, limit_of
from restore.type_mapping import key_mapper, row_mapper, sqlite_value_converters
from trade_stream.manifest import ManifestEntry
from trade_stream.postgres.database import post_load
from trade_stream.progress import Progress, no_progress
from trade_stream.schema import Column, DatabaseSchema, TableSchema, quote_ident
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import decompress_full, schema_of

ValueMap = Callable[[list[Any]], list[Any]]
Convert = Callable[[Any], Any]


@contextlib.contextmanager
def snapshot_file(store: BackupStore, entry: ManifestEntry, progress: Progress) -> Iterator[Path]:
    """The full backup's SQLite file, decompressed and verified, in a private directory
    removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tradevault-cross-") as tmp:
        path = Path(tmp) / "snapshot.sqlite"
        decompress_full(store, entry, path, progress)  # verified before it returns
        yield path


class Migration:
    """The PostgreSQL form of a SQLite backup's tables, and the mapping of their events."""

    def __init__(self, schema: DatabaseSchema, positions: dict[str, list[Any]], notes: list[str],
                 views: list[tuple[str, str]]) -> None:
        self.schema = schema
        self._positions = positions
        self.notes = notes
        self.views = views
        self._keys = {t.name: list(t.primary_key) for t in schema.tables}
        self._broken: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @classmethod
    def read(cls, path: Path, source: DatabaseSchema, chosen: Collection[str] | None = None) -> "Migration":
        """The tables of the snapshot at ``path`` (described by ``source``), mapped;
        ``chosen``: only these (a foreign key still finds its parent's key)."""
        conn = open_read_only(path)
        try:
            tables = read_tables(conn, [t for t in source.tables if chosen is None or t.name in chosen])
            found = views(conn)
        finally:
            conn.close()
        keys = {t.name: list(t.primary_key) for t in source.tables}
        mapped = [table_to_postgres(t, keys) for t in tables]
        positions = {name: position for m in mapped for name, position in m.positions.items()}
        notes = [note for m in mapped for note in m.notes]
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

    def table_to_pg(self, table: TableSchema) -> TableSchema:
        """A table a SCHEMA event brings, known by its CREATE statement."""
        if table.dialect == "postgresql":
            return table
        self._keys[table.name] = list(table.primary_key)
        mapped = table_to_postgres(from_statement(table), self._keys)
        self.notes.extend(note for note in mapped.notes if note not in self.notes)
        return mapped.schema

    def mappers(self, table: TableSchema) -> tuple[ValueMap, ValueMap]:
        """(key mapper, row mapper) for events of the (mapped) table; a value beyond its
        column's limit is noted for ``widen``."""
        converters = sqlite_value_converters(table)
        for i, column in enumerate(table.columns):
            limit = limit_of(column.declared)
            if limit is not None:
                converters[i] = self._checked(table.name, column.name, limit, converters[i])
        return key_mapper(table, converters), row_mapper(converters)

    def _checked(self, table: str, column: str, limit: Limit, inner: Convert) -> Convert:
        def convert(value: Any) -> Any:
            out = inner(value)
            if not fits(limit, out):
                with self._lock:
                    self._broken.add((table, column))
            return out

        return convert

    def breaks(self, table: str) -> bool:
        with self._lock:
            return any(t == table for t, _ in self._broken)

    def widen(self, conn: Any, table: TableSchema) -> TableSchema | None:
        """Before the events of ``table`` are sent: each column an event's value does not
        fit changes to the type without the limit (noted). The new description, or None."""
        with self._lock:
            columns = {c for t, c in self._broken if t == table.name}
        if not columns:
            return None
        changed = []
        for column in table.columns:
            limit = limit_of(column.declared)
            if column.name in columns and limit is not None:
                conn.execute(f"ALTER TABLE {quote_ident(table.name)} ALTER COLUMN {quote_ident(column.name)} "
                             f"TYPE {limit.wider}")
                self.notes.append(f"{table.name}.{column.name}: {column.declared} -> {limit.wider}: "
                                  f"{limit.describe(column.declared)} (SQLite does not enforce it)")
                column = Column(name=column.name, declared=limit.wider, family=column.family,
                                nullable=column.nullable)
            changed.append(column)
        with self._lock:
            self._broken = {(t, c) for t, c in self._broken if t != table.name}
        return TableSchema(name=table.name, columns=changed, primary_key=table.primary_key, dialect=table.dialect,
                           ddl=table.ddl)

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
