"""Column values in the time-travel JSON documents (``history``, ``diff``, ``query``):
integers and floats as numbers, text as strings, NULL as null, exact decimals and
timestamps as strings (ISO 8601), blobs as base64 (the contract in DESIGN.md)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
from typing import Any


def json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)  # JSON has no NaN or infinity
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (list, dict)):
        return value  # json and arrays: already JSON-shaped
    return str(value)


def json_row(columns: list[str], row: list[Any] | tuple[Any, ...] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {name: json_value(value) for name, value in zip(columns, row)}
