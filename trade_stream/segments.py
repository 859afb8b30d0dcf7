"""Encoding of change events inside an incremental segment (the body of an object).

The body is a run of chunks: a 4-byte big-endian length, then a msgpack array of events
(each an 8-element array, see ChangeEvent). Chunks keep memory bounded on both sides.
"""

from __future__ import annotations

import struct
from typing import Iterable, Iterator

import msgspec

from trade_stream.errors import IntegrityError
from trade_stream.events import ChangeEvent
from trade_stream.values import ext_hook, row_to_wire

MAX_CHUNK = 256 * 1024 * 1024
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[ChangeEvent], ext_hook=ext_hook)


def encode_chunk(events: Iterable[ChangeEvent], *, plain: bool = False) -> bytes:
    """``plain``: every value is already exact in msgpack (SQLite's int/float/str/bytes/
    None), so the per-value type check is skipped; the Struct encodes as its array."""
    if plain:
        payload = _encoder.encode(events if isinstance(events, list) else list(events))
    else:
        payload = _encoder.encode(
            [
                (e.seq, e.tx, e.ts, e.table, e.op, row_to_wire(e.key), row_to_wire(e.row), e.table_schema)
                for e in events
            ]
        )
    return frame(payload)


def frame(payload: bytes) -> bytes:
    """A chunk as stored in an object body: 4-byte big-endian length, then the payload."""
    return struct.pack(">I", len(payload)) + payload


def unframe(data: Iterable[bytes | memoryview], name: str, what: str = "chunk") -> Iterator[bytes]:
    """Chunk payloads from a body arriving in arbitrary pieces; a bad length or a body
    that ends inside a chunk is IntegrityError (shared by every chunked codec). Each piece
    is copied in before the next is asked for (a reader may hand out one reused buffer);
    each payload is copied out once, and what a piece leaves over moves once."""
    buffer = bytearray()
    for piece in data:
        buffer += piece
        start, size = 0, len(buffer)
        with memoryview(buffer) as view:
            while size - start >= 4:
                (length,) = struct.unpack_from(">I", view, start)
                if length > MAX_CHUNK:
                    raise IntegrityError(f"{name}: corrupt chunk length {length}")
                if size - start < 4 + length:
                    break
                payload = bytes(view[start + 4:start + 4 + length])
                start += 4 + length
                yield payload
        del buffer[:start]
    if buffer:
        raise IntegrityError(f"{name}: truncated {what}")


def decode_chunks(data: Iterable[bytes], name: str = "segment") -> Iterator[list[ChangeEvent]]:
    """Events chunk by chunk from the decompressed body; any malformation is IntegrityError."""
    for payload in unframe(data, name, "event chunk"):
        try:
            events = _decoder.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError, ArithmeticError) as exc:
            # ArithmeticError: a damaged Decimal or timedelta extension (InvalidOperation, Overflow)
            raise IntegrityError(f"{name}: corrupt event chunk: {exc}") from None
        yield events
