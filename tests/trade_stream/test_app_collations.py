"""A SQLite table that orders by a collation the application registers itself
(``create_collation``): tradevault's process does not have it. The full backup installed
capture, then failed on every try with "no such collation sequence" (exit 1, so the agent
retried forever), and a restore could not have put replayed rows into the index in the
application's order. It is now bad input before anything is installed."""

from __future__ import annotations

import sqlite3

import pytest

from trade_stream.errors import BadInputError
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore


def _database(tmp_path, ddl: str):
    path = tmp_path / "bot.sqlite"
    conn = sqlite3.connect(path)
    conn.create_collation("natsort", lambda a, b: (a > b) - (a < b))
    conn.executescript(ddl)
    conn.close()
    store = BackupStore("bot", [open_location("local", f"file://{tmp_path / 'backups'}")])
    return path, store


def test_a_collation_only_the_application_has_is_refused_before_capture_is_installed(tmp_path):
    path, store = _database(tmp_path, "CREATE TABLE pairs (id INTEGER PRIMARY KEY, name TEXT COLLATE natsort);"
                                      "CREATE INDEX ix_pairs_name ON pairs (name); CREATE TABLE t (id INTEGER);"
                                      "INSERT INTO pairs (name) VALUES ('a10'), ('a9');")
    with pytest.raises(BadInputError, match=r"table 'pairs' orders by collation 'natsort'.*exclude = \[\"pairs\"\]"):
        BackupEngine(DatabaseService(f"sqlite:///{path}"), store).full()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE '_tradevault%'").fetchone()[0] == 0
    assert BackupEngine(DatabaseService(f"sqlite:///{path}", exclude=["pairs"]), store).full().tables == {"t": 0}


def test_built_in_collations_and_the_word_in_a_literal_are_fine(tmp_path):
    path, store = _database(tmp_path, "CREATE TABLE pairs (id INTEGER PRIMARY KEY, name TEXT COLLATE NOCASE,"
                                      " code TEXT COLLATE \"RTRIM\", note TEXT DEFAULT 'COLLATE natsort');"
                                      "CREATE INDEX ix ON pairs (name COLLATE BINARY, code);"
                                      "INSERT INTO pairs (name, code) VALUES ('A', 'x ');")
    assert BackupEngine(DatabaseService(f"sqlite:///{path}"), store).full().tables == {"pairs": 1}
