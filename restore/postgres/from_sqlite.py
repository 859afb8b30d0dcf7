"""A SQLite backup into PostgreSQL (``restore_postgres`` uses these): the physical
snapshot is decompressed into a private temporary file, its tables are read row by row,
mapped (``restore.type_mapping``) and bulk-loaded with COPY; events are mapped the same
way before they are applied."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Callable

from restore.postgres.apply import TableLoader
from restore.type_mapping import key_mapper, row_mapper, sqlite_table_to_pg, sqlite_value_converters
from trade_stream.manifest import ManifestEntry
from trade_stream.progress import Progress
from trade_stream.schema import DatabaseSchema, TableSchema, quote_ident
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import decompress_full

ValueMap = Callable[[list[Any]], list[Any]]


def table_to_pg(table: TableSchema) -> TableSchema:
    return sqlite_table_to_pg(table)


def schema_to_pg(schema: DatabaseSchema) -> DatabaseSchema:
    return DatabaseSchema(dialect="postgresql", tables=[sqlite_table_to_pg(t) for t in schema.tables])


def pg_mappers(table: TableSchema) -> tuple[ValueMap, ValueMap]:
    """(key mapper, row mapper) for events of a SQLite source, by the mapped table."""
    converters = sqlite_value_converters(table)
    return key_mapper(table, converters), row_mapper(converters)


def load_sqlite_snapshot(conn: Any, store: BackupStore, entry: ManifestEntry, schema: DatabaseSchema,
                         progress: Progress) -> int:
    """Rows of a ``sqlite-file`` snapshot, mapped, COPYed into the PostgreSQL tables."""
    with tempfile.TemporaryDirectory(prefix="tradevault-cross-") as tmp:
        path = Path(tmp) / "snapshot.sqlite"
        decompress_full(store, entry, path, progress)  # verified before it returns
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        loader = TableLoader(conn)
        try:
            for table in schema.tables:
                mapper = row_mapper(sqlite_value_converters(table))
                cols = ", ".join(quote_ident(c) for c in table.column_names)
                cursor = source.execute(f"SELECT {cols} FROM {quote_ident(table.name)}")
                while rows := cursor.fetchmany(5000):
                    loader.write(table, (mapper(list(r)) for r in rows))
                    progress("load", loader.rows, entry.count)
            loader.close()
        except BaseException:
            loader.abort()
            raise
        finally:
            source.close()
        return loader.rows
