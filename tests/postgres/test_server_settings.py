"""Settings a DBA gives the bot's database (``ALTER DATABASE ... SET``) hold for every
session, tradevault's too: a backup and a restore work under the short timeouts that
protect a trading database from runaway queries, as pg_dump and pg_restore do (they
turn them off for their own sessions)."""

from __future__ import annotations

import pytest

from tests.postgres.pg_helpers import digest, engine, execute, fetch, make_store, restore

pytestmark = pytest.mark.xdist_group("postgres")

TABLES = {"t": ["id"]}
TIMEOUTS = ("SET statement_timeout = '50ms'", "SET idle_in_transaction_session_timeout = '50ms'")


def _limit(url: str) -> None:
    name = fetch(url, "SELECT current_database()")[0][0]
    execute(url, *(f"ALTER DATABASE {name} {setting}" for setting in TIMEOUTS))


def test_backups_and_restores_outlast_the_databases_short_timeouts(pg, work_dir):
    src = pg.new("src")
    execute(src, "CREATE TABLE t (id bigint PRIMARY KEY, v text NOT NULL, n numeric(20,8))",
            "INSERT INTO t SELECT g, md5(g::text), g * 1.25 FROM generate_series(1, 400000) g")
    _limit(src)
    assert "statement_timeout=50ms" in fetch(src, "SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d"
                                             " ON d.oid = s.setdatabase WHERE d.datname = current_database()")[0][0]
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "SET statement_timeout = 0", "UPDATE t SET v = v || 'x', n = n + 1")
    engine(src, store).incremental()
    dst = pg.new("dst")
    _limit(dst)
    restore(store, dst)
    assert digest(dst, TABLES) == digest(src, TABLES)
