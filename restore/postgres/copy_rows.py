"""Writing rows into a PostgreSQL table with COPY: in binary format where every column's
values are ones psycopg writes exactly that way, else in text."""

from __future__ import annotations

from typing import Any, Collection, Sequence

from trade_stream.events import UPDATE
from trade_stream.postgres.types import BASE_TYPES, base_name
from trade_stream.schema import TableSchema, quote_ident

# Column types whose stream values (see trade_stream/postgres/types.py) psycopg writes
# exactly in binary COPY format, which costs the client measurably less than text.
# json/jsonb (documents kept as text), interval (timedelta or text), time/timetz, char(n)
# (psycopg has no binary dumper for bpchar) and arrays go as text.
_BINARY_COPY = frozenset({
    "smallint", "integer", "bigint", "numeric", "real", "double precision", "boolean", "text",
    "character varying", "bytea", "uuid", "date", "timestamp without time zone",
    "timestamp with time zone",
})


def binary_copy_types(table: TableSchema, columns: list[str], text: Collection[str] = ()) -> list[int] | None:
    """Type oids for writing ``columns`` of ``table`` in binary COPY format (those in
    ``text`` as text: see text_columns), or None when one of them must go as text."""
    declared = {c.name: c.declared for c in table.columns}
    oids = []
    for column in columns:
        name, is_array = base_name(declared[column])
        if is_array or name not in _BINARY_COPY:
            return None
        oids.append(BASE_TYPES["text" if column in text else name][0])
    return oids


def text_columns(table: TableSchema, columns: list[str]) -> list[str]:
    """Numeric columns outside the key: a scratch table (see create_scratch) holds them as
    text, its rows carry them as str (``as_text``), and reading the scratch casts them back
    (``scratch_columns``). Why: psycopg's binary numeric writer is Python work per value and
    was most of such a COPY's client time, while str() and text cost a small fraction of it
    and the server parses numeric text in C."""
    declared = {c.name: c.declared for c in table.columns}
    keys = set(table.primary_key)
    return [c for c in columns if c not in keys and base_name(declared[c]) == ("numeric", False)]


def as_text(rows: list[Any], positions: list[int]) -> list[Any]:
    """Rows with the values at ``positions`` (see text_columns) as str, NULLs kept."""
    converted = []
    for row in rows:
        row = list(row)
        for i in positions:
            if row[i] is not None:
                row[i] = str(row[i])
        converted.append(row)
    return converted


def scratch_columns(table: TableSchema, columns: list[str], alias: str = "") -> list[str]:
    """The scratch table's ``columns`` as expressions of the table's types (the text ones
    cast back; without typmods, which the assignment to the table's column applies)."""
    text = set(text_columns(table, columns))
    prefix = f"{alias}." if alias else ""
    return [f"{prefix}{quote_ident(c)}::numeric" if c in text else f"{prefix}{quote_ident(c)}" for c in columns]


def run_columns(table: TableSchema, op: str) -> list[str]:
    """The columns a scratch row of an update run (its new image) or a delete run (its key)
    carries."""
    return table.column_names if op == UPDATE else table.primary_key


def create_scratch(cursor: Any, scratch: str, table: TableSchema, columns: list[str]) -> None:
    """A temporary table of ``columns`` of ``table``, their types without constraints (the
    ``text_columns`` as text), for rows to join with the table. Declared from the schema,
    not from the table: a restore gathers rows while the table is still being loaded by
    another connection (see restore.postgres.replay)."""
    declared = {c.name: c.declared for c in table.columns}
    text = set(text_columns(table, columns))
    cols = ", ".join(f"{quote_ident(c)} {'text' if c in text else declared[c]}" for c in columns)
    cursor.execute(f"CREATE TEMP TABLE {scratch} ({cols})")


def copy_statement(target: str, columns: list[str], binary: bool, *, freeze: bool = False) -> str:
    """``COPY target (columns) FROM STDIN``, in binary format or text (``target`` quoted);
    ``freeze``: the rows written frozen (the table must have been created in the same
    subtransaction)."""
    cols = ", ".join(quote_ident(c) for c in columns)
    options = ["FORMAT BINARY"] * binary + ["FREEZE"] * freeze
    return f"COPY {target} ({cols}) FROM STDIN" + (f" ({', '.join(options)})" if options else "")


_TEMPORAL_OIDS = frozenset(BASE_TYPES[name][0] for name in (
    "date", "timestamp without time zone", "timestamp with time zone"))


def holds_text_dates(rows: Sequence[Any], types: list[int]) -> bool:
    """Whether a date or timestamp column holds a str (infinity, BC, a year past 9999: see
    trade_stream.postgres.types.temporal_text), which binary COPY cannot write."""
    positions = [i for i, oid in enumerate(types) if oid in _TEMPORAL_OIDS]
    return bool(positions) and any(type(row[i]) is str for row in rows for i in positions)


def copy_rows(cursor: Any, target: str, columns: list[str], rows: Sequence[Any], types: list[int] | None) -> None:
    """``COPY target (columns) FROM STDIN`` of ``rows``: in binary format with ``types``
    (see binary_copy_types), else in text (also when a date or timestamp travels as text)."""
    if types and holds_text_dates(rows, types):
        types = None
    with cursor.copy(copy_statement(target, columns, bool(types))) as copy:
        if types:
            copy.set_types(types)
        write_row = copy.write_row
        for row in rows:
            write_row(row)
