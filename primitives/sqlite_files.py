"""Opening a SQLite file only to read it."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_read_only(path: Path | str) -> sqlite3.Connection:
    """The SQLite file at ``path``, opened read-only (``mode=ro``). The path goes as a
    percent-encoded URI: spelled ``file:{path}``, a ``?`` or ``#`` in a directory's name
    would end the path there."""
    return sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True)
