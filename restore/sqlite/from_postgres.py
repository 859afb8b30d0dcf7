"""A PostgreSQL backup into SQLite (``pgcopy-binary`` parsed by psycopg's loaders): like
``restore_sqlite`` (private temp file next to the target, one transaction, verified, then
renamed into place), with tables created in their SQLite form (``restore.schema_to_sqlite``:
keys, unique constraints, foreign keys, defaults) and rows/events mapped to SQLite values
(``restore.type_mapping``); after the replay the indexes are built, AUTOINCREMENT counters
set where the source's sequences stand, and the foreign keys checked."""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Callable, Collection

from restore.descriptions import described, latest_descriptions
from restore.latest import LatestPoint
from restore.planner import Plan
from restore.relaxed import NOT_NULL_AFTER, changing_constraints, final_constraints, relaxed, relaxed_until_final
from restore.replay import RestoreResult, finished, replay_events
from restore.schema_to_sqlite import SqliteTable, database_notes, table_to_sqlite
from restore.sqlite.apply import SqliteApplier
from restore.sqlite.apply import create_table as create_sqlite_table
from restore.sqlite.replay import check_target, commit_checked, left_out_keys
from restore.type_mapping import key_mapper, pg_value_converters, row_mapper
from trade_stream.durable import replacing_sqlite_file
from trade_stream.errors import IntegrityError
from trade_stream.events import SCHEMA, ChangeEvent
from trade_stream.manifest import ManifestEntry
from trade_stream.object_format import CODEC_PGCOPY, ObjectReader
from trade_stream.postgres.catalog import partitioned_names
from trade_stream.postgres.database import post_load
from trade_stream.postgres.snapshot_rows import decode_copy_chunks, iter_table_rows
from trade_stream.progress import Progress, no_progress
from trade_stream.schema import DatabaseSchema, TableSchema, quote_ident
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import schema_of

ValueMap = Callable[[list[Any]], list[Any]]


class _MappedSqliteApplier:
    """Maps events of a PostgreSQL source to SQLite values, then applies them."""

    def __init__(self, conn: sqlite3.Connection, pg_schema: DatabaseSchema,
                 latest: dict[str, TableSchema] | None = None, relax: set[str] | None = None,
                 finals: dict[str, tuple[Any, ...]] | None = None) -> None:
        self.pg_tables = {t.name: t for t in pg_schema.tables}
        self.latest = latest or {}  # a SCHEMA event's table is finished with (restore.descriptions)
        # and created without NOT NULL until its last description (restore.relaxed)
        self.relax, self.finals = relax or set(), finals or {}
        self.inner = SqliteApplier(conn, DatabaseSchema(
            dialect="sqlite", tables=[table_to_sqlite(t).schema for t in pg_schema.tables]), replace_conflicts=False)
        self._maps: dict[str, tuple[ValueMap, ValueMap]] = {}

    @property
    def applied(self) -> int:
        return self.inner.applied

    @property
    def tables(self) -> dict[str, TableSchema]:
        return self.inner.tables

    def fold_key(self, table: str) -> list[int] | None:
        return self.inner.fold_key(table)

    def _mappers(self, table: str) -> tuple[ValueMap, ValueMap]:
        maps = self._maps.get(table)
        if maps is None:
            pg = self.pg_tables.get(table)
            if pg is None:
                raise IntegrityError(f"replay: event for unknown table {table!r}")
            converters = pg_value_converters(pg)
            maps = (key_mapper(pg, converters), row_mapper(converters))
            self._maps[table] = maps
        return maps

    def apply(self, events: list[ChangeEvent]) -> None:
        mapped = []
        for event in events:
            if event.op == SCHEMA:
                self._maps.pop(event.table, None)
                schema = None
                if event.table_schema is not None:
                    pg = relaxed_until_final(described(TableSchema.from_dict(event.table_schema), self.latest),
                                             self.relax, self.finals)
                    self.pg_tables[pg.name] = pg
                    schema = table_to_sqlite(pg).schema.to_dict()
                else:
                    self.pg_tables.pop(event.table, None)
                mapped.append(ChangeEvent(event.seq, event.tx, event.ts, event.table, SCHEMA, table_schema=schema))
                continue
            key_map, row_map = self._mappers(event.table)
            mapped.append(ChangeEvent(
                event.seq, event.tx, event.ts, event.table, event.op,
                key_map(event.key) if event.key is not None else None,
                row_map(event.row) if event.row is not None else None,
            ))
        self.inner.apply(mapped)


def _load_rows_into_sqlite(conn: sqlite3.Connection, store: BackupStore, entry: ManifestEntry,
                           pg_schema: DatabaseSchema, progress: Progress) -> int:
    """The rows of ``pg_schema``'s tables; those of the object's other tables (left out of
    the restore) are read past."""
    tables = {t.name: t for t in pg_schema.tables}
    statements, mappers = {}, {}
    for table in pg_schema.tables:
        cols = ", ".join(quote_ident(c) for c in table.column_names)
        marks = ", ".join("?" * len(table.columns))
        statements[table.name] = f"INSERT INTO {quote_ident(table.name)} ({cols}) VALUES ({marks})"
        mappers[table.name] = row_mapper(pg_value_converters(table))

    def consume(reader: ObjectReader) -> int:
        if reader.header.codec != CODEC_PGCOPY:
            raise IntegrityError(f"{reader.name}: unexpected codec {reader.header.codec!r}")
        for name in tables:  # a retry from another copy starts from scratch
            conn.execute(f"DELETE FROM {quote_ident(name)}")
        count = 0
        left_out = {t["name"] for t in reader.header.schema.get("tables", ())} - set(tables)
        chunks = (chunk for chunk in decode_copy_chunks(reader.body_chunks(4 << 20), reader.name)
                  if chunk[0] not in left_out)
        for name, rows in iter_table_rows(chunks, tables, reader.name, reader.header.extra.get("text_tables", ())):
            mapper = mappers[name]
            conn.executemany(statements[name], [mapper(r) for r in rows])
            count += len(rows)
            progress("load", count, entry.count)
        return count

    return store.read_object(entry, consume)


def restore_rows_to_sqlite(store: BackupStore, plan: Plan, target: DatabaseService, *, force: bool = False,
                           progress: Progress = no_progress) -> RestoreResult:
    """A PostgreSQL (``pgcopy-binary``) backup into a fresh SQLite file, atomically."""
    started = time.perf_counter()
    check_target(target, force)
    recorded = DatabaseSchema.from_dict(schema_of(store, plan.full))
    pg_schema = plan.chosen(recorded)
    with replacing_sqlite_file(target.path) as temp:
        conn = sqlite3.connect(temp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("BEGIN")
            latest = LatestPoint.read(store, plan, pg_schema)
            # NOT NULL that changes within the plan: not until the table's resynchronisation
            # (restore.relaxed; SQLite cannot add it afterwards)
            relax = changing_constraints(latest.table_sources)
            newest = latest_descriptions(latest.table_sources)  # restore.descriptions
            created = [relaxed(t) if t.name in relax else t for t in (described(t, newest) for t in pg_schema.tables)]
            for table in created:
                create_sqlite_table(conn, table_to_sqlite(table).schema)
            _load_rows_into_sqlite(conn, store, plan.full, pg_schema, progress)
            applier = _MappedSqliteApplier(conn, DatabaseSchema(dialect="postgresql", tables=created), newest,
                                           relax, final_constraints(latest.table_sources))
            result = replay_events(store, plan, applier, progress)
            # a key into a partitioned table (SQLite has none: its partitions are tables)
            # stays, unenforced, as one into a table left out
            left_out = {t.name for t in recorded.tables} - set(applier.tables) | partitioned_names(latest.objects)
            keys, unchecked = left_out_keys(conn, applier.tables, left_out)
            result.notes = finish_tables(conn, [table_to_sqlite(t) for t in applier.pg_tables.values()],
                                         latest.sequences, unchecked) + database_notes(latest.objects) + keys
            result.notes += [f"{name}.{column}: left nullable (its NOT NULL changed within the incremental that"
                             " holds the point)" for name, table in applier.pg_tables.items()
                             for column in post_load(table).get(NOT_NULL_AFTER, [])]
            commit_checked(conn, result, sorted(applier.tables))
        finally:
            conn.close()
    return finished(result, str(target.path.absolute()), plan, started)


def mapping_notes(store: BackupStore, plan: Plan) -> list[str]:
    """What the restore of ``plan`` into SQLite changes or leaves out (``--dry-run``), as
    the full backup describes the tables."""
    pg_schema = plan.chosen(DatabaseSchema.from_dict(schema_of(store, plan.full)))
    latest = LatestPoint.read(store, plan, pg_schema)
    newest = latest_descriptions(latest.table_sources)
    return [note for table in pg_schema.tables for note in table_to_sqlite(described(table, newest)).notes] + \
        database_notes(latest.objects)


def finish_tables(conn: sqlite3.Connection, tables: list[SqliteTable], positions: dict[str, list[Any]],
                  unchecked: Collection[str] = ()) -> list[str]:
    """After the data: the indexes (one SQLite cannot build is skipped, noted), the
    AUTOINCREMENT counters where the source's sequences stand (past the largest id in any
    case), then the foreign keys checked: a row without its parent is a divergence (not in
    the ``unchecked`` tables, whose keys point into tables left out). Returns the notes of
    every mapping decision."""
    notes: list[str] = []
    for table in tables:
        notes.extend(table.notes)
        for statement in table.indexes:
            try:
                conn.execute(statement)
            except sqlite3.Error as exc:
                notes.append(f"{table.schema.name}: index not kept ({exc}): {statement}")
        if table.autoincrement:
            recorded = positions.get(table.sequence or "")
            last = recorded[0] if recorded and recorded[1] else (recorded[0] - 1 if recorded else 0)
            name, key = table.schema.name, quote_ident(table.autoincrement)
            conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (name,))
            conn.execute(f"INSERT INTO sqlite_sequence (name, seq) SELECT ?, max(coalesce(max({key}), 0), ?)"
                         f" FROM {quote_ident(name)}", (name, last))
    checked = [t.schema.name for t in tables if not t.unchecked_keys and t.schema.name not in unchecked]
    for name in checked:
        broken = conn.execute(f"PRAGMA foreign_key_check({quote_ident(name)})").fetchone()
        if broken is not None:
            raise IntegrityError(f"restored table {name!r} breaks its foreign key to {broken[2]!r} "
                                 f"(row {broken[1]})")
    return notes
