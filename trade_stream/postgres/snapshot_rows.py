"""The ``pgcopy-binary`` codec: a logical snapshot (full backup of a PostgreSQL source).

The object's header is the usual container header (``object_format``) with
``header.schema`` = the DatabaseSchema at the snapshot (dialect ``postgresql``, each column
with its declared type and family) and ``header.extra["tables"]`` = rows per table. The
body is a run of chunks, like an incremental segment:

    u32 big-endian length, then a msgpack array ``[table, data]``

where ``data`` (bytes, up to ~1 MiB per chunk) is a piece of the table's
``COPY ... TO STDOUT (FORMAT BINARY)`` stream, in the columns order of the schema; the
pieces of one table are contiguous and concatenate to one complete COPY stream (signature,
header, tuples, trailer). Why PostgreSQL's own binary COPY format rather than re-encoded
rows: it is exact by construction for every type (values are never converted on the way),
backing up is a copy of bytes through zstd and a PostgreSQL restore is ``COPY FROM STDIN
(FORMAT BINARY)`` of the same bytes: no per-value work on either side, so both beat
pg_dump/pg_restore. Restores into SQLite (and digests, verify --deep) parse the stream
with ``BinaryCopyParser`` and psycopg's binary loaders (``types.adapters``), which
give the same Python values the change stream carries.

A table with a column of a type that travels as text (``types.travels_as_text``: enums,
domains, composites, ranges, extension types...) is copied in COPY's **text** format
instead: binary COPY of composites and arrays names type oids, which differ between
databases. ``header.extra["text_tables"]`` lists those tables (absent: all binary); their
pieces concatenate to a text COPY stream, parsed by ``TextCopyParser``.
"""

from __future__ import annotations

import struct
from typing import Any, Iterable, Iterator

import msgspec

from trade_stream.errors import IntegrityError
from trade_stream.segments import frame, unframe

CHUNK_BYTES = 1 << 20
SIGNATURE = b"PGCOPY\n\xff\r\n\x00"

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(tuple[str, bytes])
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


def encode_copy_chunk(table: str, data: bytes) -> bytes:
    return frame(_encoder.encode((table, data)))


def decode_copy_chunks(data: Iterable[bytes], name: str = "snapshot") -> Iterator[tuple[str, bytes]]:
    """(table, COPY bytes) chunk by chunk; any malformation is an IntegrityError."""
    for payload in unframe(data, name):
        try:
            table, chunk = _decoder.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, UnicodeDecodeError) as exc:
            raise IntegrityError(f"{name}: corrupt chunk: {exc}") from None
        yield table, chunk


class BinaryCopyParser:
    """Splits one table's binary COPY stream into tuples of raw field values (None = NULL)."""

    def __init__(self, name: str = "snapshot") -> None:
        self.name = name
        self.buffer = bytearray()
        self.header_done = False
        self.finished = False

    def feed(self, data: bytes) -> list[list[bytes | None]]:
        self.buffer += data
        buf = self.buffer
        pos = 0
        if not self.header_done:
            if len(buf) < 19:
                return []
            if bytes(buf[:11]) != SIGNATURE:
                raise IntegrityError(f"{self.name}: not a binary COPY stream")
            (ext,) = _I32.unpack_from(buf, 15)
            if len(buf) < 19 + ext:
                return []
            pos = 19 + ext
            self.header_done = True
        rows = []
        size = len(buf)
        while pos + 2 <= size:
            (fields,) = _I16.unpack_from(buf, pos)
            if fields == -1:
                self.finished = True
                pos += 2
                break
            cursor = pos + 2
            row: list[bytes | None] = []
            for _ in range(fields):
                if cursor + 4 > size:
                    break
                (length,) = _I32.unpack_from(buf, cursor)
                cursor += 4
                if length < 0:
                    row.append(None)
                    continue
                if cursor + length > size:
                    break
                row.append(bytes(buf[cursor : cursor + length]))
                cursor += length
            if len(row) < fields:
                break  # incomplete tuple: wait for more data
            rows.append(row)
            pos = cursor
        del buf[:pos]
        return rows

    def close(self) -> None:
        if not self.finished or self.buffer:
            raise IntegrityError(f"{self.name}: binary COPY stream truncated")


_ESCAPES = {ord("b"): b"\b", ord("f"): b"\f", ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t",
            ord("v"): b"\v", ord("\\"): b"\\"}


def unescape_text_field(field: bytes) -> bytes:
    """One field of COPY's text format without its backslash escapes."""
    if b"\\" not in field:
        return field
    out = bytearray()
    i, n = 0, len(field)
    while i < n:
        ch = field[i]
        if ch != 0x5C or i + 1 == n:
            out.append(ch)
            i += 1
            continue
        nxt = field[i + 1]
        if nxt in _ESCAPES:
            out += _ESCAPES[nxt]
            i += 2
        elif nxt == ord("x") and i + 2 < n and chr(field[i + 2]) in "0123456789abcdefABCDEF":
            j = i + 2
            while j < n and j < i + 4 and chr(field[j]) in "0123456789abcdefABCDEF":
                j += 1
            out.append(int(field[i + 2 : j], 16))
            i = j
        elif 0x30 <= nxt <= 0x37:
            j = i + 1
            while j < n and j < i + 4 and 0x30 <= field[j] <= 0x37:
                j += 1
            out.append(int(field[i + 1 : j], 8) & 0xFF)
            i = j
        else:
            out.append(nxt)
            i += 2
    return bytes(out)


class TextCopyParser:
    """Splits one table's text COPY stream into tuples of raw field values (None = NULL):
    one line per row, fields separated by tabs, ``\\N`` for NULL, backslash escapes
    (newlines and tabs inside values are always escaped, so the split is safe)."""

    def __init__(self, name: str = "snapshot") -> None:
        self.name = name
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[list[bytes | None]]:
        self.buffer += data
        end = self.buffer.rfind(b"\n")
        if end < 0:
            return []
        lines = bytes(self.buffer[:end]).split(b"\n")
        del self.buffer[: end + 1]
        return [[None if f == b"\\N" else unescape_text_field(f) for f in line.split(b"\t")]
                for line in lines if line != b"\\."]

    def close(self) -> None:
        if self.buffer:
            raise IntegrityError(f"{self.name}: text COPY stream truncated")


def row_loader(declared_types: list[str], text: bool = False) -> Any:
    """A function turning raw fields (binary, or ``text`` format) into the stream's values."""
    from psycopg import adapt
    from psycopg.pq import Format

    from trade_stream.postgres.types import shared_adapters, type_oid

    tx = adapt.Transformer(shared_adapters())
    tx.set_loader_types([type_oid(d) for d in declared_types], Format.TEXT if text else Format.BINARY)
    return tx.load_sequence


def parser_for(text: bool, name: str) -> "BinaryCopyParser | TextCopyParser":
    return TextCopyParser(name) if text else BinaryCopyParser(name)


def iter_table_rows(chunks: Iterable[tuple[str, bytes]], schemas: dict[str, Any], name: str = "snapshot",
                    text_tables: Iterable[str] = ()) -> Iterator[tuple[str, list[list[Any]]]]:
    """(table, rows of Python values) from the chunks of a ``pgcopy-binary`` body (the
    ``text_tables`` of its header in text format)."""
    text = set(text_tables)
    current, parser, load = "", None, None
    for table, data in chunks:
        if table != current:
            if parser is not None:
                parser.close()
            schema = schemas.get(table)
            if schema is None:
                raise IntegrityError(f"{name}: rows for unknown table {table!r}")
            current, parser = table, parser_for(table in text, name)
            load = row_loader([c.declared for c in schema.columns], table in text)
        assert parser is not None and load is not None
        raw = parser.feed(data)
        if raw:
            try:
                yield table, [list(load(r)) for r in raw]
            except Exception as exc:  # noqa: BLE001 - psycopg DataError etc.
                raise IntegrityError(f"{name}: table {table!r}: undecodable value: {exc}") from None
    if parser is not None:
        parser.close()


def count_tuples(chunks: Iterable[tuple[str, bytes]], name: str = "snapshot",
                 text_tables: Iterable[str] = ()) -> dict[str, int]:
    text = set(text_tables)
    counts: dict[str, int] = {}
    current: str = ""
    parser: BinaryCopyParser | TextCopyParser | None = None
    for table, data in chunks:
        if table != current:
            if parser is not None:
                parser.close()
            current, parser = table, parser_for(table in text, name)
            counts.setdefault(table, 0)
        assert parser is not None
        counts[table] += len(parser.feed(data))
    if parser is not None:
        parser.close()
    return counts


def deep_check_rows(reader: Any, entry: Any) -> str:
    """``verify --deep`` of a ``pgcopy-binary`` full backup: every chunk decodes, every
    table's COPY stream is complete and holds the rows the manifest says. Returns a
    problem, or "" (the caller checks the trailer afterwards)."""
    counts = count_tuples(decode_copy_chunks(reader.body_chunks(4 << 20), entry.object), entry.object,
                          reader.header.extra.get("text_tables", ()))
    for table, rows in entry.tables.items():
        if counts.get(table, 0) != rows:
            return f"snapshot table {table!r} has {counts.get(table, 0)} rows, manifest says {rows}"
    extra = sorted(set(counts) - set(entry.tables))
    return f"snapshot holds rows of unlisted table(s) {extra}" if extra else ""
