"""Where the Kafka sink reads the trade log from: stored backups first, then the live
change log, in seq order, with no gap.

The change log is pruned once a segment holding its events is stored, so a sink that
fell behind (broker down, slow) finds its next events in the stored segments; it moves to
the change log as soon as the log still holds the event right after its position. The
check "the oldest event in the log is at most position + 1" and the read happen in one
read transaction, so pruning can never open a silent gap between the two.

Stored objects are read through ``trade_stream.storage.stored_objects`` (verified first).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from trade_stream.errors import BadInputError, IntegrityError, TradeStreamError
from trade_stream.events import ChangeEvent
from trade_stream.manifest import FULL, INCREMENTAL, ManifestEntry
from trade_stream.schema import DatabaseSchema, TableSchema, quote_ident
from trade_stream.source import ChangeLog
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import decompress_full, events_of


class GapError(TradeStreamError):
    """Events after the position are neither in a stored segment nor in the change log."""


class TableShapes:
    """Columns and primary key of every table at the current position of the stream:
    starts from the schema at the position and follows the SCHEMA events."""

    def __init__(self, schema: DatabaseSchema) -> None:
        self.tables: dict[str, TableSchema] = {t.name: t for t in schema.tables}
        self._keys: dict[str, list[int]] = {}
        self._columns: dict[str, list[str]] = {}

    def apply(self, event: ChangeEvent) -> None:
        self._keys.pop(event.table, None)
        self._columns.pop(event.table, None)
        if event.table_schema is None:
            self.tables.pop(event.table, None)
        else:
            self.tables[event.table] = TableSchema.from_dict(event.table_schema)

    def get(self, table: str) -> TableSchema:
        try:
            return self.tables[table]
        except KeyError:
            raise IntegrityError(f"change event for table {table!r} with no known columns") from None

    def columns(self, table: str) -> list[str]:
        found = self._columns.get(table)
        if found is None:
            found = self._columns[table] = self.get(table).column_names
        return found

    def identity_indexes(self, table: str) -> list[int]:
        """The columns that key a table's records: its primary key, or every column of a
        table without one (whose duplicate rows then share one key)."""
        found = self._keys.get(table)
        if found is None:
            found = self._keys[table] = self.get(table).identity_indexes()
        return found


@contextmanager
def full_snapshot(store: BackupStore, entry: ManifestEntry, work_dir: str | None = None
                  ) -> Iterator[tuple[DatabaseSchema, sqlite3.Connection]]:
    """A stored full backup decompressed into a private temp file (checksums verified before
    anything is read from it), with its schema; removed afterwards."""
    tmp_dir = tempfile.mkdtemp(prefix="tradevault-kafka-", dir=work_dir or None)
    path = Path(tmp_dir) / "snapshot.sqlite"
    try:
        schema = decompress_full(store, entry, path)
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        try:
            yield DatabaseSchema.from_dict(schema), conn
        finally:
            conn.close()
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def table_rows(conn: sqlite3.Connection, table: TableSchema, batch: int = 20000) -> Iterator[list[tuple]]:
    cols = ", ".join(quote_ident(c) for c in table.column_names)
    order = ", ".join(quote_ident(k) for k in table.identity)
    cursor = conn.execute(f"SELECT {cols} FROM {quote_ident(table.name)} ORDER BY {order}")
    while rows := cursor.fetchmany(batch):
        yield rows


class EventSource:
    """Gap-free event batches of one capture after a position (see the module doc)."""

    def __init__(self, log: ChangeLog, store: BackupStore, chunk: int = 20000) -> None:
        self.capture = log
        self.store = store
        self.chunk = chunk

    def connect(self) -> sqlite3.Connection:
        self.capture.require_exists()
        conn = self.capture.connect()
        if not self.capture.is_installed(conn):
            conn.close()
            raise BadInputError("change capture is not installed yet: run `tradevault backup full` first")
        return conn

    def capture_id(self, conn: sqlite3.Connection) -> str:
        return self.capture.meta(conn)["capture_id"]

    def latest_full(self, capture_id: str) -> ManifestEntry:
        fulls = [e for e in self.store.entries() if e.kind == FULL and e.capture_id == capture_id]
        if not fulls:
            raise BadInputError("no full backup of the current change capture yet: run `tradevault backup full`")
        return fulls[-1]

    def batches(self, conn: sqlite3.Connection, position: int, capture_id: str,
                upto: int | None = None) -> Iterator[list[ChangeEvent]]:
        """Events with position < seq <= upto (default: the last seq now), in order."""
        if upto is None:
            upto = self.capture.last_seq(conn)
        while position < upto:
            batch = self._from_log(conn, position, upto)
            if batch:
                yield batch
                position = batch[-1].seq
                continue
            moved = False
            for entry in self._segments_after(position, capture_id):
                for stored in events_of(self.store, entry):
                    fresh = [e for e in stored if e.seq > position]
                    if fresh:
                        moved = True
                        yield fresh
                        position = fresh[-1].seq
            if not moved:
                raise GapError(f"events after seq {position} are neither stored nor in the change log")

    def _from_log(self, conn: sqlite3.Connection, position: int, upto: int) -> list[ChangeEvent] | None:
        """The next batch from the change log, or None when the log no longer holds the
        event right after ``position`` (it was pruned into a stored segment)."""
        conn.execute("BEGIN")
        try:
            oldest = self.capture.oldest_seq(conn)
            if oldest is None or oldest > position + 1:
                return None
            batch = next(self.capture.read(conn, position, min(upto, position + self.chunk), self.chunk), None)
            return batch or None
        finally:
            conn.execute("COMMIT")

    def _segments_after(self, position: int, capture_id: str) -> list[ManifestEntry]:
        """The stored incrementals of the capture that hold the events after ``position``."""
        chain = [e for e in self.store.entries()
                 if e.kind == INCREMENTAL and e.capture_id == capture_id and e.last_seq > position]
        if not chain or chain[0].after_seq > position:
            return []
        wanted = [chain[0]]
        for entry in chain[1:]:
            if entry.after_seq != wanted[-1].last_seq:
                break  # a hole in the chain: read up to it, the log or a later pass goes on
            wanted.append(entry)
        return wanted

    def schema_at(self, conn: sqlite3.Connection, seq: int) -> DatabaseSchema:
        return self.capture.schema_at(conn, seq)

