"""Reading stored backup objects: every reader of segments and snapshots (restore, the
standby, the Kafka sink's catch-up) goes through these, so each object is verified the
same way — from the first intact copy, checksums checked before its content is used."""

from __future__ import annotations

import os
import tempfile
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

from trade_stream.durable import start_writeback
from trade_stream.errors import IntegrityError, StorageError
from trade_stream.manifest import ManifestEntry
from trade_stream.object_format import CODEC_EVENTS, CODEC_SQLITE_FILE, ObjectHeader, ObjectReader
from trade_stream.progress import Progress, no_progress
from trade_stream.segments import decode_chunks, out_of_order
from trade_stream.storage.store import BackupStore


def expect_codec(reader: ObjectReader, codec: str) -> None:
    if reader.header.codec != codec:
        raise IntegrityError(f"{reader.name}: unexpected codec {reader.header.codec!r}")


DECOMPRESS_THREADS = min(4, max(2, os.cpu_count() or 1))


def decompress_full(store: BackupStore, entry: ManifestEntry, path: Path,
                    progress: Progress = no_progress) -> dict[str, Any]:
    """A SQLite snapshot's database file at ``path``, from the first intact copy; returns
    the schema recorded with it."""

    def consume(reader: ObjectReader) -> dict[str, Any]:
        expect_codec(reader, CODEC_SQLITE_FILE)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            if reader.framed:
                _write_frames(reader, out.fileno(), progress)
            else:
                done = 0
                for chunk in reader.body_chunks(4 << 20, reuse=True):
                    out.write(chunk)
                    done += len(chunk)
                    progress("decompress", done, None)
        return reader.header.schema

    return store.read_object(entry, consume)


def _write_frames(reader: ObjectReader, fd: int, progress: Progress) -> None:
    """A framed snapshot decompressed by several threads, each frame written at its place
    and its writeback started at once: decompression is the restore's longest step, and the
    fsync before the rename then finds little left to write. Each thread decompresses
    through one buffer of its own, so memory stays flat."""
    local = threading.local()

    def put(offset: int, frame: bytes, plain: int) -> int:
        buffer = getattr(local, "buffer", None)
        if buffer is None:
            buffer = local.buffer = memoryview(bytearray(1 << 20))
        start = offset
        for chunk in reader.frame_chunks(frame, plain, buffer):
            while chunk:
                written = os.pwrite(fd, chunk, offset)
                chunk, offset = chunk[written:], offset + written
        start_writeback(fd, start, plain)
        return plain

    done = 0
    with ThreadPoolExecutor(DECOMPRESS_THREADS, thread_name_prefix="tradevault-unzstd") as pool:
        pending: deque[Future[int]] = deque()
        try:
            for offset, frame, plain in reader.frames():
                pending.append(pool.submit(put, offset, frame, plain))
                while len(pending) > DECOMPRESS_THREADS:
                    done += pending.popleft().result()
                    progress("decompress", done, None)
            while pending:
                done += pending.popleft().result()
                progress("decompress", done, None)
        finally:
            for future in pending:
                future.cancel()


def events_of(store: BackupStore, entry: ManifestEntry, *, keyed: bool = False) -> Iterator[list[Any]]:
    """Decoded event batches of an incremental (``keyed``: as ``segments.KeyedEvent``, rows
    left encoded). The object is verified (checksums, from the first intact copy) before
    the first event is handed out, so nothing unverified is ever applied; the decompressed
    body is spooled to bound memory."""

    def consume(reader: ObjectReader) -> Any:
        expect_codec(reader, CODEC_EVENTS)
        spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # bigger bodies wait on disk
        for chunk in reader.body_chunks():
            spool.write(chunk)
        return spool

    spool = store.read_object(entry, consume)
    with spool:
        spool.seek(0)
        previous = entry.after_seq
        for batch in decode_chunks(iter(lambda: spool.read(1 << 20), b""), entry.object, keyed=keyed):
            if not batch:
                continue
            at = out_of_order(batch, previous)
            if at is not None:
                raise IntegrityError(f"{entry.object}: events out of order at seq {at}")
            previous = batch[-1].seq
            yield batch
        if previous != entry.last_seq:
            raise IntegrityError(f"{entry.object}: ends at seq {previous}, manifest says {entry.last_seq}")


def header_of(store: BackupStore, entry: ManifestEntry) -> ObjectHeader:
    """An object's header, from the first location whose copy reads (the body is not
    read: its checksum is checked by whatever reads the body)."""
    problems = []
    for location in store.locations:
        try:
            with store.open_reader(location, entry) as reader:
                return reader.header
        except (IntegrityError, StorageError, OSError) as exc:
            problems.append(str(exc))
    raise IntegrityError(f"{entry.object}: no readable copy in any location ({'; '.join(problems)})")


def schema_of(store: BackupStore, entry: ManifestEntry) -> dict[str, Any]:
    """The schema recorded in an object's header (the tables as they were at its start)."""
    return header_of(store, entry).schema
