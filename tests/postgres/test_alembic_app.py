"""An application whose schema is made by Alembic (tests/postgres/alembic_app: an enum,
String(n), Numeric, a foreign key ON DELETE CASCADE, a unique constraint, server
defaults, a CHECK; later revisions add a column and an index, make a column nullable,
replace the CHECK and add an enum value, through ``batch_alter_table`` as SQLite needs).
Revisions run while tradevault captures; the restore is then the application's own
database: Alembic reads its revision from it and upgrades it to the next one, and the
application's session writes to it. In each direction the application goes: PostgreSQL
and SQLite kept, and SQLite moved to PostgreSQL."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Callable

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tests.postgres.pg_helpers import engine as pg_engine
from tests.postgres.pg_helpers import make_store, restore
from tests.postgres.test_schema_fidelity import same_schema
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService

pytestmark = pytest.mark.xdist_group("postgres")

SCRIPTS = Path(__file__).parent / "alembic_app"


class Base(DeclarativeBase):
    pass


class Trade(Base):
    """The application's models at revision r4."""

    __tablename__ = "trades"
    id: Mapped[int] = mapped_column(primary_key=True)
    pair: Mapped[str] = mapped_column(sa.String(25))
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(18, 8))


class Order(Base):

    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    trade_id: Mapped[int] = mapped_column(sa.ForeignKey("trades.id", ondelete="CASCADE"))
    side: Mapped[str] = mapped_column(sa.Enum("buy", "sell", "short", name="order_side"))
    fee: Mapped[Decimal | None] = mapped_column(sa.Numeric(18, 8))
    price: Mapped[Decimal] = mapped_column(sa.Numeric(18, 8))
    note: Mapped[str | None] = mapped_column(sa.Text)


def _alembic(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def _run(url: str, *statements: str) -> None:
    app = sa.create_engine(url)
    with app.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    app.dispose()


def _rows(url: str) -> dict[str, list[tuple]]:
    app = sa.create_engine(url)
    with app.connect() as conn:
        rows = {t: sorted(tuple(float(v) if isinstance(v, Decimal) else v for v in row)
                          for row in conn.execute(sa.text(f"SELECT {cols} FROM {t}")))
                for t, cols in (("trades", "id, pair, amount"), ("orders", "id, trade_id, side, fee, price"),
                                ("alembic_version", "version_num"))}
    app.dispose()
    return rows


def _life(url: str, backup_full: Callable[[], None], backup_incremental: Callable[[], None]) -> None:
    """The application's history under capture: three revisions, trading in between."""
    command.upgrade(_alembic(url), "r1")
    _run(url, *[f"INSERT INTO trades (pair, amount) VALUES ('P{i}/USDT', {i}.5)" for i in range(1, 6)],
         "INSERT INTO orders (trade_id, side, fee, price) VALUES (1, 'buy', 0.1, 100), (2, 'sell', 0.2, 200)")
    backup_full()
    command.upgrade(_alembic(url), "r2")
    _run(url, "INSERT INTO trades (pair, amount, exchange) VALUES ('ETH/BTC', 3, 'kraken')",
         "UPDATE orders SET price = 101 WHERE id = 1")
    backup_incremental()
    command.upgrade(_alembic(url), "r3")
    _run(url, "INSERT INTO orders (trade_id, side, fee, price) VALUES (6, 'sell', NULL, 0)",
         "DELETE FROM trades WHERE id = 2")  # its order goes with it (ON DELETE CASCADE)
    if url.startswith("postgresql"):
        _run(url, "INSERT INTO orders (trade_id, side, fee, price) VALUES (3, 'short', NULL, 5)")
    backup_incremental()


def _carry_on(url: str) -> None:
    """What the application does with the restore: the next revision, then a new order."""
    assert _rows(url)["alembic_version"] == [("r3",)]
    command.upgrade(_alembic(url), "head")
    app = sa.create_engine(url)
    with Session(app) as session, session.begin():
        session.add(Order(trade_id=1, side="sell", fee=None, price=Decimal("0"), note="after the restore"))
    with Session(app) as session:
        assert session.scalars(sa.select(Order.id).where(Order.note == "after the restore")).one() > 3
    app.dispose()


def test_postgresql_application_carries_on_from_its_restore(pg, work_dir):
    src, dst = pg.new("src"), pg.new("dst")
    store = make_store(work_dir)
    _life(src, lambda: pg_engine(src, store).full(), lambda: pg_engine(src, store).incremental())
    restore(store, dst)
    assert _rows(dst) == _rows(src)
    same_schema(dst, src)
    _carry_on(dst)
    command.upgrade(_alembic(src), "head")
    same_schema(dst, src)  # the revision did the same to both


def test_sqlite_application_carries_on_from_its_restore_in_sqlite_and_in_postgresql(pg, work_dir):
    path = work_dir / "app.sqlite"
    src = f"sqlite:///{path}"
    store = make_store(work_dir)
    backups = BackupEngine(DatabaseService(src), store)
    _life(src, backups.full, backups.incremental)
    restored = work_dir / "restored.sqlite"
    restore(store, f"sqlite:///{restored}")
    assert _rows(f"sqlite:///{restored}") == _rows(src)
    checks = []
    for database in (path, restored):  # SQLite enforces no key unless the application asks
        conn = sqlite3.connect(database)
        checks.append(conn.execute("PRAGMA foreign_key_check").fetchall())
        conn.close()
    assert checks[0] == checks[1]
    _carry_on(f"sqlite:///{restored}")

    moved = pg.new("moved")
    restore(store, moved)
    assert _rows(moved) == _rows(src)
    _carry_on(moved)
