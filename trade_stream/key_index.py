"""The key index of an incremental: which tables it touches, and per table the sorted
fingerprints of the primary keys it touches, kept in the object's header
(``extra["keys"]``).

The history of one row over a long chain (``tradevault history``) reads every header
(small) and opens only the objects whose fingerprints may hold the row. Fingerprints have
no false negatives, so skipping is always right; false positives (about 0.4 %) only cost
an object read. A sorted list rather than a Bloom filter: it is built by C loops (hash,
sort, differences) where a Bloom filter sets its bits one Python step at a time, which
cost an incremental of 100k changes 0.1 s more. Keys are compared in a canonical text form (``key_bytes``), so the same
row is found whatever Python type a backend decoded its key into (an int, a Decimal, a
timezone-aware datetime) and whatever the user typed on the command line.

A table without a primary key is listed as touched but gets no fingerprints: its rows are
followed by their values, which fingerprints of identities cannot answer.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import operator
import re
import sys
import zlib
from array import array
from bisect import bisect_left
from itertools import accumulate, repeat
from typing import Any, Iterable, Sequence

import msgspec
import zstandard

from trade_stream.events import SCHEMA, ChangeEvent, runs
from trade_stream.schema import TableSchema
from trade_stream.values import ext_hook

# 2: keys in their wire form (a msgpack extension) fingerprinted by their value; version 1
# fingerprinted such keys by the extension object's address, so its indexes are not trusted
# (an object with one may hold anything)
VERSION = 2
SPAN_PER_KEY = 256  # fingerprints per key: about 0.4 % false positives
# Distinct keys of one table an incremental indexes at most: the builder holds them until the
# end, so one transaction of ten million updates would otherwise hold ten million keys (and
# the capture's memory bound with them). A table beyond it gets no fingerprints: a reader
# opens the object for any key of it, as for a keyless table.
MAX_KEYS = 200_000
_SEPARATOR = "\x1f"


def canonical(value: Any) -> str:
    """One text per value, equal for equal values across backends: numbers without
    trailing zeros (an int, a float and a Decimal of the same value agree), datetimes in
    UTC ISO form, blobs in hex. A value in its wire form (``values.to_wire``: a Decimal, a
    datetime, a uuid as a msgpack extension) is read as its Python value first: the
    extension object itself prints its address."""
    if type(value) is msgspec.msgpack.Ext:
        value = ext_hook(value.code, memoryview(value.data))
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
        self._recreated: set[str] = set()  # tables with a SCHEMA event: see KeyIndex.recreates
        self._beyond: set[str] = set()  # tables with more than MAX_KEYS keys: not indexed

    def _learn(self, table: TableSchema) -> None:
        self._key_positions[table.name] = table.key_indexes() if table.primary_key else None

    def add(self, events: Sequence[ChangeEvent]) -> None:
        batch = events if isinstance(events, list) else list(events)
        names = {e.table for e in batch}
        self._touched |= names
        if SCHEMA in {e.op for e in batch}:  # key columns may change inside: run by run
            for table, op, run in runs(batch):
                if op == SCHEMA:
                    self._recreated.add(table)
                    if run[0].table_schema is not None:
                        self._learn(TableSchema.from_dict(run[0].table_schema))
                else:
                    self._collect(table, run)
            return
        for table in names:
            self._collect(table, batch if len(names) == 1 else [e for e in batch if e.table == table])

    def _collect(self, table: str, events: list[ChangeEvent]) -> None:
        """The keys of ``events`` (all of ``table``): each event's key, and the key its new
        row has (an update may move a row to another key; for the rest it is the same)."""
        positions = self._key_positions.get(table)
        if positions is None or table in self._beyond:
            return
        keys = self._keys.setdefault(table, set())
        try:
            if len(positions) == 1:
                p = positions[0]
                keys.update([e.key[0] for e in events if e.key is not None])
                keys.update([e.row[p] for e in events if e.row is not None])
            else:
                keys.update([tuple(e.key) for e in events if e.key is not None])
                keys.update([tuple([e.row[i] for i in positions]) for e in events if e.row is not None])
        except TypeError:  # an unhashable key value (an array): by its canonical text
            texts = self._texts.setdefault(table, set())
            for event in events:
                if event.key is not None:
                    texts.add(key_bytes(event.key))
                if event.row is not None:
                    texts.add(key_bytes([event.row[i] for i in positions]))
        if len(keys) + len(self._texts.get(table, ())) > MAX_KEYS:
            self._beyond.add(table)
            self._keys.pop(table, None)
            self._texts.pop(table, None)

    def to_header(self) -> dict[str, Any]:
        fingerprints = {}
        for table in sorted(self._keys.keys() | self._texts.keys()):
            if self._key_positions.get(table) is None or table in self._beyond:
                continue
            keys, texts = self._keys.get(table, set()), self._texts.get(table, set())
            span = max(1, len(keys) + len(texts)) * SPAN_PER_KEY
            if keys and set(map(type, keys)) == {int}:  # the common key: by C loops
                values = set(map(operator.mod, keys, repeat(span)))
            else:
                values = {fingerprint(key_bytes(k if isinstance(k, tuple) else (k,)), span) for k in keys}
            values.update(fingerprint(text, span) for text in texts)
            fingerprints[table] = _encoded(sorted(values), span)
        return {"version": VERSION, "touched": sorted(self._touched), "recreated": sorted(self._recreated),
                "fingerprints": fingerprints}


_WHOLE_NUMBER = re.compile(rb"-?[0-9]+")


def fingerprint(key: bytes, span: int) -> int:
    """A key's fingerprint (``key``: its ``key_bytes``): a whole number's is its value
    modulo ``span`` (so an int key costs no text and no hash, and consecutive ids never
    share one), any other key's its CRC-32 modulo ``span``. ``span`` is ``SPAN_PER_KEY``
    per key of the object: a key it does not hold shares a fingerprint with one it holds
    with probability about 1/SPAN_PER_KEY."""
    if _WHOLE_NUMBER.fullmatch(key):
        return int(key) % span
    return zlib.crc32(key) % span


def _encoded(values: list[int], span: int) -> dict[str, Any]:
    """Sorted fingerprints as the differences between neighbours (u16, or u32 should one not
    fit), little-endian, zstd-compressed: about 1.4 bytes per key."""
    gaps = list(map(operator.sub, values, [0, *values[:-1]]))
    width = "H" if not gaps or max(gaps) < 1 << 16 else "I"
    packed = array(width, gaps)
    if sys.byteorder == "big":
        packed.byteswap()
    data = zstandard.ZstdCompressor(level=3).compress(packed.tobytes())
    return {"span": span, "width": width, "count": len(values), "data": base64.b64encode(data).decode()}


def _decoded(entry: dict[str, Any]) -> tuple[int, list[int]]:
    packed = array(entry["width"])
    packed.frombytes(zstandard.ZstdDecompressor().decompress(base64.b64decode(entry["data"]),
                                                             max_output_size=8 * int(entry["count"]) + 8))
    if sys.byteorder == "big":
        packed.byteswap()
    return int(entry["span"]), list(accumulate(packed))


class KeyIndex:
    """The reading side: answers "may this object hold this row?". An object written
    before key indexes existed (no index) may hold anything."""

    def __init__(self, header_extra: dict[str, Any]) -> None:
        index = header_extra.get("keys")
        self.known = isinstance(index, dict) and index.get("version") == VERSION
        self._touched: set[str] = set(index.get("touched", ())) if self.known else set()  # type: ignore[union-attr]
        self._fingerprints: dict[str, Any] = dict(index.get("fingerprints", {})) if self.known else {}  # type: ignore[union-attr]
        recreated = index.get("recreated") if self.known else None  # type: ignore[union-attr]
        self._recreated: set[str] | None = set(recreated) if recreated is not None else None
        self._decoded: dict[str, tuple[int, list[int]]] = {}

    def touches(self, table: str) -> bool:
        return not self.known or table in self._touched

    def recreates(self, table: str) -> bool | None:
        """Whether the object recreates the table (a SCHEMA event: a row it then holds has
        a SNAPSHOT, one it no longer holds has no event at all); None when the index does
        not say (written before it did)."""
        if not self.known:
            return None
        return table in self._recreated if self._recreated is not None else None

    def may_hold(self, table: str, key: bytes) -> bool:
        """``key``: ``key_bytes`` of the primary-key values, in key order."""
        if not self.touches(table):
            return False
        entry = self._fingerprints.get(table)
        if entry is None:
            return True  # touched, but without fingerprints (a keyless table)
        decoded = self._decoded.get(table)
        if decoded is None:
            decoded = self._decoded[table] = _decoded(entry)
        span, values = decoded
        wanted = fingerprint(key, span)
        at = bisect_left(values, wanted)
        return at < len(values) and values[at] == wanted


def index_problem(built: dict[str, Any], stored: dict[str, Any] | None) -> str:
    """How an object's stored key index differs from the one its events make ("" when it
    does not; an object without one has nothing to differ). Compared by content, not bytes:
    another zstd may compress the same fingerprints differently."""
    if stored is None or stored.get("version") != built.get("version"):  # an older index: not trusted, not read
        return ""
    if sorted(stored.get("touched", ())) != built["touched"]:
        return f"key index lists tables {sorted(stored.get('touched', ()))}, the events touch {built['touched']}"
    if "recreated" in stored and sorted(stored["recreated"]) != built["recreated"]:
        return f"key index lists tables {sorted(stored['recreated'])} as recreated, the events {built['recreated']}"
    mine, theirs = built["fingerprints"], stored.get("fingerprints", {})
    if sorted(mine) != sorted(theirs):
        return f"key index has fingerprints of {sorted(theirs)}, the events make them for {sorted(mine)}"
    for table in mine:
        if _decoded(mine[table]) != _decoded(theirs[table]):
            return f"key index of table {table!r} differs from the keys its events touch"
    return ""
