"""Every PostgreSQL type round-trips exactly (PostgreSQL -> PostgreSQL, equal by
``t::text``): a schema made by SQLAlchemy declarative models (a native ``Enum``, the ORM's
default, ``String(n)``, ``Numeric(p, s)``), and hand-written SQL with domains (and their
checks), arrays of enums and domains, composite, range and multirange types, and extension
types (citext, hstore, inet). The target gets the type definitions from the backup, and
an ``ALTER TYPE ... ADD VALUE`` after the full backup arrives with the incrementals."""

from __future__ import annotations

import enum
import sqlite3

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from restore.dispatch import restore_to
from restore.planner import Target, plan_restore
from tests.postgres.pg_helpers import connect, engine, execute, make_store, restore
from tests.postgres.test_schema_fidelity import same_schema

pytestmark = pytest.mark.xdist_group("postgres")


class TradingMode(enum.Enum):
    spot = "spot"
    margin = "margin"
    futures = "futures"


class Base(DeclarativeBase):
    pass


class Trade(Base):
    __tablename__ = "trades"
    id: Mapped[int] = mapped_column(primary_key=True)
    pair: Mapped[str] = mapped_column(sa.String(25))
    trading_mode: Mapped[TradingMode] = mapped_column(sa.Enum(TradingMode))
    amount: Mapped[float] = mapped_column(sa.Numeric(18, 8))


class Fill(Base):
    __tablename__ = "fills"
    __table_args__ = (sa.UniqueConstraint("trade_id", "exchange_id"), sa.Index("ix_fills_side", "side"))
    id: Mapped[int] = mapped_column(primary_key=True)
    trade_id: Mapped[int] = mapped_column(sa.ForeignKey("trades.id", ondelete="CASCADE"))
    exchange_id: Mapped[str] = mapped_column(sa.String(40))
    side: Mapped[TradingMode] = mapped_column(sa.Enum(TradingMode))


HANDWRITTEN = """
CREATE EXTENSION citext;
CREATE EXTENSION hstore;
CREATE DOMAIN positive_amount AS numeric(20, 8) CHECK (VALUE > 0);
CREATE DOMAIN email AS citext CHECK (VALUE LIKE '%@%');
CREATE TYPE side AS ENUM ('buy', 'sell');
CREATE TYPE fill AS (price numeric, qty positive_amount, at timestamptz);
CREATE TYPE price_band AS RANGE (subtype = numeric);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    side side NOT NULL,
    sides side[],
    qty positive_amount,
    owner email,
    fills fill[],
    last_fill fill,
    band price_band,
    bands price_band_multirange,
    window_ tstzrange,
    tags hstore,
    peer inet,
    labels citext[]
);
"""

ROWS = [
    "(1, 'buy', '{buy,sell}', 1.5, 'Bob@Example.com', ARRAY[ROW(100.5, 2, '2026-01-02 03:04:05+00')::fill],"
    " ROW(100.5, 2, '2026-01-02 03:04:05+00'), '[1.0,2.5)', '{[1,2),[3,4]}', '[2026-01-01,2026-02-01)',"
    " 'a=>1, \"b c\"=>NULL', '10.0.0.1/8', '{Foo,BAR}')",
    "(2, 'sell', NULL, 0.00000001, NULL, '{}', NULL, 'empty', '{}', NULL, '', '::1', NULL)",
]


def _as_text(url: str, table: str) -> list[tuple]:
    conn = connect(url)
    try:
        return conn.execute(f"SELECT t::text FROM {table} t ORDER BY 1").fetchall()
    finally:
        conn.close()


def test_an_orm_enum_and_hand_written_types_round_trip_exactly(pg, work_dir, tmp_path):
    src, dst = pg.new("src"), pg.new("dst")
    orm = sa.create_engine(src)
    Base.metadata.create_all(orm)
    with orm.begin() as conn:
        conn.execute(sa.insert(Trade), [{"id": 1, "pair": "BTC/USDT", "trading_mode": TradingMode.spot,
                                         "amount": 0.5}])
        conn.execute(sa.insert(Fill), [{"trade_id": 1, "exchange_id": "x-1", "side": TradingMode.margin}])
    orm.dispose()
    execute(src, *[s for s in HANDWRITTEN.split(";\n") if s.strip()], f"INSERT INTO orders VALUES {ROWS[0]}")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, f"INSERT INTO orders VALUES {ROWS[1]}",
            "UPDATE orders SET side = 'sell', owner = 'carol@x.org' WHERE id = 1",
            "INSERT INTO trades VALUES (2, 'ETH/USDT', 'futures', 3.25)")
    engine(src, store).incremental()
    execute(src, "ALTER TYPE tradingmode ADD VALUE 'options' AFTER 'margin'",  # an ORM migration adds a value
            "INSERT INTO trades VALUES (3, 'SOL/USDT', 'options', 1)")
    engine(src, store).incremental()
    restore(store, dst)
    for table in ("trades", "fills", "orders"):
        assert _as_text(dst, table) == _as_text(src, table), table
    conn = connect(dst)
    try:
        assert [r[0] for r in conn.execute("SELECT unnest(enum_range(NULL::tradingmode))::text")] == [
            "spot", "margin", "options", "futures"]
    finally:
        conn.close()
    with pytest.raises(Exception, match="email_check"):  # the domains came with their checks
        execute(dst, "SELECT 'no-at-sign'::email")
    with pytest.raises(Exception, match="positive_amount_check"):
        execute(dst, "INSERT INTO orders (id, side, qty) VALUES (9, 'buy', -1)")

    # into SQLite: every value of a type SQLite lacks is its exact PostgreSQL text
    lite = tmp_path / "restored.sqlite"
    restore_to(store, plan_restore(store.entries(), Target()), f"sqlite:///{lite}")
    conn = sqlite3.connect(lite)
    try:
        assert conn.execute("SELECT trading_mode FROM trades ORDER BY id").fetchall() == [
            ("spot",), ("futures",), ("options",)]
        assert conn.execute("SELECT side, owner, band, peer FROM orders ORDER BY id").fetchall() == [
            ("sell", "carol@x.org", "[1.0,2.5)", "10.0.0.1/8"), ("sell", None, "empty", "::1")]
    finally:
        conn.close()


def test_a_type_that_cannot_be_recreated_is_named_and_nothing_changes(pg, work_dir):
    src = pg.new("src")
    execute(src, "CREATE SCHEMA app", "CREATE TYPE app.mood AS ENUM ('ok')",
            "CREATE TABLE t (id int PRIMARY KEY, m app.mood)")
    store = make_store(work_dir)
    from trade_stream.errors import BadInputError

    with pytest.raises(BadInputError, match=r"table 't' column 'm' has type app\.mood"):
        engine(src, store).full()
    assert store.entries() == []
    conn = connect(src)
    try:
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0] == 0
    finally:
        conn.close()


def test_an_enum_label_renamed_keeps_the_rows_and_names_the_old_label(pg, work_dir):
    """``ALTER TYPE ... RENAME VALUE`` within the restored span: the rows before it carry
    the old label, so the restore creates both, and PostgreSQL cannot drop one. The rows
    come back exactly, and the restore names the label it kept, where before it said
    nothing of the difference from the source's type."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TYPE side AS ENUM ('buy', 'sell')", "CREATE TABLE t (id int PRIMARY KEY, s side)",
            "INSERT INTO t VALUES (1, 'buy'), (2, 'sell')")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "INSERT INTO t VALUES (3, 'buy')", "ALTER TYPE side RENAME VALUE 'buy' TO 'long'",
            "INSERT INTO t VALUES (4, 'long')")
    engine(src, store).incremental()
    result = restore(store, dst)
    assert result.notes == ["enum side: label 'buy' kept, though the source renamed or dropped it within the restored"
                            " span (PostgreSQL cannot drop an enum label)"]
    rows = "SELECT id, s::text FROM t ORDER BY id"
    assert connect(dst).execute(rows).fetchall() == connect(src).execute(rows).fetchall() == [
        (1, "long"), (2, "sell"), (3, "long"), (4, "long")]
    assert restore(store, pg.new("full"), seq=store.entries()[0].last_seq).notes == []  # the full alone: exact


def test_types_no_column_uses_any_more_still_restore(pg, work_dir):
    """Alembic's ``drop_column`` of an ORM Enum column and of a domain column after the full
    backup leaves both types in the source, unused. The restore created them (the full
    backup's tables use them) in its private schema but moved only the types its final
    tables use into ``public``, so dropping that schema failed and so did every restore
    past the migration ("cannot drop schema ... because other objects depend on it")."""
    src, dst = pg.new("src"), pg.new("dst")
    orm = sa.create_engine(src)
    Base.metadata.create_all(orm, tables=[Trade.__table__])
    orm.dispose()
    execute(src, "CREATE DOMAIN positive_amount AS numeric(20, 8) CHECK (VALUE > 0)",
            "ALTER TABLE trades ADD COLUMN fee positive_amount",
            "INSERT INTO trades VALUES (1, 'BTC/USDT', 'spot', 1.5, 0.1), (2, 'ETH/USDT', 'futures', 2, NULL)")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "ALTER TABLE trades DROP COLUMN trading_mode", "ALTER TABLE trades DROP COLUMN fee",
            "INSERT INTO trades VALUES (3, 'SOL/USDT', 3)")
    engine(src, store).incremental()
    assert restore(store, dst).notes == []
    rows = "SELECT * FROM trades ORDER BY id"
    assert connect(dst).execute(rows).fetchall() == connect(src).execute(rows).fetchall()
    same_schema(dst, src)  # the unused types too, in public


def test_a_custom_collation_comes_back_with_its_columns(pg, work_dir):
    """A case-insensitive ICU collation on a pair column (unique, so 'btc' and 'BTC' are one
    pair) and a libc one added by a later migration: the backup recorded the columns'
    collations by name only, and every restore failed ('collation "public.nocase" ...
    does not exist')."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
            "CREATE TABLE pairs (id int PRIMARY KEY, symbol text COLLATE nocase UNIQUE, note text)",
            "CREATE INDEX pairs_note ON pairs (note COLLATE nocase)",
            "INSERT INTO pairs VALUES (1, 'BTC/USDT', 'x'), (2, 'eth/usdt', NULL)")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "CREATE COLLATION bytewise (provider = libc, locale = 'C')",
            "ALTER TABLE pairs ADD COLUMN code text COLLATE bytewise",
            "INSERT INTO pairs VALUES (3, 'SOL/USDT', NULL, 'S')")
    engine(src, store).incremental()
    assert restore(store, dst).notes == []
    same_schema(dst, src)
    conn = connect(dst)
    try:
        assert conn.execute("SELECT id FROM pairs WHERE symbol = 'btc/usdt'").fetchall() == [(1,)]
        with pytest.raises(Exception, match="duplicate key"):
            conn.execute("INSERT INTO pairs VALUES (4, 'Eth/Usdt')")
    finally:
        conn.close()
    restore(store, f"sqlite:///{work_dir / 'pairs.sqlite'}")  # a SQLite target has no collations to make


def test_a_backup_without_collation_definitions_restores_without_them(pg, work_dir, monkeypatch):
    """A backup taken before collations' definitions were recorded names them only: the
    restore leaves the collation out, noted, instead of failing."""
    from trade_stream.postgres import type_definitions

    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
            "CREATE TABLE pairs (id int PRIMARY KEY, symbol text COLLATE nocase)", "INSERT INTO pairs VALUES (1, 'a')")
    monkeypatch.setattr(type_definitions, "collation_definitions", lambda conn, relid, table: [])
    store = make_store(work_dir)
    engine(src, store).full()
    assert restore(store, dst).notes == ["pairs.symbol: collation nocase not kept (a backup taken before tradevault"
                                         " recorded collations' definitions)"]
    assert connect(dst).execute("SELECT * FROM pairs").fetchall() == [(1, "a")]
