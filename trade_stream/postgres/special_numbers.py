"""NaN and ±Infinity that wal2json leaves out of the change stream.

wal2json (up to 2.5, what Debian bookworm ships) prints a ``real``, ``double precision``
or ``numeric`` value that is NaN, Infinity or -Infinity as JSON ``null``: JSON has no such
numbers. A full backup copies them exactly, but every change that wrote one was stored as
NULL, and restores gave NULL back without a word. The value is gone from the stream; the
table still has it. So the decoder notes, per table and key, the last change that carried
a NULL in such a column and its transaction (``SpecialNulls``); after the stream, the rows
of those keys that now hold NaN or ±Infinity are read back, and each whose row version was
written by that very transaction (``xmin``) is stored again as it is, as an update at the
incremental's end (``lookup_sql``). Restore points from there on are exact; points
between the change and the incremental's end show NULL. A row changed again since (or
written in a savepoint's subtransaction, whose xmin is not the transaction's) cannot be
told apart and is counted in the incremental's warning.
"""

from __future__ import annotations

from typing import Any

import msgspec

from trade_stream.postgres.types import base_name
from trade_stream.schema import TableSchema, quote_ident

SPECIAL_TYPES = frozenset({"real", "double precision", "numeric"})
LIMIT = 100_000  # keys noted per incremental: past it, the rest is only counted


def special_columns(table: TableSchema) -> list[int]:
    """Positions of the columns whose NaN and ±Infinity wal2json prints as null."""
    out = []
    for i, column in enumerate(table.columns):
        name, is_array = base_name(column.declared)
        if name in SPECIAL_TYPES and not is_array:
            out.append(i)
    return out


class SpecialNulls:
    """The keys whose last change in the stream had NULL in a ``special_columns`` column,
    with that change's transaction id, by table."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[bytes, tuple[list[Any], int]]] = {}
        self.noted = 0
        self.unchecked: dict[str, int] = {}  # changes that cannot be looked up: no key, or past LIMIT

    def note(self, table: str, key_id: bytes, key: list[Any], xid: int) -> None:
        keys = self.keys.setdefault(table, {})
        if key_id not in keys and self.noted >= LIMIT:
            self.unchecked[table] = self.unchecked.get(table, 0) + 1
            return
        if key_id not in keys:
            self.noted += 1
        keys[key_id] = (key, xid)

    def drop(self, table: str, key_id: bytes) -> None:
        keys = self.keys.get(table)
        if keys and keys.pop(key_id, None) is not None:
            self.noted -= 1

    def drop_table(self, table: str) -> None:
        self.noted -= len(self.keys.pop(table, {}))

    def count_unchecked(self, table: str) -> None:
        self.unchecked[table] = self.unchecked.get(table, 0) + 1


def key_text(value: Any) -> str:
    """A stream key value as PostgreSQL reads it back from text."""
    if isinstance(value, msgspec.msgpack.Ext):
        return bytes(value.data).decode()
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def special_condition(table: TableSchema) -> str:
    """SQL true for a row that holds NaN or ±Infinity in a special column."""
    return " OR ".join(f"{quote_ident(table.columns[i].name)}::text IN ('NaN', 'Infinity', '-Infinity')"
                       for i in special_columns(table))


def lookup_sql(table: TableSchema) -> str:
    """``COPY`` of ``xmin`` and the row of each key given (one text array per key column,
    in ``%s`` parameters) that holds NaN or ±Infinity in a special column now."""
    keys = ", ".join(quote_ident(k) for k in table.primary_key)
    declared = {c.name: c.declared for c in table.columns}
    casts = ", ".join(f"u.k{i}::{declared[k]}" for i, k in enumerate(table.primary_key))
    arrays = ", ".join("%s::text[]" for _ in table.primary_key)
    aliases = ", ".join(f"k{i}" for i in range(len(table.primary_key)))
    cols = ", ".join(quote_ident(c) for c in table.column_names)
    return (f"SELECT xmin::text, {cols} FROM {quote_ident(table.name)} WHERE ({keys}) IN"
            f" (SELECT {casts} FROM unnest({arrays}) AS u({aliases})) AND ({special_condition(table)})")
