"""PostgreSQL tables without a primary key: captured by their whole old row (REPLICA
IDENTITY FULL, set by the first full backup or when such a table appears), restored as the
same multiset into PostgreSQL and into SQLite; a role that may not set it gets a one-line
error naming the statement to run, and nothing is changed."""

from __future__ import annotations

import sqlite3
from collections import Counter

import pytest

from restore.dispatch import restore_to
from restore.planner import Target, plan_restore
from tests.postgres.pg_helpers import connect, digest, engine, execute, make_store, restore
from trade_stream.errors import BadInputError

pytestmark = pytest.mark.xdist_group("postgres")


def _rows(url: str, table: str) -> Counter:
    conn = connect(url)
    try:
        return Counter(conn.execute(f"SELECT * FROM {table}").fetchall())
    finally:
        conn.close()


def test_a_keyless_table_with_duplicates_restores_as_the_same_multiset(pg, work_dir, tmp_path):
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE trades (id int PRIMARY KEY, amount numeric(20,8))",
            "CREATE TABLE log (ts int, msg text, price float8, doc jsonb)",
            "INSERT INTO trades VALUES (1, 0.5), (2, 1.25)",
            "INSERT INTO log SELECT i % 5, 'tick', -0.0, '{\"a\": 1}' FROM generate_series(1, 50) i")
    store = make_store(work_dir)
    full = engine(src, store).full()
    assert full.tables == {"trades": 2, "log": 50}
    conn = connect(src)
    try:
        assert conn.execute("SELECT relreplident FROM pg_class WHERE relname = 'log'").fetchone()[0] == "f"
    finally:
        conn.close()
    execute(src,
            "DELETE FROM log WHERE ctid IN (SELECT ctid FROM log WHERE ts = 3 LIMIT 4)",  # 4 of 10 twins
            "UPDATE log SET msg = 'tock' WHERE ctid IN (SELECT ctid FROM log WHERE ts = 1 LIMIT 2)",
            "INSERT INTO log VALUES (NULL, NULL, NULL, NULL), (NULL, NULL, NULL, NULL)",
            "DELETE FROM log WHERE ctid = (SELECT ctid FROM log WHERE ts IS NULL LIMIT 1)",
            "CREATE TABLE orders_bak0 AS SELECT * FROM trades")  # a migration's keyless copy, later
    engine(src, store).incremental()
    execute(src, "INSERT INTO orders_bak0 VALUES (1, 0.5)", "DELETE FROM orders_bak0 WHERE id = 2")
    engine(src, store).incremental()
    restore(store, dst)
    tables = {"trades": ["id"], "log": [], "orders_bak0": []}
    assert digest(dst, tables) == digest(src, tables)
    assert _rows(dst, "log") == _rows(src, "log") and sum(_rows(dst, "log").values()) == 50 - 4 + 2 - 1
    target = tmp_path / "restored.sqlite"
    restore_to(store, plan_restore(store.entries(), Target()), f"sqlite:///{target}")
    lite = sqlite3.connect(target)
    try:
        assert Counter(lite.execute("SELECT id FROM orders_bak0").fetchall()) == Counter([(1,), (1,)])
        assert lite.execute("SELECT count(*) FROM log").fetchone()[0] == 47
    finally:
        lite.close()


def test_a_role_that_may_not_set_the_replica_identity_gets_the_statement_and_nothing_changes(pg, work_dir):
    src = pg.new("src")
    execute(src, "CREATE TABLE log (msg text)", "CREATE ROLE tv_backup LOGIN REPLICATION",
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO tv_backup", "GRANT CREATE ON SCHEMA public TO tv_backup")
    store = make_store(work_dir)
    url = src.replace("postgres@", "tv_backup@")
    try:
        with pytest.raises(BadInputError, match=r'ALTER TABLE "log" REPLICA IDENTITY FULL'):
            engine(url, store).full()
        assert store.entries() == []
        conn = connect(src)
        try:
            assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0] == 0
            assert conn.execute("SELECT relreplident FROM pg_class WHERE relname = 'log'").fetchone()[0] == "d"
        finally:
            conn.close()
    finally:
        execute(src, "DROP OWNED BY tv_backup", "DROP ROLE tv_backup")


def test_a_table_whose_identity_is_a_unique_index_is_refused_with_the_statement(pg, work_dir):
    """The user chose that identity (for a subscriber of their own, say): tradevault does
    not overrule it, and says what it needs before anything changes."""
    src = pg.new("src")
    execute(src, "CREATE TABLE t (id int NOT NULL, v text)", "CREATE UNIQUE INDEX t_id ON t (id)",
            "ALTER TABLE t REPLICA IDENTITY USING INDEX t_id")
    store = make_store(work_dir)
    with pytest.raises(BadInputError, match=r'REPLICA IDENTITY is an index, .*ALTER TABLE "t" REPLICA IDENTITY FULL'):
        engine(src, store).full()
    assert store.entries() == []
    assert connect(src).execute("SELECT relreplident FROM pg_class WHERE relname = 't'").fetchone()[0] == "i"


def test_a_column_dropped_from_a_keyless_table_does_not_stop_the_capture(pg, work_dir):
    """Its updates' old rows no longer have the known columns, so they cannot name their
    row. Every incremental failed on them ("carries no old row"), the same changes read
    again each time: the capture had stopped for good. They are now left out, said, and
    the table's resynchronisation gives its rows back."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE log (n int, gone text, msg text)", "INSERT INTO log VALUES (1, 'g', 'a'), (2, 'g', 'b')")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "ALTER TABLE log DROP COLUMN gone", "UPDATE log SET msg = 'z' WHERE n = 1",
            "DELETE FROM log WHERE n = 2", "INSERT INTO log VALUES (3, 'c')")
    warnings = engine(src, store).incremental().warnings
    assert any("table 'log' changed its columns: 2 change(s) of it" in w for w in warnings), warnings
    execute(src, "UPDATE log SET msg = 'y' WHERE n = 3")
    assert engine(src, store).incremental().warnings == []  # the capture goes on
    restore(store, dst)
    query = "SELECT n, msg FROM log ORDER BY n"
    assert connect(dst).execute(query).fetchall() == connect(src).execute(query).fetchall() == [(1, "z"), (3, "y")]
