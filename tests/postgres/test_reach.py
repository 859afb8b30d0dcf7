"""What a PostgreSQL backup cannot protect as it is, it says: tables of a schema other than
``public`` are named by the full backup's warnings and by status (a backup that silently
skips a schema looks complete)."""

from __future__ import annotations

import pytest

from tests.postgres.pg_helpers import engine, execute, make_store
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

