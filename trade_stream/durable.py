"""fsync helpers: a rename is durable only once the file and its directory are synced."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator


def fsync_path(path: Path) -> None:
    """fsync a file or a directory by path."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` at ``path`` whole or not at all: a temporary name, fsync, rename, and the
    directory synced."""
    temp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_path(path.parent)


_SYNC_FILE_RANGE_WRITE = 2


@functools.cache  # ctypes costs ~12 ms to import: only a command that writes big files pays
def _sync_file_range() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return call


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a just-written range to disk, without waiting: a
    large file written fast would otherwise sit in the page cache and the fsync that makes
    it durable would wait for all of it at the end (Linux; elsewhere a no-op)."""
    call = _sync_file_range()
    if call is not None:
        call(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # errors only mean no head start


@contextlib.contextmanager
def replacing_sqlite_file(final: Path) -> Iterator[Path]:
    """Build a SQLite database in a hidden temporary file next to ``final``; when the block
    succeeds it is fsynced and renamed over ``final`` (stale -wal/-shm/-journal files of the
    old one removed first). On any failure ``final`` is left untouched."""
    final = final.absolute()
    temp = final.with_name(f".{final.name}.tradevault-restore-{uuid.uuid4().hex[:8]}")
    try:
        yield temp
        fsync_path(temp)
        for suffix in ("-wal", "-shm", "-journal"):
            Path(str(final) + suffix).unlink(missing_ok=True)
        os.replace(temp, final)
        fsync_path(final.parent)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(temp) + suffix).unlink(missing_ok=True)
