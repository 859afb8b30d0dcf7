"""Replay a plan into a PostgreSQL database, atomically.

Everything happens in one transaction (PostgreSQL's DDL is transactional): the tables are
created without keys, the full backup's rows are bulk-loaded with COPY, then primary keys,
indexes, defaults and sequences are added, the incremental events are applied, sequences
are set past the restored maximum and row counts are checked against what the backups
say. Only then is the transaction committed: a failure at any point (including a corrupt
object found while reading it) leaves the target as it was.

The full backup may be a PostgreSQL logical snapshot (``pgcopy-binary``) or a SQLite
physical one (``sqlite-file``: tables and values mapped by ``type_mapping``, see
``restore.cross_dialect``).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from restore.planner import Plan
from restore.replay import RestoreResult, compare_counts, finished, replay_events, steps_ahead
from trade_stream.stored_objects import schema_of
from trade_stream.apply_postgres import (
    PostgresApplier, create_table, finish_table, set_sequences,
)
from trade_stream.errors import BadInputError, IntegrityError
from trade_stream.gc_pause import cyclic_gc_paused
from trade_stream.manifest import ManifestEntry
from trade_stream.object_format import ObjectReader
from trade_stream.postgres_database import PostgresDatabase
from trade_stream.progress import Progress, no_progress
from trade_stream.schema import DatabaseSchema, quote_ident
from trade_stream.snapshot_rows import CODEC_PGCOPY, decode_copy_chunks
from trade_stream.store import BackupStore

SnapshotLoader = Callable[[Any, BackupStore, ManifestEntry, DatabaseSchema, Progress], int]


def check_pg_target(target: PostgresDatabase, force: bool) -> None:
    if not target.is_empty() and not force:
        raise BadInputError(f"restore target {target.safe_url()} is not empty (use --force to replace it)")


def load_rows_snapshot(conn: Any, store: BackupStore, entry: ManifestEntry, schema: DatabaseSchema,
                       progress: Progress) -> int:
    """Stream a ``pgcopy-binary`` snapshot into the (empty, keyless) tables: each table's
    bytes go unchanged into ``COPY ... FROM STDIN (FORMAT BINARY)``."""
    tables = {t.name: t for t in schema.tables}

    def consume(reader: ObjectReader) -> int:
        if reader.header.codec != CODEC_PGCOPY:
            raise IntegrityError(f"{reader.name}: unexpected codec {reader.header.codec!r}")
        _empty(conn, schema)  # a retry from another copy starts from scratch
        current, cursor, manager, copy = "", None, None, None
        done = 0
        try:
            for name, data in decode_copy_chunks(reader.body_chunks(4 << 20), reader.name):
                if name != current:
                    if manager is not None:
                        manager.__exit__(None, None, None)
                        cursor.close()
                    table = tables.get(name)
                    if table is None:
                        raise IntegrityError(f"{reader.name}: rows for unknown table {name!r}")
                    cols = ", ".join(quote_ident(c) for c in table.column_names)
                    cursor = conn.cursor()
                    manager = cursor.copy(f"COPY {quote_ident(name)} ({cols}) FROM STDIN (FORMAT BINARY)")
                    copy = manager.__enter__()
                    current = name
                copy.write(data)
                done += len(data)
                progress("load", done, None)
            if manager is not None:
                manager.__exit__(None, None, None)
                cursor.close()
        except BaseException as exc:
            if manager is not None:
                try:
                    manager.__exit__(type(exc), exc, None)
                except Exception:  # noqa: BLE001 - rolled back by the caller
                    pass
            raise
        return entry.count

    return store.read_object(entry, consume)


def _empty(conn: Any, schema: DatabaseSchema) -> None:
    if schema.tables:
        conn.execute("TRUNCATE " + ", ".join(quote_ident(t.name) for t in schema.tables))


def drop_public_tables(conn: Any) -> None:
    for name in PostgresDatabase.user_tables(conn):
        conn.execute(f"DROP TABLE IF EXISTS {quote_ident(name)} CASCADE")


def restore_postgres(store: BackupStore, plan: Plan, target: PostgresDatabase, *, force: bool = False,
                     progress: Progress = no_progress) -> RestoreResult:
    from restore import cross_dialect

    started = time.perf_counter()
    source = DatabaseSchema.from_dict(schema_of(store, plan.full))
    check_pg_target(target, force)
    if source.dialect == "postgresql":
        schema, loader = source, load_rows_snapshot
        convert, map_schema = None, None
    else:
        schema = cross_dialect.schema_to_pg(source)
        loader = cross_dialect.load_sqlite_snapshot
        convert, map_schema = cross_dialect.pg_mappers, cross_dialect.table_to_pg
    conn = target.connect(autocommit=False)
    try:
        # batched updates/deletes join a VALUES list with the table: always through the
        # primary key's index (a hash join would scan the whole table for every batch)
        conn.execute("SET LOCAL enable_hashjoin = off")
        conn.execute("SET LOCAL enable_mergejoin = off")
        # a bulk statement's cost estimate can cross jit_above_cost: compiling then costs
        # ~0.1 s per statement and saves nothing on scans of a few hundred MB
        conn.execute("SET LOCAL jit = off")
        if force:
            drop_public_tables(conn)
        for table in schema.tables:
            create_table(conn, table, with_key=False)
        # Keys and indexes are built after the events that can do without them (see
        # PostgresApplier.keyless): big folded runs join the heap by hashing, once.
        applier = PostgresApplier(conn, schema, convert, map_schema, keyless={t.name for t in schema.tables})
        # the incrementals are read, decoded and folded while the server loads the full
        with cyclic_gc_paused(), steps_ahead(store, plan, applier) as steps:
            loader(conn, store, plan.full, schema, progress)
            result = replay_events(store, plan, applier, progress, steps)
        for name in sorted(applier.keyless):
            applier.build_keys(name)
        original = {t.name: t for t in schema.tables}
        recreated = [n for n, t in applier.tables.items() if original.get(n) is not t]
        for name in sorted(recreated):
            finish_table(conn, applier.tables[name])
        for table in applier.tables.values():
            set_sequences(conn, table)
        result.tables = check_counts(conn, result.tables, sorted(applier.tables))
        result.rows = sum(result.tables.values())
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
    return finished(result, target.safe_url(), plan, started)


def check_counts(conn: Any, expected: dict[str, int] | None, tables: list[str]) -> dict[str, int]:
    return compare_counts(PostgresDatabase.row_counts(conn, tables), expected)
