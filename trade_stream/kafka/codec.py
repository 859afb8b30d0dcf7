"""The Kafka wire format of the trade log: topic names, record keys, values and headers.

Pure functions, no broker: everything a consumer in any language needs to read the topics
is defined here (and summarised in docs/kafka.md, "Topics and records").

* **Topics**: ``<prefix>.<database>.<table>`` per table, ``<prefix>.<database>._tradevault_schema``
  for table descriptions. Kafka allows only ``[A-Za-z0-9._-]`` in a topic name, so the
  database and table parts keep ``[A-Za-z0-9_]`` and write every other UTF-8 byte as
  ``-`` + two lowercase hex digits (``my table`` -> ``my-20table``, ``-`` -> ``-2d``):
  injective, and ``.`` only ever separates the parts. (Captured tables never start with
  ``_tradevault_``, so the schema topic cannot collide with a table's.)
* **Values** are JSON. Numbers, strings, booleans and null are plain JSON when that is
  exact for every reader: integers within +/-(2**53 - 1) (exact in a double, so
  JavaScript and Jackson read them right) and finite floats, written in the shortest form
  that reads back to the same double. Everything else is a one-key *tagged object*:
  ``{"$int": "123..."}`` (integers beyond 2**53), ``{"$float": "nan" | "inf" | "-inf"}``,
  ``{"$bytes": "<base64>"}``, ``{"$decimal": "1.50"}``, ``{"$datetime": ISO 8601 with
  offset}``, ``{"$date": ...}``, ``{"$time": ...}``, ``{"$timedelta": "days,seconds,micros"}``,
  ``{"$uuid": ...}``; a genuine JSON object value (PostgreSQL json) is ``{"$map": {...}}``
  so it can never be mistaken for a tag. Lists stay JSON arrays of encoded values.
* **Keys**: the JSON array of the primary-key values in primary-key order (the table's
  declared key order, never its column order), encoded as above, compact (no spaces),
  UTF-8: ``[42]``, ``["startup_candle","int"]``. The same row always gets the same key
  bytes, so it lands in the same partition and compaction keeps its last record.
* **Row records**: ``{"seq", "tx", "ts", "op", "table", "row": {column: value}}`` (``ts`` in
  microseconds UTC, ``op`` insert | update | snapshot); a delete is
  ``{"seq", "tx", "ts", "op": "delete", "table", "key": {pk column: value}, "row": null}``
  followed by a tombstone (null value) for the same key.
* **Headers** on every record, tombstones included: ``seq`` (decimal ASCII) and ``op``
  (``tombstone`` for a tombstone), so last-seq-wins works without parsing values.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from trade_stream.events import DELETE, SCHEMA

SCHEMA_TOPIC_SUFFIX = "_tradevault_schema"
TOMBSTONE = "tombstone"
MAX_SAFE_INT = 2**53 - 1
_MAX_TOPIC = 249

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_encoder = msgspec.json.Encoder()
_sorted_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder()


# -- topic names -----------------------------------------------------------------------------
def escape_name(name: str) -> str:
    """One part of a topic name: ``[A-Za-z0-9_]`` kept, every other UTF-8 byte ``-hh``."""
    out = []
    for byte in name.encode("utf-8"):
        out.append(chr(byte) if byte in _SAFE else f"-{byte:02x}")
    return "".join(out)


def unescape_name(part: str) -> str:
    raw = bytearray()
    i = 0
    while i < len(part):
        if part[i] == "-":
            raw.append(int(part[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(ord(part[i]))
            i += 1
    return raw.decode("utf-8")


def _topic(prefix: str, database: str, part: str) -> str:
    name = f"{prefix}.{escape_name(database)}.{part}"
    if len(name) > _MAX_TOPIC:
        raise ValueError(f"Kafka topic name longer than {_MAX_TOPIC} characters: {name[:60]}...")
    return name


def topic_name(prefix: str, database: str, table: str) -> str:
    """The compacted topic holding one table's rows."""
    return _topic(prefix, database, escape_name(table))


def schema_topic_name(prefix: str, database: str) -> str:
    """The compacted topic holding each table's latest description (key: table name)."""
    return _topic(prefix, database, SCHEMA_TOPIC_SUFFIX)


# -- values ----------------------------------------------------------------------------------
def encode_value(value: Any) -> Any:
    """A column value as a JSON-ready object that decodes back to the same Python value."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return value
    if kind is int:
        return value if -MAX_SAFE_INT <= value <= MAX_SAFE_INT else {"$int": str(value)}
    if kind is float:
        if math.isfinite(value):
            return value
        return {"$float": "nan" if value != value else ("inf" if value > 0 else "-inf")}
    if kind is bytes or kind is bytearray or kind is memoryview:
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if kind is decimal.Decimal:
        return {"$decimal": str(value)}
    if kind is dt.datetime:
        return {"$datetime": value.isoformat()}
    if kind is dt.date:
        return {"$date": value.isoformat()}
    if kind is dt.time:
        return {"$time": value.isoformat()}
    if kind is dt.timedelta:
        return {"$timedelta": f"{value.days},{value.seconds},{value.microseconds}"}
    if kind is uuid.UUID:
        return {"$uuid": str(value)}
    if kind is list or kind is tuple:
        return [encode_value(v) for v in value]
    if kind is dict:
        return {"$map": {str(k): encode_value(v) for k, v in value.items()}}
    raise TypeError(f"cannot encode value of type {kind.__name__} for Kafka")


def _decode_tag(tag: str, payload: Any) -> Any:
    if tag == "$int":
        return int(payload)
    if tag == "$float":
        return float(payload)
    if tag == "$bytes":
        return base64.b64decode(payload)
    if tag == "$decimal":
        return decimal.Decimal(payload)
    if tag == "$datetime":
        return dt.datetime.fromisoformat(payload)
    if tag == "$date":
        return dt.date.fromisoformat(payload)
    if tag == "$time":
        return dt.time.fromisoformat(payload)
    if tag == "$timedelta":
        days, seconds, micros = (int(p) for p in payload.split(","))
        return dt.timedelta(days=days, seconds=seconds, microseconds=micros)
    if tag == "$uuid":
        return uuid.UUID(payload)
    if tag == "$map":
        return {k: decode_value(v) for k, v in payload.items()}
    raise ValueError(f"unknown tagged value {tag!r}")


def decode_value(obj: Any) -> Any:
    kind = type(obj)
    if kind is dict:
        if len(obj) != 1:
            raise ValueError(f"not a tagged value: {obj!r}")
        ((tag, payload),) = obj.items()
        return _decode_tag(tag, payload)
    if kind is list:
        return [decode_value(v) for v in obj]
    return obj


# -- keys ------------------------------------------------------------------------------------
def encode_key(values: list[Any] | tuple[Any, ...]) -> bytes:
    """Record key: compact JSON array of the primary-key values, in primary-key order."""
    return _encoder.encode([encode_value(v) for v in values])


def decode_key(data: bytes) -> list[Any]:
    return [decode_value(v) for v in _decoder.decode(data)]


def schema_key(table: str) -> bytes:
    return _encoder.encode([table])


# -- records ---------------------------------------------------------------------------------
_OP_HEADERS = {op: ("op", op.encode("ascii")) for op in ("insert", "update", "delete", "snapshot", "schema", TOMBSTONE)}


def headers(seq: int, op: str) -> list[tuple[str, bytes]]:
    return [("seq", str(seq).encode("ascii")), _OP_HEADERS.get(op) or ("op", op.encode("ascii"))]


def encode_row_json(columns: list[str], row: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    """``{column: encoded value}``; the common plain values skip the function call (hot path)."""
    out = {}
    for column, value in zip(columns, row):
        kind = type(value)
        if kind is str or value is None:
            out[column] = value
        elif kind is int and -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            out[column] = value
        elif kind is float and value - value == 0.0:  # finite (inf - inf and nan - nan are nan)
            out[column] = value
        else:
            out[column] = encode_value(value)
    return out


def encode_row_value(seq: int, tx: int, ts: int, op: str, table: str, columns: list[str],
                     row: list[Any] | tuple[Any, ...]) -> bytes:
    """An insert / update / snapshot record: the full after-image as ``{column: value}``."""
    return _encoder.encode({"seq": seq, "tx": tx, "ts": ts, "op": op, "table": table,
                            "row": encode_row_json(columns, row)})


def encode_delete_value(seq: int, tx: int, ts: int, table: str, key_columns: list[str],
                        key: list[Any]) -> bytes:
    return _encoder.encode({
        "seq": seq, "tx": tx, "ts": ts, "op": DELETE, "table": table,
        "key": {c: encode_value(v) for c, v in zip(key_columns, key)}, "row": None,
    })


def encode_schema_value(seq: int, tx: int, ts: int, table: str, table_schema: dict[str, Any] | None) -> bytes:
    """A table description record (``schema`` null: the table was dropped at ``seq``)."""
    return _encoder.encode({"seq": seq, "tx": tx, "ts": ts, "op": SCHEMA, "table": table,
                            "schema": table_schema})


@dataclass(frozen=True)
class Record:
    """One decoded record of a table or schema topic."""

    key: bytes
    seq: int
    op: str  # insert | update | delete | snapshot | schema | tombstone
    row: dict[str, Any] | None = None  # JSON level (tagged values not yet decoded)
    table_schema: dict[str, Any] | None = None

    @property
    def live(self) -> bool:
        """True when the record says the row exists."""
        return self.op not in (DELETE, TOMBSTONE) and self.row is not None


def _header(hdrs: Any, name: str) -> bytes | None:
    for key, value in hdrs or ():
        if key == name:
            return value
    return None


def decode_record(key: bytes | None, value: bytes | None, hdrs: Any = ()) -> Record:
    """A consumed record; a tombstone takes its seq from the ``seq`` header."""
    if key is None:
        raise ValueError("record without a key")
    if value is None:
        raw = _header(hdrs, "seq")
        if raw is None:
            raise ValueError("tombstone without a seq header")
        return Record(key=key, seq=int(raw), op=TOMBSTONE)
    data = _decoder.decode(value)
    if data.get("op") == SCHEMA:
        return Record(key=key, seq=int(data["seq"]), op=SCHEMA, table_schema=data.get("schema"))
    return Record(key=key, seq=int(data["seq"]), op=str(data["op"]), row=data.get("row"))


def decode_row(row: dict[str, Any]) -> dict[str, Any]:
    """A record's row with every tagged value decoded to its Python type."""
    return {c: decode_value(v) for c, v in row.items()}


def canonical_row(row_json: dict[str, Any]) -> bytes:
    """Bytes that are equal exactly when two JSON-level rows are (column order ignored;
    -0.0 and 0.0 differ, as they do in the database)."""
    return _sorted_encoder.encode(row_json)

