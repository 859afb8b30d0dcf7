"""``[database] schema``: the tables of a schema other than ``public`` are backed up and
restored. The shape PostgreSQL 15 recommends (its "secure schema usage pattern"): the
application's role owns a schema of its own name, its default search path (``"$user",
public``) puts every table there, and ``public`` stays empty. The application's ORM models
and hand-written DDL make the schema; the restore puts it back under the same name, with
its owner, and the application's own session keeps writing to it."""

from __future__ import annotations

import json
import sqlite3
import uuid
from decimal import Decimal
from typing import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.postgres.pg_helpers import execute, fetch, make_store, restore
from tests.postgres.test_cli import tv
from tests.postgres.test_schema_fidelity import HANDWRITTEN, Base, Fill, Pair, Trade, same_schema
from trade_stream.errors import BadInputError
from trade_stream.postgres.backup import PostgresBackupEngine
from trade_stream.postgres.database import PostgresDatabase
from trade_stream.postgres.digest import database_digest
from trade_stream.source import open_source
from trade_stream.storage.store import BackupStore

pytestmark = pytest.mark.xdist_group("postgres")


@pytest.fixture
def app(pg) -> Iterator[str]:
    """A login role of its own (roles belong to the cluster: a unique name, dropped after)."""
    role = f"tv_bot_{uuid.uuid4().hex[:6]}"
    admin = pg.new("roles")
    execute(admin, f"CREATE ROLE {role} LOGIN")
    yield role
    for name in pg.names:
        execute(pg.cluster.url(name), f"DROP OWNED BY {role} CASCADE")  # tradevault's meta table too
    execute(admin, f"DROP ROLE {role}")


def _as(url: str, role: str) -> str:
    return url.replace("postgres@", f"{role}@")


def _run(url: str, *statements: str) -> None:
    """Statements on a plain session, as the application has one (its own search path)."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _engine(url: str, store: BackupStore, schema: str) -> PostgresBackupEngine:
    return PostgresBackupEngine(PostgresDatabase(url, schema=schema), store)


def _digest(url: str, schema: str) -> dict[str, str]:
    db = PostgresDatabase(url, schema=schema)
    conn = db.connect()
    try:
        tables = db.select(conn).tables
        described = db.reflect(conn, tables, require_identity=False)
        return database_digest(conn, {t.name: t.column_names for t in described.tables})
    finally:
        conn.close()


def _application(src: str, app: str) -> None:
    """The bot's database as PostgreSQL 15 has it: a schema named after the bot's role, made
    by the role's own migrations (models, then hand-written DDL)."""
    execute(src, f"CREATE SCHEMA {app} AUTHORIZATION {app}", "CREATE EXTENSION btree_gist")
    Base.metadata.create_all(sa.create_engine(_as(src, app)))
    _run(_as(src, app), *[s for s in HANDWRITTEN if "EXTENSION" not in s],
            "INSERT INTO pairs (symbol) VALUES ('BTC/USDT'), ('ETH/USDT')",
            "INSERT INTO trades VALUES (1, 1, 'x-1', 0.5, true, NULL), (2, 2, 'x-2', 3, false, 'closed')",
            "INSERT INTO orders (trade_id, side, valid) VALUES (1, 'buy', '[2026-01-01,2026-01-02)')",
            "INSERT INTO fills (price) VALUES (1.5)",
            "REFRESH MATERIALIZED VIEW volume")


def test_the_application_schema_comes_back_whole_and_the_application_keeps_writing(pg, work_dir, app):
    src, dst = pg.new("src"), pg.new("dst")
    _application(src, app)
    execute(src, "CREATE TABLE public.scratch (id int PRIMARY KEY)")  # not the bot's: named, left out
    store = make_store(work_dir)
    full = _engine(src, store, app).full()
    assert set(full.tables) == {t.__tablename__ for t in Base.__subclasses__()} | {"orders", "deleted_orders"}
    assert full.warnings == [f"only schema {app} is backed up: 1 table(s) of other schemas are not "
                             "(public.scratch; [database] schema chooses the schema)"]
    _run(_as(src, app), "INSERT INTO pairs (symbol) VALUES ('SOL/USDT')",
            "INSERT INTO orders (trade_id, side) VALUES (2, 'sell')", "UPDATE orders SET fee = 0.1 WHERE id = 1",
            "INSERT INTO fills (price) VALUES (2.5)")
    assert _engine(src, store, app).incremental().count > 0
    _run(_as(src, app), "CREATE INDEX trades_note ON trades (note)",  # the next migration
            "ALTER TABLE pairs ADD COLUMN active boolean NOT NULL DEFAULT true",
            "CREATE TABLE alerts (id serial PRIMARY KEY, text text)", "INSERT INTO alerts (text) VALUES ('hi')",
            "INSERT INTO trades VALUES (3, 3, 'x-3', 1.25, true, 'new')")
    _engine(src, store, app).incremental()
    execute(src, "DROP TABLE public.scratch")  # pg_dump of both compares every schema

    restore(store, dst, force=False)
    same_schema(dst, src, owners=True)  # the schema itself, its owner, and everything in it
    assert _digest(dst, app) == _digest(src, app)
    assert len(_digest(dst, app)) == len(full.tables) + 1  # alerts

    with Session(sa.create_engine(_as(dst, app))) as session:  # the bot, as itself, on its search path
        assert session.scalar(sa.select(sa.func.count()).select_from(Pair)) == 3
        assert len(session.scalars(sa.select(Trade)).all()) == 3
        session.add(Pair(symbol="ADA/USDT"))
        session.add(Fill(price=Decimal("3.5")))  # GENERATED ALWAYS: the next id is the server's
        session.commit()
        assert session.scalars(sa.select(Fill.id).order_by(Fill.id)).all() == [1, 2, 3]
        assert session.scalar(sa.select(Pair.id).where(Pair.symbol == "ADA/USDT")) == 4
    _run(_as(dst, app), "INSERT INTO alerts (text) VALUES ('again')", "UPDATE orders SET side = 'sell'")


def test_into_sqlite_the_tables_come_back_unqualified(pg, work_dir, app):
    src = pg.new("src")
    execute(src, f"CREATE SCHEMA {app} AUTHORIZATION {app}")
    _run(_as(src, app), "CREATE TABLE trades (id serial PRIMARY KEY, pair varchar(20), amount numeric(18,8))",
            "INSERT INTO trades (pair, amount) VALUES ('BTC/USDT', 0.12345678)")
    store = make_store(work_dir)
    _engine(src, store, app).full()
    _run(_as(src, app), "INSERT INTO trades (pair, amount) VALUES ('ETH/USDT', 2)")
    _engine(src, store, app).incremental()
    target = work_dir / "restored.sqlite"
    result = restore(store, f"sqlite:///{target}")
    assert f"schema {app} not kept (PostgreSQL only)" in result.notes
    with sqlite3.connect(target) as conn:
        rows = conn.execute("SELECT pair, amount FROM trades ORDER BY id").fetchall()
    assert [(pair, Decimal(str(amount))) for pair, amount in rows] == [("BTC/USDT", Decimal("0.12345678")),
                                                                      ("ETH/USDT", Decimal(2))]


def test_a_target_whose_schema_has_tables_is_refused_and_other_schemas_do_not_count(pg, work_dir, app):
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, f"CREATE SCHEMA {app} AUTHORIZATION {app}")
    _run(_as(src, app), "CREATE TABLE trades (id int PRIMARY KEY)", "INSERT INTO trades VALUES (1)")
    store = make_store(work_dir)
    _engine(src, store, app).full()
    execute(dst, "CREATE TABLE public.other (id int)")  # not where the restore goes: no obstacle
    restore(store, dst, force=False)
    assert _digest(dst, app) == _digest(src, app)
    with pytest.raises(BadInputError, match=f"is not empty \\(schema {app}\\)"):
        restore(store, dst, force=False)
    restore(store, dst, force=True)
    assert _digest(dst, app) == _digest(src, app)


def test_a_schema_the_database_lacks_is_bad_input_before_anything_changes(pg, work_dir):
    src = pg.new("src")
    execute(src, "CREATE TABLE trades (id int PRIMARY KEY)")
    store = make_store(work_dir)
    with pytest.raises(BadInputError, match="has no schema 'bot' \\(\\[database\\] schema names"):
        _engine(src, store, "bot").full()
    assert store.entries() == []
    assert PostgresDatabase(src).connect().execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0] == 0


def test_a_sqlite_source_refuses_a_schema_setting(tmp_path):
    with pytest.raises(BadInputError, match="a SQLite database has one schema"):
        open_source(f"sqlite:///{tmp_path / 'bot.sqlite'}", schema="bot")
    assert open_source(f"sqlite:///{tmp_path / 'bot.sqlite'}", schema="").dialect == "sqlite"


def test_the_command_backs_up_and_restores_the_schema_its_config_names(pg, work_dir):
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE SCHEMA bot", "CREATE TABLE bot.trades (id int PRIMARY KEY, v numeric)",
            "INSERT INTO bot.trades VALUES (1, 1.5), (2, 2.5)")
    config = (f'[database]\nurl = "{src}"\nname = "pgsrc"\nschema = "{{schema}}"\n\n[[locations]]\nname = "local"\n'
              f'url = "file://{work_dir / "backups"}"\n\n[agent]\nstate_dir = "{work_dir / "state"}"\n'
              '\n[config_vcs]\npaths = []\n')
    (work_dir / "tradevault.toml").write_text(config.format(schema="trading"))
    wrong = tv(work_dir, "backup", "full")
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1, wrong.stderr
    assert "has no schema 'trading'" in wrong.stderr

    (work_dir / "tradevault.toml").write_text(config.format(schema="bot"))
    full = tv(work_dir, "backup", "full", "--json")
    assert full.returncode == 0, full.stderr
    assert json.loads(full.stdout)["rows"] == 2
    execute(src, "INSERT INTO bot.trades VALUES (3, 3.5)")
    assert json.loads(tv(work_dir, "backup", "incremental", "--json").stdout)["events"] == 1
    status = json.loads(tv(work_dir, "status", "--json").stdout)
    assert status["capture"]["unprotected"] == []
    restored = tv(work_dir, "restore", "--to", dst)
    assert restored.returncode == 0, restored.stderr
    assert fetch(dst, "SELECT id, v FROM bot.trades ORDER BY id") == [(1, Decimal("1.5")), (2, Decimal("2.5")),
                                                                       (3, Decimal("3.5"))]


def test_a_schema_named_with_spaces_and_capitals_round_trips(pg, work_dir):
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, 'CREATE SCHEMA "My Bot"', 'CREATE TYPE "My Bot".side AS ENUM (\'buy\', \'sell\')',
            'CREATE TABLE "My Bot"."Trades" (id serial PRIMARY KEY, s "My Bot".side)',
            'INSERT INTO "My Bot"."Trades" (s) VALUES (\'buy\')')
    store = make_store(work_dir)
    _engine(src, store, "My Bot").full()
    execute(src, 'INSERT INTO "My Bot"."Trades" (s) VALUES (\'sell\')')
    _engine(src, store, "My Bot").incremental()
    restore(store, dst)
    assert _digest(dst, "My Bot") == _digest(src, "My Bot")
    assert fetch(dst, 'SELECT s::text FROM "My Bot"."Trades" ORDER BY id') == [("buy",), ("sell",)]
    same_schema(dst, src)
