"""Every table is captured, with or without a primary key, and the restore equals the
source: a keyless table by its whole row (duplicate rows stay a multiset), tables created
after the full backup, an application's migration that renames and rebuilds a table under
capture, a VACUUM between incrementals, and random operations against a model."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from restore.planner import Target, plan_restore
from restore.sqlite.replay import restore_sqlite
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.sqlite.digest import database_digest
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore


class Db:
    """A source database the way an application writes it, with its backups."""

    def __init__(self, root: Path, schema: str) -> None:
        self.root = root
        self.path = root / "app.sqlite"
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.executescript(schema)
        self.store = BackupStore("app", [open_location("one", f"file://{root / 'loc'}")])
        self.engine = BackupEngine(DatabaseService(f"sqlite:///{self.path}"), self.store)
        self.restores = 0

    def sql(self, statement: str, *params: object) -> list[tuple]:
        return self.conn.execute(statement, params).fetchall()

    def tables(self, conn: sqlite3.Connection) -> dict[str, list[str]]:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_tradevault%'"
            " AND name NOT LIKE 'sqlite_%'")]
        return {n: [r[1] for r in sorted((r for r in conn.execute(f'PRAGMA table_info("{n}")') if r[5]),
                                         key=lambda r: r[5])] for n in names}

    def restore(self, target: Target | None = None) -> Path:
        self.restores += 1
        path = self.root / f"restored{self.restores}.sqlite"
        restore_sqlite(self.store, plan_restore(self.store.entries(), target or Target()),
                       DatabaseService(f"sqlite:///{path}"))
        return path

    def assert_restore_equals_source(self) -> None:
        restored = sqlite3.connect(self.restore())
        try:
            assert self.tables(restored) == self.tables(self.conn)
            assert database_digest(restored, self.tables(restored)) == database_digest(self.conn,
                                                                                       self.tables(self.conn))
        finally:
            restored.close()


LOG_SCHEMA = """
CREATE TABLE trades (id INTEGER PRIMARY KEY, pair TEXT NOT NULL, amount REAL);
CREATE TABLE log (ts INTEGER, msg TEXT);
"""


def test_a_keyless_table_with_duplicates_restores_as_the_same_multiset(tmp_path):
    db = Db(tmp_path, LOG_SCHEMA)
    for i in range(100):
        db.sql("INSERT INTO log VALUES (?, ?)", i % 10, "tick")  # every row ten times over
    db.engine.full()
    db.sql("DELETE FROM log WHERE rowid IN (SELECT rowid FROM log WHERE ts = 3 LIMIT 4)")  # 4 of 10 twins
    db.sql("UPDATE log SET msg = 'tock' WHERE rowid IN (SELECT rowid FROM log WHERE ts = 5 LIMIT 2)")
    db.sql("INSERT INTO log VALUES (NULL, NULL), (NULL, NULL)")
    db.sql("DELETE FROM log WHERE ts IS NULL AND rowid = (SELECT min(rowid) FROM log WHERE ts IS NULL)")
    result = db.engine.incremental()
    assert result.count == 4 + 2 + 2 + 1
    db.assert_restore_equals_source()
    restored = sqlite3.connect(db.restore())
    counts = Counter(restored.execute("SELECT ts, msg FROM log").fetchall())
    assert counts[(3, "tick")] == 6 and counts[(5, "tock")] == 2 and counts[(5, "tick")] == 8
    assert counts[(None, None)] == 1 and sum(counts.values()) == 100 - 4 + 2 - 1


def test_keyless_tables_created_after_the_full_backup_are_followed(tmp_path):
    db = Db(tmp_path, LOG_SCHEMA)
    db.sql("INSERT INTO trades VALUES (1, 'BTC/USDT', 0.5), (2, 'ETH/USDT', 3.0)")
    db.engine.full()
    db.sql("CREATE TABLE orders_bak0 AS SELECT * FROM trades")  # a migration's keyless copy
    db.sql("INSERT INTO orders_bak0 VALUES (1, 'BTC/USDT', 0.5)")  # a duplicate
    db.engine.incremental()
    db.sql("DELETE FROM orders_bak0 WHERE rowid = 3")
    db.engine.incremental()
    db.assert_restore_equals_source()


def test_a_migration_that_renames_and_rebuilds_a_table_under_capture(tmp_path):
    """The way ORMs' migrations change a SQLite table: rename it, create the new one under
    the old name, copy the rows across, drop the old one; the bot writes before and after."""
    db = Db(tmp_path, LOG_SCHEMA)
    for i in range(1, 51):
        db.sql("INSERT INTO trades VALUES (?, ?, ?)", i, "BTC/USDT", i / 10)
    db.engine.full()
    db.sql("UPDATE trades SET amount = 99.5 WHERE id = 7")
    db.conn.executescript("""
        BEGIN;
        ALTER TABLE trades RENAME TO _trades_old;
        CREATE TABLE trades (id INTEGER PRIMARY KEY, pair TEXT NOT NULL, amount REAL, fee REAL DEFAULT 0.001);
        INSERT INTO trades (id, pair, amount) SELECT id, pair, amount FROM _trades_old;
        DROP TABLE _trades_old;
        COMMIT;
    """)
    db.sql("INSERT INTO trades (id, pair, amount) VALUES (51, 'ETH/USDT', 1.25)")  # before the next sync
    db.sql("UPDATE trades SET fee = 0.002 WHERE id = 3")
    db.engine.incremental()
    db.sql("DELETE FROM trades WHERE id = 10")
    db.engine.incremental()
    db.assert_restore_equals_source()


def test_vacuum_between_incrementals_keeps_keyless_replay_exact(tmp_path):
    db = Db(tmp_path, LOG_SCHEMA)
    for i in range(200):
        db.sql("INSERT INTO log VALUES (?, ?)", i % 7, f"m{i % 3}")
    db.engine.full()
    db.sql("DELETE FROM log WHERE ts = 2")
    db.engine.incremental()
    db.sql("VACUUM")  # renumbers the rowids of a table without INTEGER PRIMARY KEY
    db.sql("DELETE FROM log WHERE rowid IN (SELECT rowid FROM log WHERE ts = 4 LIMIT 5)")
    db.sql("UPDATE log SET ts = 40 WHERE rowid IN (SELECT rowid FROM log WHERE ts = 5 LIMIT 3)")
    db.engine.incremental()
    db.assert_restore_equals_source()


OPS = st.lists(st.tuples(st.sampled_from(["insert", "delete", "update"]), st.integers(0, 4), st.integers(0, 4)),
               min_size=1, max_size=60)


@settings(max_examples=25, deadline=None)
@given(batches=st.lists(OPS, min_size=1, max_size=4), seed=st.integers(0, 1000))
def test_random_operations_on_a_keyless_table_match_a_model(tmp_path_factory, batches, seed):
    """Inserts, deletes and updates of one of several equal rows, in several incrementals,
    against a Counter model of the multiset; the restore holds exactly the model's rows."""
    db = Db(tmp_path_factory.mktemp("keyless"), "CREATE TABLE t (a INTEGER, b TEXT);")
    rng = random.Random(seed)
    model: Counter = Counter()
    db.engine.full()
    for batch in batches:
        for op, a, b in batch:
            row = (a, f"v{b}")
            if op == "insert" or not model[row]:
                db.sql("INSERT INTO t VALUES (?, ?)", *row)
                model[row] += 1
            elif op == "delete":
                db.sql("DELETE FROM t WHERE rowid = (SELECT rowid FROM t WHERE a = ? AND b = ? LIMIT 1 OFFSET ?)",
                       *row, rng.randrange(model[row]))
                model[row] -= 1
            else:
                new = (a, f"v{(b + 1) % 5}")
                db.sql("UPDATE t SET b = ? WHERE rowid = (SELECT rowid FROM t WHERE a = ? AND b = ? LIMIT 1)",
                       new[1], *row)
                model[row] -= 1
                model[new] += 1
        db.engine.incremental()
    restored = sqlite3.connect(db.restore())
    try:
        assert Counter(restored.execute("SELECT a, b FROM t").fetchall()) == +model
    finally:
        restored.close()
        db.conn.close()
