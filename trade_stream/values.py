"""Exact encoding of column values for the wire (msgpack via msgspec).

SQLite hands us only int, float, str, bytes and None, which msgpack carries natively and
exactly (64-bit ints, IEEE doubles bit for bit, raw bytes). Richer database types
(PostgreSQL) travel as msgpack extension types so they come back as the same Python type:
msgspec would otherwise turn a Decimal or a datetime into an indistinguishable string.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import msgspec

EXT_DECIMAL = 1
EXT_DATETIME = 2
EXT_DATE = 3
EXT_TIME = 4
EXT_TIMEDELTA = 5
EXT_UUID = 6
EXT_BIGINT = 7

NATIVE_TYPES = frozenset({int, float, str, bytes, type(None), bool, list, dict})
_INT64 = (-(2**63), 2**64 - 1)


def _ext(code: int, text: str) -> msgspec.msgpack.Ext:
    return msgspec.msgpack.Ext(code, text.encode())


def to_wire(value: Any) -> Any:
    """A value as msgspec should encode it, tagging types msgpack cannot carry exactly."""
    kind = type(value)
    if kind is int:
        if _INT64[0] <= value <= _INT64[1]:
            return value
        return _ext(EXT_BIGINT, str(value))
    if kind in NATIVE_TYPES:
        if kind is list:
            return [to_wire(v) for v in value]
        if kind is dict:
            return {k: to_wire(v) for k, v in value.items()}
        return value
    if kind is decimal.Decimal:
        return _ext(EXT_DECIMAL, str(value))
    if kind is dt.datetime:
        return _ext(EXT_DATETIME, value.isoformat())
    if kind is dt.date:
        return _ext(EXT_DATE, value.isoformat())
    if kind is dt.time:
        return _ext(EXT_TIME, value.isoformat())
    if kind is dt.timedelta:
        return _ext(EXT_TIMEDELTA, f"{value.days},{value.seconds},{value.microseconds}")
    if kind is uuid.UUID:
        return _ext(EXT_UUID, str(value))
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"cannot store value of type {kind.__name__}")


_SIMPLE_TYPES = frozenset({float, str, bytes, type(None), bool})


def row_to_wire(row: list[Any] | tuple[Any, ...] | None) -> list[Any] | None:
    """A row ready for encoding; rows of plain values (every SQLite row) pass untouched."""
    if row is None:
        return None
    for value in row:
        kind = type(value)
        if kind is int:
            if not _INT64[0] <= value <= _INT64[1]:
                break
        elif kind not in _SIMPLE_TYPES:
            break
    else:
        return row if isinstance(row, list) else list(row)
    return [to_wire(v) for v in row]


def ext_hook(code: int, data: memoryview) -> Any:
    text = bytes(data).decode()
    if code == EXT_DECIMAL:
        return decimal.Decimal(text)
    if code == EXT_DATETIME:
        return dt.datetime.fromisoformat(text)
    if code == EXT_DATE:
        return dt.date.fromisoformat(text)
    if code == EXT_TIME:
        return dt.time.fromisoformat(text)
    if code == EXT_TIMEDELTA:
        days, seconds, micros = (int(p) for p in text.split(","))
        return dt.timedelta(days=days, seconds=seconds, microseconds=micros)
    if code == EXT_UUID:
        return uuid.UUID(text)
    if code == EXT_BIGINT:
        return int(text)
    raise ValueError(f"unknown value extension type {code}")
