"""Two SQLite databases backed up under one source name to one location (a config copied
from one bot to the next, ``name = "bot"`` in both). The second full backup silently became
the chain's newest, a restore with the first bot's config gave the second bot's rows, and
the first bot's next incremental said "change capture was reinstalled since the last
backup", which was not so. Now the full backup warns and the incremental says what
happened; both name the two databases."""

from __future__ import annotations

import sqlite3

import pytest

from restore.planner import Target, plan_restore
from restore.sqlite.replay import restore_sqlite
from trade_stream.errors import BadInputError
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore


def _bot(path, pair: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE trades (id INTEGER PRIMARY KEY, pair TEXT)")
    conn.execute("INSERT INTO trades VALUES (1, ?)", (pair,))
    conn.commit()
    conn.close()


def test_two_databases_under_one_source_name_are_named(tmp_path):
    live, dry = tmp_path / "live.sqlite", tmp_path / "dry.sqlite"
    _bot(live, "BTC")
    _bot(dry, "ETH")
    store = BackupStore("bot", [open_location("one", f"file://{tmp_path / 'loc'}")])
    assert BackupEngine(DatabaseService(f"sqlite:///{live}"), store).full().warnings == []
    second = BackupEngine(DatabaseService(f"sqlite:///{dry}"), store).full()
    assert any(f"is of database {live}, not this one ({dry}): if both are in use" in w for w in second.warnings)
    with sqlite3.connect(live) as conn:
        conn.execute("INSERT INTO trades VALUES (2, 'SOL')")
    with pytest.raises(BadInputError, match=f"is of database {dry}, not this one \\({live}\\)"):
        BackupEngine(DatabaseService(f"sqlite:///{live}"), store).incremental()
    again = BackupEngine(DatabaseService(f"sqlite:///{dry}"), store)
    with sqlite3.connect(dry) as conn:
        conn.execute("INSERT INTO trades VALUES (2, 'ADA')")
    assert again.incremental().count == 1  # the chain's own database goes on
    assert again.full().warnings == []  # and its next full backup is of the same database
    out = tmp_path / "restored.sqlite"
    restore_sqlite(store, plan_restore(store.entries(), Target()), DatabaseService(f"sqlite:///{out}"))
    with sqlite3.connect(out) as conn:
        assert conn.execute("SELECT pair FROM trades ORDER BY id").fetchall() == [("ETH",), ("ADA",)]


def test_a_newest_full_backup_no_copy_of_which_reads_does_not_stop_the_next(tmp_path):
    path = tmp_path / "live.sqlite"
    _bot(path, "BTC")
    store = BackupStore("bot", [open_location("one", f"file://{tmp_path / 'loc'}")])
    engine = BackupEngine(DatabaseService(f"sqlite:///{path}"), store)
    engine.full()
    (tmp_path / "loc" / "bot" / store.entries()[-1].object).write_bytes(b"damaged")
    assert engine.full().n == 2
