"""A SQLite database another connection keeps locked (a bot that sets ``PRAGMA
locking_mode = EXCLUSIVE`` holds its lock for as long as it runs) is reported as locked,
a failure to try again (exit 1), not as "not a SQLite database" (bad input)."""

from __future__ import annotations

import sqlite3

import pytest

from trade_stream.errors import BadInputError, DatabaseBusy
from trade_stream.sqlite.database import DatabaseService


def test_a_database_locked_by_the_bot_is_reported_as_locked(tmp_path):
    path = tmp_path / "bot.sqlite"
    bot = sqlite3.connect(path, isolation_level=None)
    bot.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    bot.execute("PRAGMA locking_mode = EXCLUSIVE")
    bot.execute("INSERT INTO t VALUES (1)")  # takes the lock, and keeps it
    with pytest.raises(DatabaseBusy, match="locked.*0.2 s tradevault waited.*locking_mode = EXCLUSIVE") as caught:
        DatabaseService(f"sqlite:///{path}").require_exists(timeout=0.2)
    assert caught.value.exit_code == 1 and "not a SQLite database" not in str(caught.value)
    bot.close()
    DatabaseService(f"sqlite:///{path}").require_exists(timeout=0.2)  # free again: readable


def test_a_file_that_is_no_database_is_still_bad_input(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"these are not the pages of a database" * 100)
    with pytest.raises(BadInputError, match="not a SQLite database"):
        DatabaseService(f"sqlite:///{path}").require_exists(timeout=0.2)
