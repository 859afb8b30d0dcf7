"""The key index of an incremental: which tables it touches, and a Bloom filter of the
primary keys it touches per table, kept in the object's header (``extra["keys"]``).

The history of one row over a long chain (``tradevault history``) reads every header
(small) and opens only the objects whose filter says they may hold the row. A filter has
no false negatives, so skipping is always right; false positives (about 1 %) only cost
an object read. Keys are compared in a canonical text form (``key_bytes``), so the same
row is found whatever Python type a backend decoded its key into (an int, a Decimal, a
timezone-aware datetime) and whatever the user typed on the command line.

A table without a primary key is listed as touched but gets no filter: its rows are
followed by their values, which a filter of identities cannot answer.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import zlib
from typing import Any, Iterable, Sequence

from trade_stream.events import SCHEMA, UPDATE, ChangeEvent, runs
from trade_stream.schema import TableSchema

VERSION = 1
HASHES = 4  # with 10 bits per key: about 1.2 % false positives, and few bits to set per key
BITS_PER_KEY = 10
_SEED = 0x9E3779B9
_SEPARATOR = "\x1f"


def canonical(value: Any) -> str:
    """One text per value, equal for equal values across backends: numbers without
    trailing zeros (an int, a float and a Decimal of the same value agree), datetimes in
    UTC ISO form, blobs in hex."""
    if value is None:
        return "\x00"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return _number(decimal.Decimal(repr(value)))
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return _number(value) if value.is_finite() else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def _number(value: decimal.Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def key_bytes(values: Sequence[Any]) -> bytes:
    if len(values) == 1:
        value = values[0]
        return (str(value) if type(value) is int else canonical(value)).encode()  # the common key
    return _SEPARATOR.join(canonical(v) for v in values).encode()


class KeyIndexBuilder:
    """Fed every event of an incremental in stream order (``add``); ``to_header`` gives
    the index for the object's header. ``tables``: the schema at the object's start.
    Keys are collected as they are (a set filled by comprehensions, run by run: the cost
    an incremental pays per event) and hashed once each at the end."""

    def __init__(self, tables: Iterable[TableSchema]) -> None:
        self._key_positions: dict[str, list[int] | None] = {}
        for table in tables:
            self._learn(table)
        self._keys: dict[str, set[Any]] = {}  # key values (one column) or tuples of them
        self._texts: dict[str, set[bytes]] = {}  # keys with unhashable values, as key_bytes
        self._touched: set[str] = set()

    def _learn(self, table: TableSchema) -> None:
        self._key_positions[table.name] = table.key_indexes() if table.primary_key else None

    def add(self, events: Sequence[ChangeEvent]) -> None:
        touched = self._touched
        for table, op, run in runs(list(events)):
            touched.add(table)
            if op == SCHEMA:
                if run[0].table_schema is not None:
                    self._learn(TableSchema.from_dict(run[0].table_schema))
                continue
            positions = self._key_positions.get(table)
            if positions is None:
                continue
            keys = self._keys.setdefault(table, set())
            try:
                if len(positions) == 1:
                    keys.update([e.key[0] for e in run if e.key is not None])
                    if op == UPDATE:  # the key may change: index the new one too
                        keys.update([e.row[positions[0]] for e in run if e.row is not None])
                else:
                    keys.update([tuple(e.key) for e in run if e.key is not None])
                    if op == UPDATE:
                        keys.update([tuple(e.row[i] for i in positions) for e in run if e.row is not None])
            except TypeError:  # an unhashable key value (an array): by its canonical text
                texts = self._texts.setdefault(table, set())
                for event in run:
                    if event.key is not None:
                        texts.add(key_bytes(event.key))
                    if op == UPDATE and event.row is not None:
                        texts.add(key_bytes([event.row[i] for i in positions]))

    def to_header(self) -> dict[str, Any]:
        filters = {}
        for table in sorted(self._keys.keys() | self._texts.keys()):
            if self._key_positions.get(table) is None:
                continue
            texts = {key_bytes(k if isinstance(k, tuple) else (k,)) for k in self._keys.get(table, ())}
            filters[table] = _bloom(texts | self._texts.get(table, set()))
        return {"version": VERSION, "touched": sorted(self._touched), "filters": filters}


def _bloom(keys: set[bytes]) -> dict[str, Any]:
    """The filter of ``keys`` (``key_bytes``): HASHES positions per key, unrolled (this
    loop is most of what the index costs an incremental)."""
    assert HASHES == 4
    bits = max(64, math.ceil(len(keys) * BITS_PER_KEY))
    bits += -bits % 8
    array = bytearray(bits // 8)
    crc32 = zlib.crc32
    for key in keys:
        h1, h2 = crc32(key), crc32(key, _SEED) | 1
        p = h1 % bits
        array[p >> 3] |= 1 << (p & 7)
        p = (h1 + h2) % bits
        array[p >> 3] |= 1 << (p & 7)
        p = (h1 + 2 * h2) % bits
        array[p >> 3] |= 1 << (p & 7)
        p = (h1 + 3 * h2) % bits
        array[p >> 3] |= 1 << (p & 7)
    return {"bits": bits, "hashes": HASHES, "data": base64.b64encode(bytes(array)).decode()}


class KeyIndex:
    """The reading side: answers "may this object hold this row?". An object written
    before key indexes existed (no index) may hold anything."""

    def __init__(self, header_extra: dict[str, Any]) -> None:
        index = header_extra.get("keys")
        self.known = isinstance(index, dict) and index.get("version") == VERSION
        self._touched: set[str] = set(index.get("touched", ())) if self.known else set()  # type: ignore[union-attr]
        self._filters: dict[str, Any] = dict(index.get("filters", {})) if self.known else {}  # type: ignore[union-attr]
        self._decoded: dict[str, tuple[bytes, int, int]] = {}

    def touches(self, table: str) -> bool:
        return not self.known or table in self._touched

    def may_hold(self, table: str, key: bytes) -> bool:
        """``key``: ``key_bytes`` of the primary-key values, in key order."""
        if not self.touches(table):
            return False
        entry = self._filters.get(table)
        if entry is None:
            return True  # touched, but without a filter (a keyless table)
        decoded = self._decoded.get(table)
        if decoded is None:
            decoded = self._decoded[table] = (base64.b64decode(entry["data"]), int(entry["bits"]),
                                              int(entry["hashes"]))
        array, bits, count = decoded
        h1, h2 = zlib.crc32(key), zlib.crc32(key, _SEED) | 1
        for i in range(count):
            position = (h1 + i * h2) % bits
            if not array[position >> 3] & (1 << (position & 7)):
                return False
        return True
