"""A column whose type changes between two incrementals (an application's migration:
``ALTER TABLE ... ALTER COLUMN ... TYPE``). The changes after it carry values of the new
type; read as the old one, they made every restore past that point fail ("invalid input
syntax for type integer"). They are left out, said, and the table's resynchronisation at
the end of the incremental gives its rows back."""

from __future__ import annotations

import time

import pytest

from tests.postgres.pg_helpers import connect, engine, execute, make_store, restore

pytestmark = pytest.mark.xdist_group("postgres")

ROWS = "SELECT t::text FROM t ORDER BY 1"


@pytest.mark.parametrize("column, alter, after", [
    ("v int", "ALTER TABLE t ALTER COLUMN v TYPE text",
     ["UPDATE t SET v = 'abc' WHERE id = 1", "INSERT INTO t VALUES (3, 'x y')", "DELETE FROM t WHERE id = 2"]),
    ("v timestamptz", "ALTER TABLE t ALTER COLUMN v TYPE text", ["UPDATE t SET v = 'later'"]),
])
def test_changes_after_a_type_change_are_left_out_and_the_table_resynchronised(pg, work_dir, column, alter, after):
    src = pg.new("src")
    execute(src, f"CREATE TABLE t (id int PRIMARY KEY, {column})",
            "INSERT INTO t VALUES (1, NULL), (2, NULL)")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "UPDATE t SET v = NULL WHERE id = 2")
    before = (time.time_ns() // 1000, connect(src).execute(ROWS).fetchall())
    time.sleep(0.01)
    execute(src, alter, *after)
    warnings = engine(src, store).incremental().warnings
    assert any("table 't' changed its columns" in w for w in warnings), warnings
    execute(src, "INSERT INTO t VALUES (10, 'after')")
    engine(src, store).incremental()  # the capture goes on
    latest, earlier = pg.new("latest"), pg.new("earlier")
    restore(store, latest)
    assert connect(latest).execute(ROWS).fetchall() == connect(src).execute(ROWS).fetchall()
    restore(store, earlier, ts=before[0])
    assert connect(earlier).execute(ROWS).fetchall() == before[1]


def test_a_key_that_changes_type(pg, work_dir):
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "ALTER TABLE t ALTER COLUMN id TYPE text", "UPDATE t SET v = 'z' WHERE id = '1'",
            "INSERT INTO t VALUES ('k', 'c')", "DELETE FROM t WHERE id = '2'")
    engine(src, store).incremental()
    restore(store, dst)
    assert connect(dst).execute(ROWS).fetchall() == connect(src).execute(ROWS).fetchall()
