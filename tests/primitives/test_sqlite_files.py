"""primitives/sqlite_files.py: a SQLite file opened only to read it, wherever it lives."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from primitives.sqlite_files import open_read_only


@pytest.mark.parametrize("directory", ["plain", "what?", "hash#tag", "per%cent", "sp ace"])
def test_a_file_is_read_whatever_its_directory_is_called(tmp_path: Path, directory: str) -> None:
    path = tmp_path / directory / "bot.sqlite"
    path.parent.mkdir()
    writer = sqlite3.connect(path)
    writer.execute("CREATE TABLE t (v)")
    writer.execute("INSERT INTO t VALUES (42)")
    writer.commit()
    writer.close()
    conn = open_read_only(path)
    try:
        assert conn.execute("SELECT v FROM t").fetchone() == (42,)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("INSERT INTO t VALUES (1)")
    finally:
        conn.close()


def test_a_missing_file_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        open_read_only(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()
