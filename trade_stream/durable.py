"""fsync helpers: a rename is durable only once the file and its directory are synced."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Iterator


def fsync_path(path: Path) -> None:
    """fsync a file or a directory by path."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
