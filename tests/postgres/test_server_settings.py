"""Settings a DBA gives the bot's database (``ALTER DATABASE ... SET``) hold for every
session, tradevault's too. A backup and a restore work, and give back the same schema,
under the short timeouts that protect a trading database from runaway queries and idle
sessions (pg_dump and pg_restore turn the statement and transaction ones off for their own
sessions), a serializable default isolation, a search_path without ``public``, bytea
printed as escapes and strings without standard conforming backslashes."""

from __future__ import annotations

import pytest

from tests.postgres.pg_helpers import digest, engine, execute, fetch, make_store, restore
from tests.postgres.test_schema_fidelity import same_schema

pytestmark = pytest.mark.xdist_group("postgres")

TABLES = {"trades": ["id"], "notes": ["id"]}
SETTINGS = ("SET statement_timeout = '50ms'", "SET idle_in_transaction_session_timeout = '50ms'",
            "SET default_transaction_isolation = 'serializable'", "SET search_path = app",
            "SET bytea_output = 'escape'", "SET standard_conforming_strings = off", "SET idle_session_timeout = '50ms'")


def _limit(url: str) -> None:
    name = fetch(url, "SELECT current_database()")[0][0]
    execute(url, "CREATE SCHEMA IF NOT EXISTS app", *(f"ALTER DATABASE {name} {setting}" for setting in SETTINGS))


def test_backups_and_restores_hold_under_the_databases_own_settings(pg, work_dir):
    src = pg.new("src")
    execute(src, "CREATE TYPE side AS ENUM ('buy', 'sell')",
            "CREATE TABLE trades (id bigserial PRIMARY KEY, pair varchar(25) NOT NULL, side side NOT NULL,"
            " amount numeric(20,8) DEFAULT 0)",
            "CREATE TABLE notes (id serial PRIMARY KEY, trade_id bigint REFERENCES trades(id),"
            " body text DEFAULT 'C:\\bot\\notes' CHECK (body <> 'x\\y'), blob bytea)",
            "CREATE VIEW buys AS SELECT id, pair FROM trades WHERE side = 'buy'",
            "INSERT INTO trades (pair, side, amount) SELECT 'P' || g % 50, (ARRAY['buy', 'sell'])[1 + g % 2]::side,"
            " g * 1.25 FROM generate_series(1, 400000) g")
    _limit(src)
    assert "statement_timeout=50ms" in fetch(src, "SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d"
                                             " ON d.oid = s.setdatabase WHERE d.datname = current_database()")[0][0]
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "SET statement_timeout = 0", "SET search_path = public", "SET standard_conforming_strings = on",
            "UPDATE trades SET amount = amount + 1",
            "INSERT INTO notes (trade_id, body, blob) SELECT id, 'n', ('\\x00ff5c' || lpad(to_hex(id), 8, '0'))::bytea"
            " FROM trades WHERE id % 1000 = 0",
            "INSERT INTO notes (trade_id) VALUES (1)")
    engine(src, store).incremental()
    dst = pg.new("dst")
    _limit(dst)
    restore(store, dst)
    assert digest(dst, TABLES) == digest(src, TABLES)
    same_schema(dst, src)
    execute(dst, "SET search_path = public", "INSERT INTO trades (pair, side) VALUES ('NEW', 'sell')",
            "INSERT INTO notes (trade_id, body) VALUES (400001, 'after the restore')")


def test_a_restore_reads_backslashes_as_the_source_wrote_them(pg, work_dir):
    """The target's own ``standard_conforming_strings = off`` (a database moved from an old
    server) would read the backslashes of the source's DDL as escapes."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE notes (id int PRIMARY KEY, path text DEFAULT 'C:\\bot\\notes'"
                 " CHECK (path <> 'x\\y'))", "INSERT INTO notes (id) VALUES (1)")
    store = make_store(work_dir)
    engine(src, store).full()
    name = fetch(dst, "SELECT current_database()")[0][0]
    execute(dst, f"ALTER DATABASE {name} SET standard_conforming_strings = off")
    restore(store, dst)
    definitions = ("SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef UNION ALL"
                   " SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'c'")
    assert fetch(dst, definitions) == fetch(src, definitions)  # (pg_dump would print the target's setting)
    execute(dst, "INSERT INTO notes (id) VALUES (2)")
    assert fetch(dst, "SELECT path FROM notes ORDER BY id") == [("C:\\bot\\notes",)] * 2
