"""SQLite virtual tables: full-text search the way an application sets it up (an FTS5 index
over its trades kept by triggers, the pattern SQLite's docs give, and an FTS5 table holding
its own notes). Before: every backup failed ("cannot create triggers on virtual tables");
and capture triggers on FTS5 shadow tables crashed the bot's process on its next insert
(SQLite 3.40.1, a segmentation fault). Now the bot keeps writing, the rows are captured
through the content tables, and a restore gives back indexes that answer the same queries.
A virtual table whose rows no trigger can see (R*Tree) is refused, naming it, until
excluded."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from restore.planner import Target, plan_restore
from restore.query import run_query
from restore.sqlite.replay import restore_sqlite
from restore.standby import Follower
from trade_stream.errors import BadInputError
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.sqlite.source import SqliteSource
from trade_stream.sqlite.virtual_tables import describe
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore

MIGRATION = """
CREATE TABLE trades (id INTEGER PRIMARY KEY, pair TEXT NOT NULL, note TEXT);
CREATE VIRTUAL TABLE trades_fts USING fts5(note, content='trades', content_rowid='id');
CREATE TRIGGER trades_ai AFTER INSERT ON trades BEGIN
  INSERT INTO trades_fts(rowid, note) VALUES (new.id, new.note);
END;
CREATE TRIGGER trades_ad AFTER DELETE ON trades BEGIN
  INSERT INTO trades_fts(trades_fts, rowid, note) VALUES ('delete', old.id, old.note);
END;
CREATE TRIGGER trades_au AFTER UPDATE ON trades BEGIN
  INSERT INTO trades_fts(trades_fts, rowid, note) VALUES ('delete', old.id, old.note);
  INSERT INTO trades_fts(rowid, note) VALUES (new.id, new.note);
END;
CREATE VIRTUAL TABLE journal USING fts5(title, body);
INSERT INTO trades (pair, note) VALUES ('BTC/USDT', 'breakout long'), ('ETH/USDT', 'mean reversion');
INSERT INTO journal VALUES ('plan', 'buy the dip'), ('risk', 'stop loss always');
"""

QUERIES = ["SELECT rowid FROM trades_fts WHERE trades_fts MATCH 'scalp OR breakout' ORDER BY rowid",
           "SELECT title, body FROM journal WHERE journal MATCH 'loss OR dip' ORDER BY rowid",
           "SELECT title FROM journal WHERE journal MATCH 'title:risk'"]


def _bot(path: Path, *statements: str) -> None:
    """The bot's writes, in a process of its own (a crash is a return code, not the test's)."""
    code = ("import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\n"
            "for s in sys.argv[2:]:\n    c.execute(s)\nc.commit()\n")
    done = subprocess.run([sys.executable, "-c", code, str(path), *statements], capture_output=True, text=True)
    assert done.returncode == 0, (done.returncode, done.stderr)


def _answers(path: Path) -> list[list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        for index in ("trades_fts", "journal"):
            conn.execute(f"INSERT INTO {index}({index}) VALUES ('integrity-check')")  # index matches content
        return [conn.execute(query).fetchall() for query in QUERIES]
    finally:
        conn.close()


def _setup(tmp_path: Path, exclude: list[str] | None = None) -> tuple[Path, BackupEngine, BackupStore]:
    path = tmp_path / "bot.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(MIGRATION)
    store = BackupStore("bot", [open_location("local", f"file://{tmp_path / 'backups'}")])
    return path, BackupEngine(DatabaseService(f"sqlite:///{path}", exclude=exclude), store), store


def _restore(store: BackupStore, path: Path) -> list[str]:
    return restore_sqlite(store, plan_restore(store.entries(), Target()), DatabaseService(f"sqlite:///{path}")).notes


def test_full_text_indexes_come_back_answering_the_same_queries_and_the_bot_keeps_writing(tmp_path):
    path, engine, store = _setup(tmp_path)
    full = engine.full()
    assert full.tables == {"journal_content": 2, "trades": 2}  # an index over trades holds nothing of its own
    _bot(path, "INSERT INTO trades (pair, note) VALUES ('SOL/USDT', 'scalp quick')",
         "UPDATE trades SET note = 'breakout short' WHERE id = 1", "DELETE FROM trades WHERE id = 2",
         "INSERT INTO journal VALUES ('exit', 'scalp out at loss')", "DELETE FROM journal WHERE title = 'plan'",
         "UPDATE journal SET body = 'stop loss mostly' WHERE title = 'risk'")
    engine.incremental()
    restored = tmp_path / "restored.sqlite"
    _restore(store, restored)
    assert _answers(restored) == _answers(path)
    assert _answers(restored)[0] == [(1,), (3,)]

    assert run_query(restored, QUERIES[1]).rows == _answers(path)[1]  # `tradevault query` searches too

    # the bot goes on with the restored file: its triggers keep the index current
    _bot(restored, "INSERT INTO trades (pair, note) VALUES ('ADA/USDT', 'another scalp')")
    with sqlite3.connect(restored) as conn:
        assert conn.execute("SELECT rowid FROM trades_fts WHERE trades_fts MATCH 'scalp'").fetchall() == [(3,), (4,)]


def test_a_full_text_table_created_or_dropped_after_the_full_backup_follows(tmp_path):
    path, engine, store = _setup(tmp_path)
    engine.full()
    _bot(path, "CREATE VIRTUAL TABLE ideas USING fts5(text)", "INSERT INTO ideas VALUES ('grid bot on range')",
         "DROP TABLE journal")
    engine.incremental()
    _bot(path, "INSERT INTO ideas VALUES ('funding arbitrage')")
    engine.incremental()
    restored = tmp_path / "restored.sqlite"
    _restore(store, restored)
    with sqlite3.connect(restored) as conn:
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "journal" not in names and "journal_content" not in names
        assert conn.execute("SELECT text FROM ideas WHERE ideas MATCH 'arbitrage OR grid' ORDER BY rowid").fetchall() \
            == [("grid bot on range",), ("funding arbitrage",)]
        conn.execute("INSERT INTO ideas(ideas) VALUES ('integrity-check')")


def test_a_virtual_table_no_trigger_can_watch_is_refused_until_excluded(tmp_path):
    path, engine, store = _setup(tmp_path)
    _bot(path, "CREATE VIRTUAL TABLE zones USING rtree(id, low, high)", "INSERT INTO zones VALUES (1, 0.5, 1.5)")
    with pytest.raises(BadInputError, match=r"table 'zones' is a virtual table \(rtree\).*exclude = \[\"zones\"\]"):
        engine.full()
    with sqlite3.connect(path) as conn:  # nothing installed
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE '_tradevault_%'").fetchone()[0] == 0
    assert store.entries() == []
    engine = BackupEngine(DatabaseService(f"sqlite:///{path}", exclude=["zones"]), store)
    assert "zones" not in engine.full().tables
    status = SqliteSource(f"sqlite:///{path}", exclude=["zones"]).capture_status(store, store.entries())
    assert status["unprotected"] == ["zones"]  # left out, and shown as such
    _bot(path, "INSERT INTO zones VALUES (2, 1, 2)", "INSERT INTO journal VALUES ('x', 'still captured')")
    assert engine.incremental().count == 1


def test_an_excluded_full_text_table_comes_back_empty_not_stale(tmp_path):
    """Its content table is a shadow table: the emptying once spared it as such."""
    path, engine, store = _setup(tmp_path, exclude=["journal"])
    assert "journal_content" not in engine.full().tables
    _bot(path, "INSERT INTO journal VALUES ('exit', 'scalp out')", "INSERT INTO trades (pair) VALUES ('SOL')")
    engine.incremental()
    restored = tmp_path / "restored.sqlite"
    assert "table journal: left out of the backups ([database] exclude), restored empty" in _restore(store, restored)
    with sqlite3.connect(restored) as conn:
        assert conn.execute("SELECT count(*) FROM journal").fetchone()[0] == 0
        conn.execute("INSERT INTO journal(journal) VALUES ('integrity-check')")
        assert conn.execute("SELECT count(*) FROM trades").fetchone()[0] == 3


def test_a_standby_keeps_its_full_text_indexes_current(tmp_path):
    path, engine, store = _setup(tmp_path)
    engine.full()
    standby = DatabaseService(f"sqlite:///{tmp_path / 'standby.sqlite'}")
    follower = Follower(store, standby)
    follower.sync_once()
    _bot(path, "INSERT INTO trades (pair, note) VALUES ('SOL/USDT', 'scalp quick')",
         "INSERT INTO journal VALUES ('exit', 'scalp out at loss')")
    engine.incremental()
    assert follower.sync_once().applied > 0
    assert _answers(tmp_path / "standby.sqlite") == _answers(path)


@pytest.mark.parametrize("ddl, content, rebuilt", [
    ("CREATE VIRTUAL TABLE j USING fts5(title, body)", "j_content", True),
    ("CREATE VIRTUAL TABLE j USING FTS5(note, content='trades', content_rowid='id')", None, True),
    ('CREATE VIRTUAL TABLE j USING fts5(a, content="")', None, False),  # contentless: nothing to capture
    ("CREATE VIRTUAL TABLE j USING fts4(a, b, tokenize=porter)", "j_content", True),
    ("CREATE VIRTUAL TABLE j USING fts3(a)", "j_content", True),
    ("CREATE VIRTUAL TABLE j USING rtree(id, low, high)", None, False),
])
def test_what_is_captured_of_a_virtual_table_follows_from_its_statement(ddl, content, rebuilt):
    table = describe("j", ddl, {"j_content", "trades"})
    assert (table.content, table.rebuilt) == (content, rebuilt)
