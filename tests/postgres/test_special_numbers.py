"""NaN and ±Infinity in real, double precision and numeric columns. wal2json (2.5, the
version Debian ships) prints them as JSON null, so every change that wrote one was stored
as NULL and restores gave NULL back, with exit 0: a strategy's ratio stored as NaN, a
stop price of Infinity. The incremental now reads such rows back from the table when the
row there is still the version the change wrote, and stores them as they are; what it
cannot tell apart it names in a warning."""

from __future__ import annotations

import math
import sqlite3

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tests.postgres.pg_helpers import engine, execute, fetch, make_store, restore
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService

pytestmark = pytest.mark.xdist_group("postgres")


class Base(DeclarativeBase):
    pass


class Signal(Base):
    __tablename__ = "signals"
    id: Mapped[int] = mapped_column(primary_key=True)
    pair: Mapped[str] = mapped_column(sa.String(25))
    ratio: Mapped[float | None] = mapped_column(sa.Float)
    stop: Mapped[float | None] = mapped_column(sa.REAL)
    limit_price: Mapped[float | None] = mapped_column(sa.Numeric(asdecimal=False))


def _rows(url: str, table: str = "signals") -> list[tuple]:
    return fetch(url, f"SELECT * FROM {table} ORDER BY 1")


def _same(a: list[tuple], b: list[tuple]) -> bool:
    """Row for row, NaN equal to NaN."""
    def norm(value):
        return "NaN" if isinstance(value, float) and math.isnan(value) or str(value) == "NaN" else value
    return [tuple(map(norm, r)) for r in a] == [tuple(map(norm, r)) for r in b]


def test_nan_and_infinity_written_by_changes_come_back(pg, work_dir):
    src, dst = pg.new("src"), pg.new("dst")
    orm = sa.create_engine(src)
    Base.metadata.create_all(orm)
    with Session(orm) as session, session.begin():
        session.add_all([Signal(pair="BTC", ratio=0.5, stop=1.0, limit_price=2.0),
                         Signal(pair="ETH", ratio=None, stop=None, limit_price=None)])
    store = make_store(work_dir)
    engine(src, store).full()
    with Session(orm) as session, session.begin():
        session.add_all([Signal(pair="SOL", ratio=math.nan, stop=math.inf, limit_price=-math.inf),
                         Signal(pair="ADA", ratio=None, stop=-math.inf, limit_price=math.nan)])
        session.get(Signal, 1).ratio = math.nan
    execute(src, "UPDATE signals SET stop = 'Infinity' WHERE id = 2", "UPDATE signals SET ratio = NULL WHERE id = 1",
            "UPDATE signals SET ratio = 'NaN' WHERE id = 1")
    result = engine(src, store).incremental()
    assert any("hold NaN or ±Infinity" in w for w in result.warnings)
    with Session(orm) as session, session.begin():
        session.get(Signal, 3).ratio = None  # a real NULL stays NULL
        session.get(Signal, 4).stop = 7.0
    orm.dispose()
    engine(src, store).incremental()
    restore(store, dst)
    assert _same(_rows(dst), _rows(src))


def test_what_cannot_be_told_apart_is_named(pg, work_dir):
    src = pg.new("src")
    execute(src, "CREATE TABLE quotes (pair text, px double precision)",  # no primary key
            "CREATE TABLE marks (id int PRIMARY KEY, px numeric)", "INSERT INTO marks VALUES (1, 1)")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "INSERT INTO quotes VALUES ('BTC', 'NaN'), ('ETH', NULL)",
            "BEGIN; SAVEPOINT s; UPDATE marks SET px = 'Infinity' WHERE id = 1; RELEASE s; COMMIT")
    result = engine(src, store).incremental()
    named = sorted(w.split("'")[1] for w in result.warnings if "cannot be checked" in w)
    assert named == ["marks", "quotes"]
    execute(src, "DELETE FROM quotes WHERE px::text = 'NaN'", "INSERT INTO quotes VALUES ('SOL', NULL)")
    result = engine(src, store).incremental()
    assert not any("NaN" in w for w in result.warnings)  # a keyless table's NULLs are NULLs when none is NaN


def test_the_keys_noted_follow_the_stream_and_stop_at_the_limit(monkeypatch):
    from trade_stream.postgres import special_numbers
    from trade_stream.postgres.special_numbers import SpecialNulls, key_text

    monkeypatch.setattr(special_numbers, "LIMIT", 2)
    nulls = SpecialNulls()
    nulls.note("t", b"1", [1], 10)
    nulls.note("t", b"1", [1], 11)  # the same key again: its last change counts
    nulls.note("t", b"2", [2], 11)
    nulls.note("t", b"3", [3], 12)  # past the limit: counted only
    assert (nulls.keys["t"], nulls.noted, nulls.unchecked) == ({b"1": ([1], 11), b"2": ([2], 11)}, 2, {"t": 1})
    nulls.drop("t", b"1")
    nulls.drop("t", b"9")
    assert nulls.noted == 1
    nulls.drop_table("t")
    assert (nulls.keys, nulls.noted) == ({}, 0)
    assert [key_text(v) for v in (7, "a'b", b"\x01\xff", 1.5)] == ["7", "a'b", "\\x01ff", "1.5"]
    from decimal import Decimal

    from trade_stream.values import to_wire
    assert key_text(to_wire(Decimal("1.50"))) == "1.50"  # a numeric key as the stream carries it


def test_nan_survives_a_restore_into_sqlite_and_back(pg, work_dir):
    """SQLite stores a NaN REAL as NULL: the restore into SQLite wrote NULL for every NaN,
    with exit 0. It now stores the text 'NaN', which the application's ORM reads and which
    a restore back into PostgreSQL turns into NaN again; ±Infinity stay REALs."""
    src, again = pg.new("src"), pg.new("again")
    orm = sa.create_engine(src)
    Base.metadata.create_all(orm)
    with Session(orm) as session, session.begin():
        session.add_all([Signal(pair="BTC", ratio=math.nan, stop=math.inf, limit_price=math.nan),
                         Signal(pair="ETH", ratio=1.5, stop=None, limit_price=2.0)])
    store = make_store(work_dir)
    engine(src, store).full()
    with Session(orm) as session, session.begin():  # and by a change, replayed into SQLite
        session.add(Signal(pair="SOL", ratio=-math.inf, stop=math.nan, limit_price=None))
        session.get(Signal, 2).ratio = math.nan
    orm.dispose()
    engine(src, store).incremental()
    target = work_dir / "restored.sqlite"
    restore(store, f"sqlite:///{target}")
    with sqlite3.connect(target) as conn:
        stored = conn.execute("SELECT ratio, typeof(ratio), stop, typeof(stop), limit_price FROM signals"
                              " ORDER BY id").fetchall()
    assert stored == [("NaN", "text", math.inf, "real", "NaN"), ("NaN", "text", None, "null", 2),
                      (-math.inf, "real", "NaN", "text", None)]
    lite = sa.create_engine(f"sqlite:///{target}")
    with Session(lite) as session:  # the application reads every row of the restore
        assert [float(s.ratio) for s in session.scalars(sa.select(Signal).order_by(Signal.id))][2] == -math.inf
    with Session(lite) as session, session.begin():
        session.add(Signal(pair="ADA", ratio=0.25))
    lite.dispose()
    execute(src, "INSERT INTO signals (id, pair, ratio) VALUES (4, 'ADA', 0.25)")
    sqlite_store = make_store(work_dir / "sqlite-store", source="restored")
    BackupEngine(DatabaseService(f"sqlite:///{target}"), sqlite_store).full()
    restore(sqlite_store, again)
    assert _same(_rows(again), _rows(src))
