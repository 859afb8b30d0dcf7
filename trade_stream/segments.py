"""Encoding of change events inside an incremental segment (the body of an object).

The body is a run of chunks: a 4-byte big-endian length, then a msgpack array of events
(each an 8-element array, see ChangeEvent). Chunks keep memory bounded on both sides.
"""

from __future__ import annotations

import operator
import struct
from itertools import islice
from typing import Any, Iterable, Iterator

import msgspec

from trade_stream.errors import IntegrityError
from trade_stream.events import ChangeEvent
from trade_stream.values import ext_hook, row_to_wire

MAX_CHUNK = 256 * 1024 * 1024


class KeyedEvent(msgspec.Struct, array_like=True, frozen=True):
    """A ChangeEvent read with its row left encoded (``row_of`` decodes it): for a reader
    that looks at keys first, decoding a row's values is most of a segment's decoding."""

    seq: int
    tx: int
    ts: int
    table: str
    op: str
    key: list[Any] | None = None
    row: msgspec.Raw = msgspec.Raw(b"\xc0")  # msgpack nil
    table_schema: dict[str, Any] | None = None

    def decoded(self) -> ChangeEvent:
        return ChangeEvent(self.seq, self.tx, self.ts, self.table, self.op, self.key, row_of(self),
                           self.table_schema)


def row_of(event: KeyedEvent) -> list[Any] | None:
    return _row_decoder.decode(event.row)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[ChangeEvent], ext_hook=ext_hook)
_keyed_decoder = msgspec.msgpack.Decoder(list[KeyedEvent], ext_hook=ext_hook)
_row_decoder = msgspec.msgpack.Decoder(list[Any] | None, ext_hook=ext_hook)


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


def decode_chunks(data: Iterable[bytes], name: str = "segment", *, keyed: bool = False) -> Iterator[list[Any]]:
    """Events chunk by chunk from the decompressed body (``keyed``: as KeyedEvent, rows left
    encoded); any malformation is IntegrityError."""
    decoder = _keyed_decoder if keyed else _decoder
    for payload in unframe(data, name, "event chunk"):
        try:
            events = decoder.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError, ArithmeticError) as exc:
            # ArithmeticError: a damaged Decimal or timedelta extension (InvalidOperation, Overflow)
            raise IntegrityError(f"{name}: corrupt event chunk: {exc}") from None
        yield events


def out_of_order(batch: list[Any], previous: int) -> int | None:
    """The first seq of ``batch`` not above the one before it (``previous`` for the first),
    or None: every reader checks that a segment's events rise. By C loops (``map``): a
    Python step per event cost a large segment's readers more than its decoding."""
    if not batch:
        return None
    seqs = [e.seq for e in batch]
    if seqs[0] > previous and all(map(operator.lt, seqs, islice(seqs, 1, None))):
        return None
    return next(t for s, t in zip([previous, *seqs], seqs) if t <= s)
