"""Rows as the store holds them at the end of the chain, for the keys an incremental needs.

wal2json leaves out of an update every TOASTed value the update did not change: the WAL
holds only a pointer to it. When neither the update's old row (REPLICA IDENTITY FULL) nor
an earlier change in the same stream gives the value, it is the value the row had at the
end of what is stored: ``stored_images`` finds those rows. The chain is walked from its
newest incremental back; when few keys are wanted, an incremental whose key index says it
never touched them is not opened; a key no incremental touched is read from the full
backup the chain continues from. Rows are kept in wire form (``values.to_wire``), as the
decoder makes them, in ``RowImages``.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterator

import msgspec

from trade_stream import manifest as mf
from trade_stream.events import SCHEMA
from trade_stream.key_index import KeyIndex, key_bytes
from trade_stream.postgres.snapshot_rows import decode_copy_chunks, iter_table_rows
from trade_stream.schema import DatabaseSchema, TableSchema
from trade_stream.segments import row_of
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import events_of, header_of
from trade_stream.values import row_to_wire

FEW_KEYS = 10_000  # wanted keys up to which the key indexes choose the objects to open

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[Any])  # extension values stay as they travel


class RowImages:
    """Rows by (table, ``key_bytes`` of the key), and the keys wanted, in a private
    temporary SQLite database: its pages go to disk past its cache, so an update of every
    row of a big table, each with a large value, does not have to fit in memory."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        for name in ("wanted", "pending", "touched"):
            self._db.execute(f"CREATE TABLE {name} (tbl TEXT, k BLOB, PRIMARY KEY (tbl, k)) WITHOUT ROWID")
        self._db.execute("CREATE TABLE rows (tbl TEXT, k BLOB, row BLOB, PRIMARY KEY (tbl, k)) WITHOUT ROWID")
        self.tables: set[str] = set()  # those with keys wanted
        self.counts: dict[str, int] = {}  # updates that wanted a row, by table

    def close(self) -> None:
        self._db.close()

    def want(self, table: str, k: bytes) -> None:
        self.tables.add(table)
        self.counts[table] = self.counts.get(table, 0) + 1
        self._db.execute("INSERT OR IGNORE INTO wanted VALUES (?, ?)", (table, k))

    def wanted(self, table: str, k: bytes) -> bool:
        return table in self.tables and self._db.execute(
            "SELECT 1 FROM wanted WHERE tbl = ? AND k = ?", (table, k)).fetchone() is not None

    def get(self, table: str, k: bytes) -> list[Any] | None:
        found = self._db.execute("SELECT row FROM rows WHERE tbl = ? AND k = ?", (table, k)).fetchone()
        return None if found is None else _decoder.decode(found[0])

    def put(self, table: str, k: bytes, row: list[Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO rows VALUES (?, ?, ?)", (table, k, _encoder.encode(row)))

    def drop(self, table: str, k: bytes) -> None:
        self._db.execute("DELETE FROM rows WHERE tbl = ? AND k = ?", (table, k))

    def drop_wanted_rows(self, table: str) -> None:
        self._db.execute("DELETE FROM rows WHERE tbl = ?", (table,))

    # -- the search of the store (stored_images) ----------------------------------------------------
    def _start_search(self) -> None:
        self._db.execute("INSERT INTO pending SELECT tbl, k FROM wanted")

    def _pending(self, table: str, k: bytes) -> bool:
        return self._db.execute("SELECT 1 FROM pending WHERE tbl = ? AND k = ?", (table, k)).fetchone() is not None

    def _pending_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM pending").fetchone()[0])

    def _pending_keys(self) -> Iterator[tuple[str, bytes]]:
        return iter(self._db.execute("SELECT tbl, k FROM pending").fetchall())

    def _pending_tables(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT DISTINCT tbl FROM pending")}

    def _found(self, table: str, k: bytes, row: list[Any] | None) -> None:
        """The object being read changes this pending key: its row (None: gone) so far."""
        if row is None:
            self.drop(table, k)
        else:
            self.put(table, k, row)
        self._db.execute("INSERT OR IGNORE INTO touched VALUES (?, ?)", (table, k))

    def _wiped(self, table: str) -> None:
        """The object being read recreates the table (TRUNCATE, a resynchronisation)."""
        self._db.execute("DELETE FROM rows WHERE tbl = ? AND k IN (SELECT k FROM pending WHERE tbl = ?)",
                         (table, table))
        self._db.execute("INSERT OR IGNORE INTO touched SELECT tbl, k FROM pending WHERE tbl = ?", (table,))

    def _settle(self) -> None:
        """The keys the object just read changed have their row: no older object is read for them."""
        self._db.execute("DELETE FROM pending WHERE (tbl, k) IN (SELECT tbl, k FROM touched)")
        self._db.execute("DELETE FROM touched")


def stored_images(store: BackupStore, entries: list[mf.ManifestEntry], images: RowImages,
                  tables: dict[str, TableSchema]) -> None:
    """Put into ``images`` the stored rows of the keys it wants (a key whose row the chain
    ends without, or never had, gets none). ``tables``: the tables as the chain's end knows
    them."""
    base = mf.continuous_from(entries)
    if base is None:
        return
    images._start_search()
    for entry in reversed(entries):
        count = images._pending_count()
        if not count:
            return
        if entry.capture_id != base.capture_id or entry.kind != mf.INCREMENTAL or entry.last_seq <= base.last_seq:
            continue
        if count <= FEW_KEYS:
            index = KeyIndex(header_of(store, entry).extra)
            if not any(index.may_hold(name, k) for name, k in images._pending_keys()):
                continue
        _read_incremental(store, entry, images, base.last_seq, tables)
        images._settle()
    if images._pending_count():
        _read_full(store, base, images)


def _read_incremental(store: BackupStore, entry: mf.ManifestEntry, images: RowImages, after_seq: int,
                      tables: dict[str, TableSchema]) -> None:
    """The pending keys' rows at the end of one incremental, for the keys it changes."""
    names = images._pending_tables()
    positions = {name: tables[name].key_indexes() if name in tables else [] for name in names}
    for batch in events_of(store, entry, keyed=True):
        for event in batch:
            name = event.table
            if name not in names or event.seq <= after_seq:
                continue
            if event.op == SCHEMA:  # recreated (TRUNCATE) or resynchronised: its snapshot rows follow
                images._wiped(name)
                if event.table_schema is not None:
                    positions[name] = TableSchema.from_dict(event.table_schema).key_indexes()
                continue
            if event.key is not None and images._pending(name, old := key_bytes(row_to_wire(event.key))):
                images._found(name, old, None)
            row = row_of(event)
            if row is not None and positions[name]:
                wire = row_to_wire(row)
                new = key_bytes([wire[i] for i in positions[name]])
                if images._pending(name, new):
                    images._found(name, new, wire)


def _read_full(store: BackupStore, full: mf.ManifestEntry, images: RowImages) -> None:
    """The pending keys' rows in the full backup."""
    names = images._pending_tables()

    def consume(reader: Any) -> None:
        schema = DatabaseSchema.from_dict(reader.header.schema)
        wanted = {t.name: t for t in schema.tables if t.name in names}
        chunks = (chunk for chunk in decode_copy_chunks(reader.body_chunks(4 << 20), reader.name) if chunk[0] in wanted)
        for name, rows in iter_table_rows(chunks, wanted, reader.name, reader.header.extra.get("text_tables", ())):
            positions = wanted[name].key_indexes()
            for row in rows:
                wire = row_to_wire(row)
                k = key_bytes([wire[i] for i in positions])
                if images._pending(name, k):
                    images.put(name, k, wire)

    store.read_object(full, consume)
