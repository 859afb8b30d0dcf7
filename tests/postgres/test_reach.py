"""What a PostgreSQL backup cannot protect as it is, it says: tables of a schema other than
``public`` are named by the full backup's warnings and by status (a backup that silently
skips a schema looks complete), and a partitioned table's rows are kept through its
partitions."""

from __future__ import annotations

import pytest

from tests.postgres.pg_helpers import connect, engine, execute, make_store, restore
from trade_stream.postgres.source import PostgresSource

pytestmark = pytest.mark.xdist_group("postgres")


def test_tables_of_other_schemas_are_named_by_the_full_backup_and_status(pg, work_dir):
    src = pg.new("src")
    execute(src, "CREATE TABLE trades (id bigint PRIMARY KEY, v text)",
            "CREATE SCHEMA bot", "CREATE TABLE bot.orders (id bigint PRIMARY KEY)",
            'CREATE SCHEMA "Odd"', 'CREATE TABLE "Odd"."Fills" (id bigint PRIMARY KEY)')
    store = make_store(work_dir)
    full = engine(src, store).full()
    assert full.tables == {"trades": 0}
    assert full.warnings == ['only schema public is backed up: 2 table(s) of other schemas are not '
                             '("Odd"."Fills", bot.orders)']
    status = PostgresSource(src).capture_status(store, store.entries())
    assert status["unprotected"] == ['"Odd"."Fills"', "bot.orders"]
    execute(src, "INSERT INTO trades VALUES (1, 'a')")
    assert engine(src, store).incremental().warnings == []  # said once, not every second by the agent


def test_a_partitioned_tables_rows_come_back_through_its_partitions(pg, work_dir):
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE p (id bigint, day date NOT NULL, v text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day)",
            "CREATE TABLE p_2026 PARTITION OF p FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
            "CREATE TABLE p_2027 PARTITION OF p FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')",
            "INSERT INTO p VALUES (1, '2026-05-01', 'a'), (2, '2027-05-01', 'b')")
    store = make_store(work_dir)
    full = engine(src, store).full()
    assert full.tables == {"p_2026": 1, "p_2027": 1}
    assert any("'p' is partitioned" in w for w in full.warnings)
    execute(src, "INSERT INTO p VALUES (3, '2026-06-01', 'c')",
            "UPDATE p SET day = '2027-02-02' WHERE id = 1",  # moves the row to the other partition
            "UPDATE p SET v = 'bb' WHERE id = 2")
    engine(src, store).incremental()
    restore(store, dst)
    for leaf in ("p_2026", "p_2027"):
        rows = f"SELECT * FROM {leaf} ORDER BY id"
        assert connect(dst).execute(rows).fetchall() == connect(src).execute(rows).fetchall()
