"""The ``rows-msgpack`` codec: a logical snapshot (full backup of a PostgreSQL source).

The object's header is the usual container header (``object_format``) with
``header.schema`` = the DatabaseSchema at the snapshot (dialect ``postgresql``, each column
with its declared type and family) and ``header.extra["tables"]`` = rows per table. The
body is a run of chunks, like an incremental segment:

    u32 big-endian length, then a msgpack array ``[table, [row, row, ...]]``

Rows are arrays in the table's column order; values use the stream's exact value encoding
(``values.py``: msgpack natives plus extension types for Decimal, datetime, UUID, ...), so
a snapshot row and an event row holding the same values encode alike. Every table's rows
are contiguous and in primary-key order is not promised (COPY order). A chunk holds at most
``CHUNK_ROWS`` rows, so memory stays bounded on both sides.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Iterable, Iterator

import msgspec

from trade_stream.errors import IntegrityError
from trade_stream.values import ext_hook, row_to_wire

CODEC_ROWS = "rows-msgpack"
CHUNK_ROWS = 5000
MAX_CHUNK = 256 * 1024 * 1024

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(tuple[str, list[list[Any]]], ext_hook=ext_hook)


def encode_rows(table: str, rows: Iterable[Any]) -> bytes:
    payload = _encoder.encode((table, [row_to_wire(r) for r in rows]))
    return struct.pack(">I", len(payload)) + payload


class RowChunkWriter:
    """Buffers rows of one table at a time and writes full chunks to ``write``."""

    def __init__(self, write: Callable[[bytes], Any], chunk_rows: int = CHUNK_ROWS) -> None:
        self.write = write
        self.chunk_rows = chunk_rows
        self.table = ""
        self.rows: list[Any] = []
        self.count = 0

    def add(self, table: str, row: Any) -> None:
        if table != self.table:
            self.flush()
            self.table = table
        self.rows.append(row)
        if len(self.rows) >= self.chunk_rows:
            self.flush()

    def add_many(self, table: str, rows: list[Any]) -> None:
        if table != self.table:
            self.flush()
            self.table = table
        self.rows.extend(rows)
        if len(self.rows) >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.write(encode_rows(self.table, self.rows))
            self.count += len(self.rows)
            self.rows = []


def decode_row_chunks(data: Iterable[bytes], name: str = "snapshot") -> Iterator[tuple[str, list[list[Any]]]]:
    """(table, rows) chunk by chunk; any malformation is an IntegrityError."""
    buffer = bytearray()
    for piece in data:
        buffer += piece
        while len(buffer) >= 4:
            (length,) = struct.unpack_from(">I", buffer)
            if length > MAX_CHUNK:
                raise IntegrityError(f"{name}: corrupt row chunk length {length}")
            if len(buffer) < 4 + length:
                break
            payload = bytes(buffer[4 : 4 + length])
            del buffer[: 4 + length]
            try:
                table, rows = _decoder.decode(payload)
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError, UnicodeDecodeError) as exc:
                raise IntegrityError(f"{name}: corrupt row chunk: {exc}") from None
            yield table, rows
    if buffer:
        raise IntegrityError(f"{name}: truncated row chunk")


def deep_check_rows(reader: Any, entry: Any) -> str:
    """``verify --deep`` of a ``rows-msgpack`` full backup: every chunk decodes and the rows
    per table are what the manifest says. Returns a problem, or "" (the caller checks the
    trailer afterwards)."""
    counts: dict[str, int] = {}
    for table, rows in decode_row_chunks(reader.body_chunks(4 << 20), entry.object):
        counts[table] = counts.get(table, 0) + len(rows)
    for table, rows in entry.tables.items():
        if counts.get(table, 0) != rows:
            return f"snapshot table {table!r} has {counts.get(table, 0)} rows, manifest says {rows}"
    extra = sorted(set(counts) - set(entry.tables))
    return f"snapshot holds rows of unlisted table(s) {extra}" if extra else ""
