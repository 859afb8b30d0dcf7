"""A table ``[database] exclude`` leaves out of the backups was still in every full backup's
copy of the SQLite file, with its rows as they were at that instant. A restore handed those
back as if current (found: a lock table hours behind the others, with exit 0 and no word).
The full backup now empties it in its copy (without firing its triggers), and a restore
gives it back empty, its schema intact, and says so."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from restore.planner import Target, plan_restore
from restore.sqlite.replay import restore_sqlite
from trade_stream.progress import no_progress
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import decompress_full

SCHEMA = """
CREATE TABLE trades (id INTEGER PRIMARY KEY, pair TEXT);
CREATE TABLE pairlocks (id INTEGER PRIMARY KEY, pair TEXT, until TEXT);
CREATE VIEW locked AS SELECT t.pair FROM trades t JOIN pairlocks l ON l.pair = t.pair;
CREATE TRIGGER unlocked AFTER DELETE ON pairlocks BEGIN INSERT INTO trades (pair) VALUES ('unlocked'); END;
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
    source, store = _backed_up(tmp_path)
    restored = tmp_path / "restored.sqlite"
    result = restore_sqlite(store, plan_restore(store.entries(), Target()), DatabaseService(f"sqlite:///{restored}"))
    assert result.notes == ["table pairlocks: left out of the backups ([database] exclude), restored empty",
                            "table zones: left out of the backups ([database] exclude), restored empty"]
    with sqlite3.connect(restored) as conn:
        rows = "SELECT pair FROM trades ORDER BY id"
        with sqlite3.connect(source) as bot:  # the bot's own trigger fired there once: its row came along
            assert conn.execute(rows).fetchall() == bot.execute(rows).fetchall() == [
                ("BTC/USDT",), ("unlocked",), ("ETH/USDT",)]
        assert conn.execute("SELECT count(*) FROM pairlocks").fetchone()[0] == 0
        assert conn.execute("SELECT * FROM locked").fetchall() == []  # the view over it still works
        assert conn.execute("SELECT count(*) FROM zones").fetchone()[0] == 0
        conn.execute("INSERT INTO pairlocks (pair, until) VALUES ('SOL/USDT', '2026-12-05')")  # the bot writes on
        assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall() == [("unlocked",)]


def test_the_full_backup_stores_none_of_their_rows(tmp_path):
    _, store = _backed_up(tmp_path)
    snapshot = tmp_path / "snapshot.sqlite"
    decompress_full(store, store.entries()[0], snapshot, no_progress)  # the stored copy itself
    with sqlite3.connect(snapshot) as conn:  # emptied without firing the trigger 'unlocked'
        assert conn.execute("SELECT pair FROM trades").fetchall() == [("BTC/USDT",)]
        assert conn.execute("SELECT count(*) FROM pairlocks").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM zones").fetchone()[0] == 0


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
