"""A table ``[database] exclude`` leaves out of the backups is still in every full backup's
copy of the SQLite file, with its rows as they were at that instant. A restore handed those
back as if current (found: a lock table hours behind the others, with exit 0 and no word);
it now gives the table back empty, its schema intact, and says so."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from restore.planner import Target, plan_restore
from restore.sqlite.replay import restore_sqlite
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore

SCHEMA = """
CREATE TABLE trades (id INTEGER PRIMARY KEY, pair TEXT);
CREATE TABLE pairlocks (id INTEGER PRIMARY KEY, pair TEXT, until TEXT);
CREATE VIEW locked AS SELECT t.pair FROM trades t JOIN pairlocks l ON l.pair = t.pair;
CREATE VIRTUAL TABLE zones USING rtree(id, low, high);
INSERT INTO trades (pair) VALUES ('BTC/USDT');
INSERT INTO pairlocks (pair, until) VALUES ('BTC/USDT', '2026-12-01');
INSERT INTO zones VALUES (1, 0.5, 1.5);
"""


def _backed_up(tmp_path: Path) -> tuple[Path, BackupStore]:
    path = tmp_path / "bot.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA)
    store = BackupStore("bot", [open_location("local", f"file://{tmp_path / 'backups'}")])
    engine = BackupEngine(DatabaseService(f"sqlite:///{path}", exclude=["pairlocks", "zones"]), store)
    engine.full()
    with sqlite3.connect(path) as conn:
        conn.executescript("DELETE FROM pairlocks; INSERT INTO trades (pair) VALUES ('ETH/USDT');"
                           "INSERT INTO zones VALUES (2, 1, 2);")
    engine.incremental()
    return path, store


def test_an_excluded_table_comes_back_empty_with_its_schema_and_a_note(tmp_path):
    _, store = _backed_up(tmp_path)
    restored = tmp_path / "restored.sqlite"
    result = restore_sqlite(store, plan_restore(store.entries(), Target()), DatabaseService(f"sqlite:///{restored}"))
    assert result.notes == [
        "table pairlocks: left out of the backups ([database] exclude), restored empty: the full backup's 1 row(s)"
        " of it would be stale",
        "table zones: left out of the backups ([database] exclude), restored empty: the full backup's 1 row(s)"
        " of it would be stale"]
    with sqlite3.connect(restored) as conn:
        assert conn.execute("SELECT pair FROM trades ORDER BY id").fetchall() == [("BTC/USDT",), ("ETH/USDT",)]
        assert conn.execute("SELECT count(*) FROM pairlocks").fetchone()[0] == 0
        assert conn.execute("SELECT * FROM locked").fetchall() == []  # the view over it still works
        assert conn.execute("SELECT count(*) FROM zones").fetchone()[0] == 0
        conn.execute("INSERT INTO pairlocks (pair, until) VALUES ('SOL/USDT', '2026-12-05')")  # the bot writes on


def test_the_command_says_what_it_left_out(tmp_path):
    path, _ = _backed_up(tmp_path)
    (tmp_path / "tradevault.toml").write_text(
        f'[database]\nurl = "sqlite:///{path}"\nname = "bot"\nexclude = ["pairlocks", "zones"]\n\n'
        f'[[locations]]\nname = "local"\nurl = "file://{tmp_path / "backups"}"\n\n[config_vcs]\npaths = []\n')
    done = subprocess.run([sys.executable, "-m", "tradevault.cli", "restore", "--to",
                           f"sqlite:///{tmp_path / 'r.sqlite'}", "-c", str(tmp_path / "tradevault.toml")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "left out or changed (2 decision(s)):" in done.stdout
    assert "mapped to the other dialect" not in done.stdout
