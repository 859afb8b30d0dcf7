"""The container every stored backup object uses (full snapshots and incremental segments).

    magic        8 bytes  b"TVAULT\\x00\\x01"
    header_len   4 bytes  big-endian
    header       JSON (ObjectHeader), zstd-compressed (one frame with its content size)
    body         one zstd stream (what it holds depends on header.codec)
    trailer      8 bytes b"TVEND\\x00\\x00\\x01" + SHA-256 of every byte before the trailer

The trailer makes an object self-verifying even without its manifest entry; the manifest
entry additionally records the SHA-256 of the whole object, trailer included.

``header.body`` says how the stream is laid out. "stream": as the compressor streamed it.
"sized-frames": independent zstd frames of at most FRAME_SIZE plain bytes, each announced
by a zstd skippable frame holding its compressed and plain length, so a reader can hand
frames to several threads and knows where each one's bytes go; any zstd reader (``zstd
-d`` included) still reads it as one stream, skipping the announcements.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO, Iterator, Protocol

import msgspec
import zstandard

from trade_stream.errors import IntegrityError

MAGIC = b"TVAULT\x00\x01"
TRAILER_MAGIC = b"TVEND\x00\x00\x01"
TRAILER_SIZE = len(TRAILER_MAGIC) + 32
FORMAT_VERSION = 1
MAX_HEADER = 64 * 1024 * 1024
HEADER_LEVEL_19_UP_TO = 64 * 1024

CODEC_SQLITE_FILE = "sqlite-file"  # body: a SQLite database file (physical snapshot)
CODEC_EVENTS = "events-msgpack"  # body: u32 length + msgpack array of events, repeated
CODEC_PGCOPY = "pgcopy-binary"  # body: PostgreSQL binary COPY streams per table (postgres/snapshot_rows.py)

BODY_STREAM = "stream"
BODY_SIZED_FRAMES = "sized-frames"
FRAME_SIZE = 4 << 20
# a zstd skippable frame (magic 0x184D2A50-5F, u32 payload length; little-endian) whose
# payload is the next frame's compressed and plain length
_ANNOUNCE = struct.Struct("<IIQQ")
_ANNOUNCE_MAGIC = 0x184D2A5A


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
    body: str = BODY_STREAM  # objects written before it existed are streams


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


def frame_params(level: int) -> zstandard.ZstdCompressionParameters:
    """``level`` for one FRAME_SIZE frame, with a 2^17-entry chain table (the level's own is
    2^16) and matches of at least 6 bytes (the level's own minimum is 5). A frame starts
    without history; these win back what that costs. Measured on the bench's SQLite
    snapshots at level 3: with the level's own parameters the frames came out larger than
    one ``zstd -3`` stream of the same file, with these smaller, at about the same
    compression CPU (figures in bench-results/). Short matches into the page-structured data
    cost more bits than they save, but 7-byte minimums came out larger again. Only the fast
    levels (strategy fast or dfast, levels 1-4) get the longer minimum: the slower ones
    search well enough to pick their own matches, and nothing here measured them."""
    base = zstandard.ZstdCompressionParameters.from_level(level, source_size=FRAME_SIZE)
    fast = base.strategy <= zstandard.STRATEGY_DFAST
    return zstandard.ZstdCompressionParameters.from_level(
        level, source_size=FRAME_SIZE, chain_log=max(base.chain_log, 17),
        min_match=max(base.min_match, 6) if fast else base.min_match, write_checksum=1,
    )


class _FramedCompressor:
    """The "sized-frames" body: FRAME_SIZE pieces compressed as independent frames, by
    ``workers`` threads at once, written in order, each after its announcement. At most
    ``workers`` frames are in flight, each in a buffer of its own (no further copies)."""

    def __init__(self, out: Writable, level: int, workers: int) -> None:
        self._out = out
        self._params = frame_params(level)
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="tradevault-zstd") if workers > 1 else None
        self._pending: deque[Future[bytes]] = deque()
        self._workers = workers
        self._buffer = bytearray(FRAME_SIZE)
        self._fill = 0
        self._frames = 0

    def _compress(self, plain: memoryview) -> bytes:
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:  # a ZstdCompressor is not thread-safe: one per thread
            compressor = self._local.compressor = zstandard.ZstdCompressor(compression_params=self._params)
        frame = compressor.compress(plain)
        return _ANNOUNCE.pack(_ANNOUNCE_MAGIC, 16, len(frame), len(plain)) + frame

    def _submit(self) -> None:
        plain = memoryview(self._buffer)[:self._fill]
        self._frames += 1
        if self._pool is None:
            self._out.write(self._compress(plain))
            self._fill = 0
            return
        while len(self._pending) >= self._workers:
            self._out.write(self._pending.popleft().result())
        self._pending.append(self._pool.submit(self._compress, plain))
        self._buffer, self._fill = bytearray(FRAME_SIZE), 0  # the worker owns the old one

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        while view:
            take = min(FRAME_SIZE - self._fill, len(view))
            self._buffer[self._fill:self._fill + take] = view[:take]
            self._fill += take
            view = view[take:]
            if self._fill == FRAME_SIZE:
                self._submit()

    def abandon(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def close(self) -> None:
        try:
            if self._fill or not self._frames:
                self._submit()
            while self._pending:
                self._out.write(self._pending.popleft().result())
        finally:
            self.abandon()


def framed_body(out: Writable, level: int, workers: int) -> _FramedCompressor:
    """A "sized-frames" body compressed ahead of its object, into ``out`` (a spool), by
    ``workers`` threads while the caller is still making the data: an incremental whose
    header must wait for its last event then compresses nothing after it. ``close()`` it,
    then ``ObjectWriter.write_framed`` copies it into the object unchanged."""
    return _FramedCompressor(out, level, workers)


class ObjectWriter:
    """Streams one object: header now, body through zstd, trailer at ``finish``.
    ``threads``: zstd's (-1: one per core); a "sized-frames" body compresses that many
    frames at once instead."""

    def __init__(self, raw: Writable, header: ObjectHeader, *, level: int = 3, threads: int = 0):
        self._out = _HashingWriter(raw)
        plain_header = msgspec.json.encode(header)
        # level 19 makes a small header smallest; a header with a large key index (mostly
        # random bits) would take tens of milliseconds at 19 and shrink no further
        header_level = 19 if len(plain_header) <= HEADER_LEVEL_19_UP_TO else 3
        header_bytes = zstandard.ZstdCompressor(level=header_level).compress(plain_header)
        self._out.write(MAGIC + struct.pack(">I", len(header_bytes)) + header_bytes)
        self._zstd: Any
        if header.body == BODY_SIZED_FRAMES:
            self._zstd = _FramedCompressor(self._out, level, (os.cpu_count() or 1) if threads < 0 else max(threads, 1))
        elif header.body == BODY_STREAM:
            params = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
            self._zstd = params.stream_writer(self._out, closefd=False, write_return_read=True)
        else:
            raise ValueError(f"unknown body layout {header.body!r}")
        self._finished = False
        self._framed_ahead = False

    def write(self, data: bytes | memoryview) -> None:
        if self._framed_ahead:
            raise ValueError("this object's body was compressed ahead (write_framed)")
        self._zstd.write(data)

    def write_framed(self, data: bytes | memoryview) -> None:
        """Body bytes compressed ahead by ``framed_body`` (a "sized-frames" body), as they are."""
        if not isinstance(self._zstd, _FramedCompressor) or self._zstd._frames or self._zstd._fill:
            raise ValueError("write_framed needs a sized-frames body and nothing written through write()")
        self._framed_ahead = True
        self._out.write(data)

    def finish(self) -> tuple[int, str]:
        """Ends the object; returns (size in bytes, SHA-256 hex of the whole object)."""
        if isinstance(self._zstd, _FramedCompressor):
            if self._framed_ahead:
                self._zstd.abandon()
            else:
                self._zstd.close()
        else:
            self._zstd.flush(zstandard.FLUSH_FRAME)
            self._zstd.close()
        trailer = TRAILER_MAGIC + self._out.sha.digest()
        self._out.write(trailer)
        self._finished = True
        return self._out.size, self._out.sha.hexdigest()

    def abandon(self) -> None:
        """Stops compression threads of an object that will not be finished."""
        if isinstance(self._zstd, _FramedCompressor) and not self._finished:
            self._zstd.abandon()


class _BodyReader:
    """Reads exactly the body bytes, hashing them, so the trailer can be checked at the end."""

    def __init__(self, raw: BinaryIO, length: int, sha: "hashlib._Hash", name: str) -> None:
        self.raw = raw
        self.name = name
        self.left = length
        self.sha = sha

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        if size < 0 or size > self.left:
            size = self.left
        data = self.raw.read(size)
        if not data:
            raise IntegrityError(f"{self.name}: object truncated")
        self.left -= len(data)
        self.sha.update(data)
        return data

    def read_exact(self, size: int) -> bytes:
        if size > self.left:
            raise IntegrityError(f"{self.name}: object truncated")
        data = self.read(size)
        if len(data) == size:
            return data
        parts = [data]
        got = len(data)
        while got < size:
            parts.append(self.read(size - got))
            got += len(parts[-1])
        return b"".join(parts)

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
            # a frame that declares its size gets a buffer that big before anything is
            # checked: a damaged size field asked for gigabytes (found by the fuzz campaign)
            declared = zstandard.frame_content_size(header_bytes)
            if declared > MAX_HEADER:
                raise IntegrityError(f"{name}: corrupt header: it declares {declared:,} bytes")
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
        body = _BodyReader(self.raw, self._body_len, self.sha, self.name)
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

    @property
    def framed(self) -> bool:
        return self.header.body == BODY_SIZED_FRAMES

    def frames(self) -> Iterator[tuple[int, bytes, int]]:
        """A "sized-frames" body as (plain offset, compressed frame, plain length), read in
        order (and hashed for the trailer); ``frame_chunks`` decompresses each,
        in any thread."""
        if not self.framed:
            raise IntegrityError(f"{self.name}: body is not in sized frames")
        body = _BodyReader(self.raw, self._body_len, self.sha, self.name)
        offset = 0
        while body.left:
            magic, payload, length, plain = _ANNOUNCE.unpack(body.read_exact(_ANNOUNCE.size))
            if magic != _ANNOUNCE_MAGIC or payload != 16 or length > body.left or plain > FRAME_SIZE:
                raise IntegrityError(f"{self.name}: corrupt frame announcement at plain offset {offset}")
            yield offset, body.read_exact(length), plain
            offset += plain

    def frame_chunks(self, frame: bytes, plain: int, buffer: memoryview) -> Iterator[memoryview]:
        """One frame (from ``frames``) decompressed through ``buffer``: each chunk is a view
        of it, valid until the next is asked for; any thread, one buffer per thread."""
        done = 0
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(frame)
            while got := reader.readinto(buffer):
                done += got
                if done > plain:
                    break
                yield buffer[:got]
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"{self.name}: corrupt compressed data: {exc}") from None
        if done != plain:
            raise IntegrityError(f"{self.name}: frame holds {done}+ bytes, its announcement says {plain}")

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
