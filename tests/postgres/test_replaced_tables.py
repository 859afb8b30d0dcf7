"""A table dropped or renamed away and created again under its name. DDL is not in the
change stream, and wal2json names a table by its name only, so the new table's changes
arrived as the old one's. A freqtrade-style migration (rename ``trades`` to
``trades_bak``, create the new ``trades``, copy the rows back) made every later restore
fail ("duplicate key value violates unique constraint"), and a table recreated with the
same columns came back holding the old table's rows as well as the new one's, without a
word. The incremental now compares each table's oid with the one it knew, resynchronises
a replaced table and leaves its ambiguous changes out."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tests.postgres.pg_helpers import engine, execute, fetch, make_store, restore
from tests.postgres.test_schema_fidelity import same_schema

pytestmark = pytest.mark.xdist_group("postgres")


class Before(DeclarativeBase):
    pass


class TradeBefore(Before):
    __tablename__ = "trades"
    id: Mapped[int] = mapped_column(primary_key=True)
    pair: Mapped[str] = mapped_column(sa.String(25), index=True)
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(18, 8))


class After(DeclarativeBase):
    pass


class TradeAfter(After):
    __tablename__ = "trades"
    id: Mapped[int] = mapped_column(primary_key=True)
    pair: Mapped[str] = mapped_column(sa.String(25), index=True)
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(18, 8))
    exchange: Mapped[str] = mapped_column(sa.String(25), server_default="binance")


def _rows(url: str, table: str) -> list[tuple]:
    return sorted(fetch(url, f"SELECT * FROM {table}"))


def _migrate(url: str) -> None:
    """The steps freqtrade's ``migrate_trades_and_orders_table`` runs on PostgreSQL."""
    execute(url, "ALTER TABLE trades RENAME TO trades_bak",
            "DROP INDEX ix_trades_pair",
            "ALTER SEQUENCE trades_id_seq RENAME TO trades_id_seq_bak")
    orm = sa.create_engine(url)
    After.metadata.create_all(orm)
    orm.dispose()
    execute(url, "INSERT INTO trades (id, pair, amount, exchange)"
                 " SELECT id, lower(pair), amount, 'kraken' FROM trades_bak",
            "SELECT setval('trades_id_seq', (SELECT max(id) FROM trades))")


def test_a_migration_that_renames_and_rebuilds_a_table_restores_and_the_application_goes_on(pg, work_dir):
    src, dst, before = pg.new("src"), pg.new("dst"), pg.new("before")
    orm = sa.create_engine(src)
    Before.metadata.create_all(orm)
    with Session(orm) as session, session.begin():
        session.add_all([TradeBefore(pair=f"P{i}", amount=Decimal(i)) for i in range(1, 11)])
    store = make_store(work_dir)
    engine(src, store).full()
    with Session(orm) as session, session.begin():
        session.add_all([TradeBefore(pair=f"Q{i}", amount=Decimal(i)) for i in range(1, 4)])
    orm.dispose()
    engine(src, store).incremental()
    state_before = _rows(src, "trades")

    with Session(orm) as session, session.begin():  # in the same incremental as the migration
        session.execute(sa.text("UPDATE trades SET amount = 99 WHERE id = 13"))
    _migrate(src)
    orm = sa.create_engine(src)
    with Session(orm) as session, session.begin():
        session.add(TradeAfter(pair="new", amount=Decimal("1.5")))
        session.execute(sa.text("UPDATE trades SET amount = amount + 1 WHERE id = 2"))
        session.execute(sa.text("DELETE FROM trades WHERE id = 3"))
    result = engine(src, store).incremental()
    assert any("'trades' was dropped or renamed, and created again" in w for w in result.warnings)
    with Session(orm) as session, session.begin():
        session.add(TradeAfter(pair="later", amount=Decimal("2.5")))
    orm.dispose()
    engine(src, store).incremental()

    restore(store, dst)
    for table in ("trades", "trades_bak"):
        assert _rows(dst, table) == _rows(src, table)
    same_schema(dst, src)
    app = sa.create_engine(dst)  # the application's next trade gets the next id
    with Session(app) as session, session.begin():
        session.add(TradeAfter(pair="after", amount=Decimal("3")))
    with Session(app) as session:
        assert session.scalars(sa.select(TradeAfter.id).where(TradeAfter.pair == "after")).one() == 16
    app.dispose()

    restore(store, before, seq=store.entries()[1].last_seq)  # a point before the migration
    assert _rows(before, "trades") == state_before


def test_a_table_dropped_and_created_again_with_the_same_columns_holds_only_the_new_rows(pg, work_dir):
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE cache (id int PRIMARY KEY, v text)", "CREATE TABLE notes (v text)",
            "INSERT INTO cache SELECT g, 'old' FROM generate_series(1, 5) g",
            "INSERT INTO notes VALUES ('old'), ('old')")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "UPDATE cache SET v = 'kept' WHERE id = 1")
    engine(src, store).incremental()
    execute(src, "DROP TABLE cache", "CREATE TABLE cache (id int PRIMARY KEY, v text)",
            "INSERT INTO cache SELECT g, 'new' FROM generate_series(100, 102) g",
            "DROP TABLE notes", "CREATE TABLE notes (v text)", "INSERT INTO notes VALUES ('new')")
    result = engine(src, store).incremental()
    assert sorted(w.split("'")[1] for w in result.warnings if "created again" in w) == ["cache", "notes"]
    execute(src, "UPDATE cache SET v = 'later' WHERE id = 101", "INSERT INTO notes VALUES ('later')")
    engine(src, store).incremental()
    restore(store, dst)
    assert _rows(dst, "cache") == [(100, "new"), (101, "later"), (102, "new")]
    assert _rows(dst, "notes") == [("later",), ("new",)]
