"""A DEFERRABLE primary key: PostgreSQL does not use it as the replica identity, so under
the default identity the WAL held no old key. wal2json then dropped the table's deletes,
and an update that moved a key (``UPDATE positions SET id = id + 1``, what such a key is
made for) was applied to the wrong row: a restore differed from the source without a
word. Now tradevault sets REPLICA IDENTITY FULL on such a table (as on a keyless one), and
the restore applies a run of moved keys as a whole, as the source checked it at commit."""

from __future__ import annotations

import pytest

from tests.postgres.pg_helpers import connect, engine, execute, make_store, restore
from tests.postgres.test_schema_fidelity import same_schema

pytestmark = pytest.mark.xdist_group("postgres")

ROWS = "SELECT id, v FROM positions ORDER BY id"


@pytest.mark.parametrize("rows", [5, 3000])
def test_keys_shifted_by_one_statement_and_deletes_come_back(pg, work_dir, rows):
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE positions (id int PRIMARY KEY DEFERRABLE, v text)",
            f"INSERT INTO positions SELECT g, 'x' || g FROM generate_series(1, {rows}) g")
    store = make_store(work_dir)
    engine(src, store).full()
    assert connect(src).execute("SELECT relreplident FROM pg_class WHERE relname = 'positions'").fetchone()[0] == "f"
    execute(src, "UPDATE positions SET id = id + 1",  # every key through a collision
            "UPDATE positions SET id = id - 1 WHERE id <= 3",  # and back for two of them
            "DELETE FROM positions WHERE id = 5",
            "BEGIN", "UPDATE positions SET id = 100000 WHERE id = 1", "UPDATE positions SET id = 1 WHERE id = 2",
            "UPDATE positions SET id = 2 WHERE id = 100000", "COMMIT")  # a swap through a spare key
    engine(src, store).incremental()
    restore(store, dst)
    expected = connect(src).execute(ROWS).fetchall()
    assert connect(dst).execute(ROWS).fetchall() == expected
    assert expected[:4] == [(1, "x2"), (2, "x1"), (4, "x3"), (6, "x5")]  # the check can fail
    same_schema(dst, src)


def test_into_sqlite_too(pg, work_dir):
    src = pg.new("src")
    execute(src, "CREATE TABLE positions (id int PRIMARY KEY DEFERRABLE, v text)",
            "INSERT INTO positions SELECT g, 'x' || g FROM generate_series(1, 5) g")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "UPDATE positions SET id = id + 1", "DELETE FROM positions WHERE id = 3")
    engine(src, store).incremental()
    target = work_dir / "positions.sqlite"
    restore(store, f"sqlite:///{target}")
    import sqlite3
    assert sqlite3.connect(target).execute(ROWS).fetchall() == connect(src).execute(ROWS).fetchall()
