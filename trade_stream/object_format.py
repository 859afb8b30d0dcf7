"""The container every stored backup object uses (full snapshots and incremental segments).

    magic        8 bytes  b"TVAULT\\x00\\x01"
    header_len   4 bytes  big-endian
    header       JSON (ObjectHeader), zstd-compressed (one frame with its content size)
    body         one zstd stream (what it holds depends on header.codec)
    trailer      8 bytes b"TVEND\\x00\\x00\\x01" + SHA-256 of every byte before the trailer

The trailer makes an object self-verifying even without its manifest entry; the manifest
entry additionally records the SHA-256 of the whole object, trailer included.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any, BinaryIO, Iterator, Protocol

import msgspec
import zstandard

from trade_stream.errors import IntegrityError

MAGIC = b"TVAULT\x00\x01"
TRAILER_MAGIC = b"TVEND\x00\x00\x01"
TRAILER_SIZE = len(TRAILER_MAGIC) + 32
FORMAT_VERSION = 1
MAX_HEADER = 64 * 1024 * 1024

CODEC_SQLITE_FILE = "sqlite-file"  # body: a SQLite database file (physical snapshot)
CODEC_EVENTS = "events-msgpack"  # body: u32 length + msgpack array of events, repeated


class ObjectHeader(msgspec.Struct, frozen=True):
    format: int
    kind: str  # "full" | "incremental"
    codec: str
    source: str
    after_seq: int  # an incremental holds events with after_seq < seq <= last_seq
    last_seq: int
    first_ts: int | None
    last_ts: int | None
    count: int  # rows of a full backup, events of an incremental
    schema: dict[str, Any]  # DatabaseSchema at the start of the object
    capture_id: str = ""
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class Writable(Protocol):
    def write(self, data: bytes, /) -> Any: ...


class _HashingWriter:
    """Counts and hashes what passes through, so nothing is read back to checksum it."""

    def __init__(self, raw: Writable) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.raw.write(data)
        return len(data)

    def flush(self) -> None:
        pass


class ObjectWriter:
    """Streams one object: header now, body through zstd, trailer at ``finish``."""

    def __init__(self, raw: Writable, header: ObjectHeader, *, level: int = 3, threads: int = 0):
        self._out = _HashingWriter(raw)
        header_bytes = zstandard.ZstdCompressor(level=19).compress(msgspec.json.encode(header))
        self._out.write(MAGIC + struct.pack(">I", len(header_bytes)) + header_bytes)
        params = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
        self._zstd = params.stream_writer(self._out, closefd=False, write_return_read=True)
        self._finished = False

    def write(self, data: bytes | memoryview) -> None:
        self._zstd.write(data)

    def finish(self) -> tuple[int, str]:
        """Ends the object; returns (size in bytes, SHA-256 hex of the whole object)."""
        self._zstd.flush(zstandard.FLUSH_FRAME)
        self._zstd.close()
        trailer = TRAILER_MAGIC + self._out.sha.digest()
        self._out.write(trailer)
        self._finished = True
        return self._out.size, self._out.sha.hexdigest()


class _BodyReader:
    """Reads exactly the body bytes, hashing them, so the trailer can be checked at the end."""

    def __init__(self, raw: BinaryIO, length: int, sha: "hashlib._Hash") -> None:
        self.raw = raw
        self.left = length
        self.sha = sha

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        if size < 0 or size > self.left:
            size = self.left
        data = self.raw.read(size)
        if not data:
            raise IntegrityError("object truncated")
        self.left -= len(data)
        self.sha.update(data)
        return data

    def readable(self) -> bool:
        return True


class ObjectReader:
    """Parses the header; ``body()`` yields decompressed bytes; ``check_trailer()`` proves
    that everything read was intact. ``size`` is the stored object's total size."""

    def __init__(self, raw: BinaryIO, size: int, name: str = "object") -> None:
        self.name = name
        self.raw = raw
        self.sha = hashlib.sha256()
        fixed = raw.read(12)
        if len(fixed) < 12 or fixed[:8] != MAGIC:
            raise IntegrityError(f"{name}: not a tradevault object (bad magic)")
        (header_len,) = struct.unpack(">I", fixed[8:])
        if header_len > MAX_HEADER or 12 + header_len + TRAILER_SIZE > size:
            raise IntegrityError(f"{name}: corrupt header length")
        header_bytes = raw.read(header_len)
        if len(header_bytes) != header_len:
            raise IntegrityError(f"{name}: object truncated in header")
        self.sha.update(fixed + header_bytes)
        try:
            plain = zstandard.ZstdDecompressor().decompress(header_bytes, max_output_size=MAX_HEADER)
            self.header = msgspec.json.decode(plain, type=ObjectHeader)
        except (zstandard.ZstdError, msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            # ValueError covers invalid UTF-8 in a damaged header (UnicodeDecodeError)
            raise IntegrityError(f"{name}: corrupt header: {exc}") from None
        if self.header.format != FORMAT_VERSION:
            raise IntegrityError(f"{name}: unsupported object format {self.header.format}")
        self._body_len = size - 12 - header_len - TRAILER_SIZE

    def body_chunks(self, chunk_size: int = 1 << 20, *, reuse: bool = False) -> Iterator[bytes | memoryview]:
        """Decompressed body; raises IntegrityError on any corruption of the compressed data.
        ``reuse``: every chunk is a view of one buffer, valid until the next is asked for
        (no fresh memory per chunk: for a caller that writes each chunk straight away)."""
        body = _BodyReader(self.raw, self._body_len, self.sha)
        reader = zstandard.ZstdDecompressor().stream_reader(body, read_across_frames=True)
        buffer = memoryview(bytearray(chunk_size)) if reuse else None
        try:
            while True:
                if buffer is not None:
                    got = reader.readinto(buffer)
                    chunk: bytes | memoryview = buffer[:got]
                else:
                    chunk = reader.read(chunk_size)
                if not chunk:
                    break
                yield chunk
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"{self.name}: corrupt compressed data: {exc}") from None
        if body.left:
            raise IntegrityError(f"{self.name}: trailing garbage after compressed body")

    def check_trailer(self, expected_sha256: str | None = None) -> None:
        """Call after the whole body was read: proves the object intact (and, given the
        manifest's SHA-256, that it is the very object the manifest names)."""
        trailer = self.raw.read(TRAILER_SIZE + 1)
        if len(trailer) != TRAILER_SIZE or trailer[:8] != TRAILER_MAGIC:
            raise IntegrityError(f"{self.name}: missing or damaged trailer")
        if trailer[8:] != self.sha.digest():
            raise IntegrityError(f"{self.name}: checksum mismatch (object is corrupt)")
        if expected_sha256 is not None:
            whole = self.sha.copy()
            whole.update(trailer)
            if whole.hexdigest() != expected_sha256:
                raise IntegrityError(f"{self.name}: SHA-256 differs from its manifest entry")
