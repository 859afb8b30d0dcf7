"""Rows as the store holds them at the end of the chain, for a few keys.

wal2json leaves out of an update every TOASTed value the update did not change: the WAL
holds only a pointer to it. When neither the update's old row (REPLICA IDENTITY FULL) nor
an earlier change in the same stream gives the value, it is the value the row had at the
end of what is stored: this module finds those rows. The chain is walked from its newest
incremental back; an incremental whose key index says it never touched a key is not
opened, and a key no incremental touched is read from the full backup the chain
continues from. Rows come back in wire form (``values.to_wire``), as the decoder makes
them.
"""

from __future__ import annotations

from typing import Any

from trade_stream import manifest as mf
from trade_stream.events import SCHEMA
from trade_stream.key_index import KeyIndex, key_bytes
from trade_stream.postgres.snapshot_rows import decode_copy_chunks, iter_table_rows
from trade_stream.schema import DatabaseSchema, TableSchema
from trade_stream.segments import row_of
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import events_of, header_of
from trade_stream.values import row_to_wire

Images = dict[tuple[str, bytes], list[Any]]


def stored_images(store: BackupStore, entries: list[mf.ManifestEntry], wanted: dict[str, list[list[Any]]],
                  tables: dict[str, TableSchema]) -> Images:
    """The stored rows of the ``wanted`` keys (wire values, by table), by (table,
    ``key_bytes`` of the key); a key whose row the chain ends without (or never had) is
    left out. ``tables``: the tables as the chain's end knows them."""
    pending = {name: {key_bytes(k) for k in keys} for name, keys in wanted.items()}
    found: Images = {}
    base = mf.continuous_from(entries)
    if base is None:
        return found
    for entry in reversed(entries):
        if not any(pending.values()):
            return found
        if entry.capture_id != base.capture_id or entry.kind != mf.INCREMENTAL or entry.last_seq <= base.last_seq:
            continue
        index = KeyIndex(header_of(store, entry).extra)
        if any(index.may_hold(name, k) for name, keys in pending.items() for k in keys):
            _settle(_states(store, entry, pending, base.last_seq, tables), pending, found)
    if any(pending.values()):
        _settle(_snapshot_states(store, base, pending), pending, found)
    return found


def _settle(states: dict[tuple[str, bytes], list[Any] | None], pending: dict[str, set[bytes]],
            found: Images) -> None:
    """Keys an object had the last word on leave ``pending``: their row (or none)."""
    for (name, k), row in states.items():
        pending[name].discard(k)
        if row is not None:
            found[(name, k)] = row


def _states(store: BackupStore, entry: mf.ManifestEntry, pending: dict[str, set[bytes]], after_seq: int,
            tables: dict[str, TableSchema]) -> dict[tuple[str, bytes], list[Any] | None]:
    """The rows of the pending keys at the end of one incremental (None: gone), for the
    keys it changes."""
    positions = {name: tables[name].key_indexes() if name in tables else [] for name in pending}
    states: dict[tuple[str, bytes], list[Any] | None] = {}
    for batch in events_of(store, entry, keyed=True):
        for event in batch:
            keys = pending.get(event.table)
            if not keys or event.seq <= after_seq:
                continue
            if event.op == SCHEMA:  # recreated (TRUNCATE) or resynchronised: its snapshot rows follow
                for k in keys:
                    states[(event.table, k)] = None
                if event.table_schema is not None:
                    positions[event.table] = TableSchema.from_dict(event.table_schema).key_indexes()
                continue
            if event.key is not None and (old := key_bytes(row_to_wire(event.key))) in keys:
                states[(event.table, old)] = None
            row = row_of(event)
            if row is not None and positions[event.table]:
                wire = row_to_wire(row)
                new = key_bytes([wire[i] for i in positions[event.table]])
                if new in keys:
                    states[(event.table, new)] = wire
    return states


def _snapshot_states(store: BackupStore, full: mf.ManifestEntry, pending: dict[str, set[bytes]],
                     ) -> dict[tuple[str, bytes], list[Any] | None]:
    """The rows of the pending keys in the full backup."""

    def consume(reader: Any) -> dict[tuple[str, bytes], list[Any] | None]:
        schema = DatabaseSchema.from_dict(reader.header.schema)
        wanted = {t.name: t for t in schema.tables if pending.get(t.name)}
        states: dict[tuple[str, bytes], list[Any] | None] = {}
        chunks = (chunk for chunk in decode_copy_chunks(reader.body_chunks(4 << 20), reader.name) if chunk[0] in wanted)
        for name, rows in iter_table_rows(chunks, wanted, reader.name, reader.header.extra.get("text_tables", ())):
            positions = wanted[name].key_indexes()
            for row in rows:
                wire = row_to_wire(row)
                k = key_bytes([wire[i] for i in positions])
                if k in pending[name]:
                    states[(name, k)] = wire
        return states

    return store.read_object(full, consume)
