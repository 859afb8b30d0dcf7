"""An exclusive ``flock`` on a file, waited for with a deadline: one writer across
processes (two backups of one source, two commits to one repository)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Callable, Iterator


@contextlib.contextmanager
def exclusive_lock(path: Path, timeout: float, busy: Callable[[], Exception], poll: float = 0.1) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created 0600) for the block; raises ``busy()``
    when another process still holds it after ``timeout`` seconds. The lock goes with the
    descriptor, so a killed holder never leaves it behind."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise busy() from None
                time.sleep(poll)
        yield
    finally:
        os.close(fd)
