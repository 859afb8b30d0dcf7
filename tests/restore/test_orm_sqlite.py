"""A SQLite database made and written by an application's ORM (SQLAlchemy declarative
models: Enum, String(n), Numeric(p, s), ForeignKey, UniqueConstraint, Index, and a
keyless audit table), backed up while the application writes, restored, and then used by
that same application: its session reads every row and inserts new ones without an id."""

from __future__ import annotations

import enum
import sqlite3
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from restore.drill import schema_objects
from restore.planner import Target, plan_restore
from restore.sqlite.replay import restore_sqlite
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.sqlite.digest import database_digest
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore


class Side(enum.Enum):
    buy = "buy"
    sell = "sell"


class Base(DeclarativeBase):
    pass


class Trade(Base):
    __tablename__ = "trades"
    id: Mapped[int] = mapped_column(primary_key=True)
    pair: Mapped[str] = mapped_column(sa.String(25), index=True)
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(18, 8))


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (sa.UniqueConstraint("trade_id", "exchange_id"), sa.Index("ix_orders_side", "side"))
    id: Mapped[int] = mapped_column(primary_key=True)
    trade_id: Mapped[int] = mapped_column(sa.ForeignKey("trades.id", ondelete="CASCADE"))
    exchange_id: Mapped[str] = mapped_column(sa.String(40))
    side: Mapped[Side] = mapped_column(sa.Enum(Side))


audit = sa.Table("audit", Base.metadata, sa.Column("at", sa.String(30)), sa.Column("what", sa.Text))  # no key


KEYS = {"trades": ["id"], "orders": ["id"], "audit": []}


def _digest(path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return database_digest(conn, KEYS)
    finally:
        conn.close()


def _schema(path) -> dict:
    conn = sqlite3.connect(path)
    try:
        return schema_objects(conn, KEYS)
    finally:
        conn.close()


def test_the_application_reads_and_keeps_writing_its_restored_database(tmp_path):
    path = tmp_path / "app.sqlite"
    app = sa.create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(app)
    store = BackupStore("app", [open_location("one", f"file://{tmp_path / 'loc'}")])
    engine = BackupEngine(DatabaseService(f"sqlite:///{path}"), store)
    with Session(app) as session, session.begin():
        for i in range(1, 21):
            trade = Trade(pair="BTC/USDT" if i % 2 else "ETH/USDT", amount=Decimal(f"{i}.12345678"))
            session.add(trade)
            session.flush()
            session.add(Order(trade_id=trade.id, exchange_id=f"x-{i}", side=Side.buy))
        session.execute(audit.insert(), [{"at": "2026-01-01", "what": "start"}] * 3)
    engine.full()
    with Session(app) as session, session.begin():
        session.get(Trade, 3).amount = Decimal("0.00000001")
        session.delete(session.get(Trade, 4))  # and its order, by the application's cascade
        session.delete(session.get(Order, 4))
        session.add(Trade(pair="SOL/USDT", amount=Decimal("7.5")))
        session.execute(sa.text("DELETE FROM audit WHERE rowid = (SELECT min(rowid) FROM audit)"))  # one of 3 twins
    engine.incremental()
    app.dispose()

    restored = tmp_path / "restored.sqlite"
    restore_sqlite(store, plan_restore(store.entries(), Target()), DatabaseService(f"sqlite:///{restored}"))
    assert _digest(restored) == _digest(path)
    assert _schema(restored) == _schema(path)  # every table, index and constraint statement

    again = sa.create_engine(f"sqlite:///{restored}")
    try:
        with Session(again) as session, session.begin():
            trades = session.scalars(sa.select(Trade).order_by(Trade.id)).all()
            assert len(trades) == 20 and trades[2].amount == Decimal("0.00000001")
            assert {o.side for o in session.scalars(sa.select(Order))} == {Side.buy}
            new = Trade(pair="ADA/USDT", amount=Decimal("1"))
            session.add(new)
            session.flush()
            assert new.id == 22  # past the source's largest id
            session.add(Order(trade_id=new.id, exchange_id="x-new", side=Side.sell))
        with Session(again) as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(audit)) == 2
    finally:
        again.dispose()
