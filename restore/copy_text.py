"""SQLite rows as a restore into PostgreSQL COPYs them (text format). Pure.

Mapping a million rows value by value (``type_mapping``'s converters) costs several
times PostgreSQL's whole load. Most SQLite values need no mapping at all: psycopg writes an
``int``, a ``float`` (its shortest repr), a ``str`` or ``bytes`` in the text PostgreSQL's
input parser reads back to exactly what the converter would have given. So each table gets
a row function (``row_converter``) that passes such a value through and calls the converter
only for the others; it is compiled once per table, an ``if`` per column and no call per
value (a call per value costs about as much as the COPY itself).

====================  ============================================================
PostgreSQL column     values passed through
====================  ============================================================
smallint..bigint      int
double precision      float, int
numeric               int, float (psycopg prints a float's shortest repr, the
                      converter's Decimal(repr(value)))
text, varchar, char,  str
json, uuid, dates,
times, intervals,
timestamptz
timestamp             str without a UTC offset after the seconds (PostgreSQL would
                      ignore the offset; the converter turns it into UTC)
bytea                 bytes
boolean               none (0/1 -> False/True by the converter)
====================  ============================================================
"""

from __future__ import annotations

from typing import Any, Callable

from restore.type_mapping import sqlite_value_converters
from trade_stream.postgres.types import base_name
from trade_stream.schema import TableSchema

_TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "uuid", "date", "interval",
               "time without time zone", "time with time zone", "timestamp with time zone")
_DIGITS = "0123456789."


def passed_through(declared: str) -> tuple[str, ...]:
    """The Python types of SQLite values written unchanged into a column of this type
    ("naive" is a str without an offset)."""
    name, is_array = base_name(declared)
    if is_array:
        return ()
    if name in ("smallint", "integer", "bigint"):
        return ("int",)
    if name in ("double precision", "numeric"):
        return ("float", "int")
    if name == "timestamp without time zone":
        return ("naive",)
    if name == "bytea":
        return ("bytes",)
    if name in _TEXT_TYPES:
        return ("str",)
    return ()


def row_source(table: TableSchema) -> str:
    """The Python source of the table's row function (see the module doc)."""
    values = [f"v{i}" for i in range(len(table.columns))]
    parts = []
    for i, column in enumerate(table.columns):
        v = values[i]
        kinds = passed_through(column.declared)
        tests = [f"{v}.__class__ is str and not {v}[19:].strip(DIGITS)" if kind == "naive"
                 else f"{v}.__class__ is {kind}" for kind in kinds]
        keep = " or ".join([f"{v} is None", *tests])
        parts.append(f"{v} if {keep} else convert[{i}]({v})")
    unpack = ", ".join(values) + ("," if len(values) == 1 else "")
    return f"def row(values):\n    {unpack} = values\n    return ({', '.join(parts)}{',' if len(parts) == 1 else ''})\n"


def row_converter(table: TableSchema) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """SQLite row -> the values to COPY into the (mapped) table."""
    namespace: dict[str, Any] = {"convert": sqlite_value_converters(table), "DIGITS": _DIGITS,
                                 "int": int, "float": float, "str": str, "bytes": bytes}
    exec(compile(row_source(table), f"<row {table.name}>", "exec"), namespace)
    converter: Callable[[tuple[Any, ...]], tuple[Any, ...]] = namespace["row"]
    return converter
