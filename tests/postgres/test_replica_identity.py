"""A table whose REPLICA IDENTITY someone set to NOTHING (a DBA tuning WAL volume, a
migration copied from elsewhere). wal2json then drops the table's deletes. Before, the
incremental refused and told the user to set it back; once they did, the deletes made
meanwhile were missing from every later restore, without a word. The incremental now sets
it back itself, leaves the table's changes since the last backup out and reads its rows
again, with a warning."""

from __future__ import annotations

import pytest

from tests.postgres.pg_helpers import engine, execute, fetch, make_store, restore

pytestmark = pytest.mark.xdist_group("postgres")


def _rows(url: str, table: str) -> list[tuple]:
    return sorted(fetch(url, f"SELECT * FROM {table}"))


def _identity(url: str, table: str) -> str:
    return fetch(url, "SELECT relreplident FROM pg_class WHERE relname = %s", (table,))[0][0]


def test_deletes_under_replica_identity_nothing_are_not_lost(pg, work_dir):
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE orders (id int PRIMARY KEY, v int)", "CREATE TABLE fills (v int)",
            "INSERT INTO orders SELECT g, g FROM generate_series(1, 5) g", "INSERT INTO fills VALUES (1), (2), (2)")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "ALTER TABLE orders REPLICA IDENTITY NOTHING", "ALTER TABLE fills REPLICA IDENTITY NOTHING",
            "DELETE FROM orders WHERE id = 1", "UPDATE orders SET id = 30 WHERE id = 3",
            "DELETE FROM fills WHERE v = 1", "INSERT INTO orders VALUES (6, 6)")
    result = engine(src, store).incremental()
    assert sorted(w.split("'")[1] for w in result.warnings if "REPLICA IDENTITY NOTHING" in w) == ["fills", "orders"]
    assert (_identity(src, "orders"), _identity(src, "fills")) == ("d", "f")
    execute(src, "DELETE FROM orders WHERE id = 2", "DELETE FROM fills WHERE v = 2")
    result = engine(src, store).incremental()
    assert not any("REPLICA IDENTITY" in w for w in result.warnings)
    restore(store, dst)
    for table in ("orders", "fills"):
        assert _rows(dst, table) == _rows(src, table)
