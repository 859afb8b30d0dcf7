"""Cross-dialect restores: column types and values between SQLite and PostgreSQL. Pure.
(Keys, constraints, indexes and defaults: ``schema_to_postgres`` / ``schema_to_sqlite``;
declared limits SQLite does not enforce: ``type_limits``.)

SQLite -> PostgreSQL: the declared type where PostgreSQL has it (``sqlite_type_to_pg``),
else by the column's family (``schema.family_of`` of its declared type):

===========  =========================  ============================================
family       PostgreSQL type            value
===========  =========================  ============================================
integer      smallint / integer /       int (an integral REAL or numeric text too)
             bigint as declared
             (INTEGER -> integer; other
             names -> bigint)
float        double precision           float, bit for bit
numeric      numeric(p,s) as declared,  Decimal: an INTEGER exactly, a REAL by its
             else numeric               shortest repr (``0.1`` -> ``0.1``), TEXT as is
boolean      boolean                    0/1 -> False/True
text         varchar(n) / char(n) as    str
             declared, else text
blob         bytea                      bytes (TEXT in such a column: its UTF-8)
date         date                       ``YYYY-MM-DD`` text -> date
datetime     timestamp (timestamptz     ISO text (SQLAlchemy's ``YYYY-MM-DD HH:MM:SS.ffffff``)
             when declared WITH TIME    -> datetime
             ZONE / TIMESTAMPTZ)
time         time                       ISO text -> time
json         json                       the text, unchanged
uuid         uuid                       text or 16 bytes -> UUID
interval     interval                   text, as PostgreSQL reads it
other        text                       str(value)
===========  =========================  ============================================

PostgreSQL -> SQLite: the declared type is kept where SQLite's affinity rules give the
right storage class (``bigint``, ``double precision``, ``character varying(25)``, ``text``,
``bytea``, ``uuid``, ``date``, ``timestamp with time zone``, ...), so a later restore back
to PostgreSQL finds the same type; ``timestamp without time zone`` becomes ``DATETIME``,
``boolean`` ``BOOLEAN``, json/jsonb and arrays ``JSON_TEXT`` (TEXT affinity; arrays as JSON
text, numbers with their digits), interval ``INTERVAL``, enums, domains and the other
types without TEXT affinity ``TEXT`` (NUMERIC affinity would turn a label ``'01'`` into 1).
``numeric(p,s)`` becomes ``DECIMAL_BLOB(p,s)``: BLOB affinity, so SQLite converts nothing
(NUMERIC affinity keeps 15 digits of a decimal text), and ``exact_decimal`` stores each
value as INTEGER when integral, as REAL when a double reads back the same decimal (what an
ORM's Numeric on SQLite reads), else as its TEXT with every digit. Values: bool -> 0/1,
date/time -> ISO text, datetime -> ``YYYY-MM-DD HH:MM:SS.ffffff`` (+ offset when aware),
UUID -> text, timedelta -> interval text, str/bytes/int/float unchanged, but a NaN float
becomes the text ``'NaN'`` (SQLite would store NULL for it; ±Infinity it keeps as REAL).

Round trips PostgreSQL -> SQLite -> PostgreSQL are equal by value; arrays come back as
json, enums and domains as text.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import uuid
from typing import Any, Callable

from trade_stream.errors import IntegrityError
from trade_stream.postgres.types import ARRAY_FAMILY, base_name
from trade_stream.schema import Column, TableSchema, sqlite_affinity

Convert = Callable[[Any], Any]
EMPTY_PG_DDL = json.dumps({"defaults": {}, "identity": {}, "indexes": [], "serial": {}}, sort_keys=True)

_SQLITE_TO_PG = {
    "integer": "bigint", "float": "double precision", "numeric": "numeric", "boolean": "boolean",
    "text": "text", "blob": "bytea", "date": "date", "datetime": "timestamp without time zone",
    "time": "time without time zone", "json": "json", "uuid": "uuid", "interval": "interval",
    "other": "text",
}
_DECLARED = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_ ]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")
_INTEGERS = {"INTEGER": "integer", "INT": "integer", "MEDIUMINT": "integer", "INT4": "integer",
             "SMALLINT": "smallint", "TINYINT": "smallint", "INT2": "smallint", "BIGINT": "bigint", "INT8": "bigint"}
_VARYING = ("VARCHAR", "CHARACTER VARYING", "VARYING CHARACTER", "NVARCHAR", "NATIVE CHARACTER")


def sqlite_type_to_pg(declared: str, family: str) -> str:
    """The PostgreSQL type of a SQLite column: the declared type where PostgreSQL has it
    (``VARCHAR(25)`` -> ``varchar(25)``, ``NUMERIC(18, 8)`` -> ``numeric(18,8)``,
    ``CHAR(3)``, ``SMALLINT``/``INTEGER``/``BIGINT``), else the family's type."""
    match = _DECLARED.match(declared)
    name, size, scale = (match.group(1).upper(), match.group(2), match.group(3)) if match else ("", None, None)
    if family == "integer":
        return _INTEGERS.get(name, "bigint")
    if family == "numeric" and size is not None:
        return f"numeric({size},{scale or 0})"
    if family == "text" and size is not None and int(size) > 0:
        if name in _VARYING:
            return f"character varying({size})"
        if name in ("CHAR", "CHARACTER", "NCHAR"):
            return f"character({size})"
    if family == "datetime" and ("WITH TIME ZONE" in declared.upper() or "TIMESTAMPTZ" in declared.upper()):
        return "timestamp with time zone"
    return _SQLITE_TO_PG.get(family, "text")


def sqlite_column_to_pg(column: Column) -> Column:
    family = column.family if column.family in _SQLITE_TO_PG else "text"
    return Column(name=column.name, declared=sqlite_type_to_pg(column.declared, family),
                  family="text" if family == "other" else family, nullable=column.nullable)


def sqlite_table_to_pg(table: TableSchema) -> TableSchema:
    if table.dialect == "postgresql":
        return table
    return TableSchema(name=table.name, columns=[sqlite_column_to_pg(c) for c in table.columns],
                       primary_key=list(table.primary_key), dialect="postgresql", ddl=EMPTY_PG_DDL)


def pg_column_to_sqlite(column: Column) -> Column:
    name, is_array = base_name(column.declared)
    if is_array or name in ("json", "jsonb"):  # TEXT affinity: a bare number keeps its digits
        declared, family = "JSON_TEXT", "json"
    elif name == "timestamp without time zone":
        declared, family = "DATETIME", "datetime"
    elif name == "boolean":
        declared, family = "BOOLEAN", "boolean"
    elif name == "interval":
        declared, family = "INTERVAL", "interval"
    elif name == "numeric":  # BLOB affinity: SQLite converts nothing (see exact_decimal)
        declared, family = "DECIMAL_BLOB" + column.declared[len("numeric"):], "numeric"
    elif column.family in ("text", "other") and sqlite_affinity(column.declared) != "TEXT":
        declared, family = "TEXT", "text"  # enums, domains, inet...: NUMERIC affinity would turn '01' into 1
    else:
        declared, family = column.declared, column.family
    return Column(name=column.name, declared=declared, family=family, nullable=column.nullable)


# -- values: SQLite -> PostgreSQL ---------------------------------------------------------------
def _bad(family: str, value: Any) -> IntegrityError:
    return IntegrityError(f"cannot restore SQLite value {value!r} into a {family} column")


def _to_int(v: Any) -> Any:
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
    raise _bad("integer", v)


def _to_float(v: Any) -> Any:
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
    raise _bad("float", v)


def _to_numeric(v: Any) -> Any:
    if isinstance(v, bool):
        return decimal.Decimal(int(v))
    if isinstance(v, int):
        return decimal.Decimal(v)
    if isinstance(v, float):
        return (decimal.Decimal(repr(v)) if v == v and v not in (float("inf"), float("-inf"))
                else decimal.Decimal(str(v)))
    if isinstance(v, str):
        try:
            return decimal.Decimal(v)
        except decimal.InvalidOperation:
            pass
    raise _bad("numeric", v)


def _to_bool(v: Any) -> Any:
    if isinstance(v, (int, float)):
        return bool(v)
    if isinstance(v, str) and v.lower() in ("1", "0", "true", "false", "t", "f"):
        return v.lower() in ("1", "true", "t")
    raise _bad("boolean", v)


def _to_text(v: Any) -> Any:
    if isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return repr(v) if isinstance(v, float) else str(v)


def _to_blob(v: Any) -> Any:
    if isinstance(v, bytes):
        return v
    return _to_text(v).encode("utf-8", "surrogateescape")


def _parser(kind: Callable[[str], Any]) -> Convert:
    def convert(v: Any) -> Any:
        if isinstance(v, str):
            try:
                return kind(v.replace("Z", "+00:00") if kind is dt.datetime.fromisoformat else v)
            except ValueError:
                return v  # PostgreSQL's own input parser may still read it (or refuse clearly)
        return v

    return convert


def _to_uuid(v: Any) -> Any:
    if isinstance(v, bytes) and len(v) == 16:
        return uuid.UUID(bytes=v)
    try:
        return uuid.UUID(str(v))
    except ValueError:
        raise _bad("uuid", v) from None


def _to_json(v: Any) -> Any:
    return v if isinstance(v, str) else _to_text(v)


_TO_PG: dict[str, Convert] = {
    "integer": _to_int, "float": _to_float, "numeric": _to_numeric, "boolean": _to_bool,
    "text": _to_text, "blob": _to_blob, "date": _parser(dt.date.fromisoformat),
    "datetime": _parser(dt.datetime.fromisoformat), "time": _parser(dt.time.fromisoformat),
    "json": _to_json, "uuid": _to_uuid, "interval": _to_text, "other": _to_text,
}


def sqlite_value_converters(table: TableSchema) -> list[Convert]:
    """Per column of the (PostgreSQL-mapped) table: SQLite value -> PostgreSQL value."""
    converters = []
    for column in table.columns:
        inner = _TO_PG.get(column.family, _to_text)
        if column.declared == "timestamp without time zone":
            converters.append(_naive(inner))
        else:
            converters.append(inner)
    return converters


def sqlite_row_reader(table: TableSchema) -> Callable[[list[Any]], list[Any]]:
    """A row of the PostgreSQL ``table`` read back from its SQLite copy as the source's own
    values, as its change events carry them: a ``numeric(p,s)`` value with its scale
    (SQLite keeps 7.5 as a REAL; the source had 7.50000000)."""
    converters = sqlite_value_converters(table)
    for i, column in enumerate(table.columns):
        scale = _SCALE.search(column.declared) if column.family == "numeric" else None
        if scale is not None:
            converters[i] = _scaled(converters[i], decimal.Decimal(1).scaleb(-int(scale.group(1))))
    return row_mapper(converters)


_SCALE = re.compile(r"\(\s*\d+\s*,\s*(\d+)\s*\)")


def _scaled(inner: Convert, exponent: decimal.Decimal) -> Convert:
    def convert(v: Any) -> Any:
        out = inner(v)
        if isinstance(out, decimal.Decimal) and out.is_finite():
            try:
                return out.quantize(exponent)
            except decimal.InvalidOperation:
                return out
        return out

    return convert


def _naive(inner: Convert) -> Convert:
    def convert(v: Any) -> Any:
        out = inner(v)
        if isinstance(out, dt.datetime) and out.tzinfo is not None:
            out = out.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return out

    return convert


# -- values: PostgreSQL -> SQLite ---------------------------------------------------------------
def _json_text(value: Any) -> str:
    """Arrays as JSON text, numbers with all their digits."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else json.dumps(repr(value))
    if isinstance(value, decimal.Decimal):
        return str(value) if value.is_finite() else json.dumps(str(value))
    if isinstance(value, list):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    if isinstance(value, bytes):
        return json.dumps("\\x" + value.hex())
    return json.dumps(_scalar_to_sqlite(value))


def _datetime_text(value: dt.datetime) -> str:
    text = value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if value.tzinfo is not None:
        text += value.isoformat()[26:] if value.microsecond else value.isoformat()[19:]
    return text


def interval_text(value: dt.timedelta) -> str:
    return f"{value.days} days {value.seconds} seconds {value.microseconds} microseconds"


def exact_decimal(value: decimal.Decimal) -> int | float | str:
    """A numeric value for a BLOB-affinity SQLite column, every digit kept: an integer as
    INTEGER, a value a double reads back exactly (its shortest repr is the same decimal) as
    REAL (what an ORM's Numeric on SQLite reads), any other as its TEXT."""
    if not value.is_finite():
        return str(value)
    if value == value.to_integral_value() and -(1 << 63) <= value < (1 << 63):
        return int(value)
    number = float(value)
    if decimal.Decimal(repr(number)) == value:
        return number
    return str(value)


def _scalar_to_sqlite(value: Any) -> Any:
    kind = type(value)
    if kind is float and value != value:
        return "NaN"  # SQLite stores a NaN REAL as NULL; this text reads back as NaN
    if kind is bool:
        return int(value)
    if kind is decimal.Decimal:
        return exact_decimal(value)
    if kind is dt.datetime:
        return _datetime_text(value)
    if kind in (dt.date, dt.time):
        return value.isoformat()
    if kind is dt.timedelta:
        return interval_text(value)
    if kind is uuid.UUID:
        return str(value)
    return value


def pg_value_converters(table: TableSchema) -> list[Convert]:
    """Per column of the PostgreSQL table: stream value -> SQLite value."""
    converters: list[Convert] = []
    for column in table.columns:
        if column.family == ARRAY_FAMILY:
            converters.append(lambda v: None if v is None else _json_text(v))
        else:
            converters.append(lambda v: None if v is None else _scalar_to_sqlite(v))
    return converters


def row_mapper(converters: list[Convert]) -> Callable[[list[Any]], list[Any]]:
    def convert(row: list[Any]) -> list[Any]:
        return [None if v is None else c(v) for c, v in zip(converters, row)]

    return convert


def key_mapper(table: TableSchema, converters: list[Convert]) -> Callable[[list[Any]], list[Any]]:
    picked = [converters[i] for i in table.identity_indexes()]  # a keyless table: its whole old row
    return row_mapper(picked)
