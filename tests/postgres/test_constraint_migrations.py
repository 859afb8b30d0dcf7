"""An application's migrations that change NOT NULL and CHECK constraints, as Alembic
writes them (``op.alter_column(..., nullable=True)``, a CHECK dropped and added again).
The stream carries no DDL, so the changes between such a migration and the table's
resynchronisation were replayed into the table as the previous description built it:
after ``DROP NOT NULL`` or a looser CHECK every later restore failed ("violates not-null
constraint"), and ``SET NOT NULL`` was not noticed at all, so the restore lacked it. Now
a change of NOT NULL resynchronises the table, and a table whose constraints change
within the plan is replayed without them and gets them afterwards."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tests.postgres.pg_helpers import connect, engine, execute, fetch, make_store, restore
from tests.postgres.test_schema_fidelity import same_schema

pytestmark = pytest.mark.xdist_group("postgres")


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    pair: Mapped[str] = mapped_column(sa.String(25))
    fee: Mapped[Decimal] = mapped_column(sa.Numeric(18, 8))  # NOT NULL until the migration
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(18, 8))
    note: Mapped[str | None] = mapped_column(sa.Text)
    __table_args__ = (sa.CheckConstraint("amount > 0", name="ck_orders_amount"),)


MIGRATION = [  # what Alembic emits for the new model revision
    "ALTER TABLE orders ALTER COLUMN fee DROP NOT NULL",
    "ALTER TABLE orders DROP CONSTRAINT ck_orders_amount",
    "ALTER TABLE orders ADD CONSTRAINT ck_orders_amount CHECK (amount >= 0)",
    "UPDATE orders SET note = '' WHERE note IS NULL",
    "ALTER TABLE orders ALTER COLUMN note SET NOT NULL",
]


def _orders(url: str) -> list[tuple]:
    return fetch(url, "SELECT id, pair, fee, amount, note FROM orders ORDER BY id")


def test_relaxed_and_added_constraints_restore_at_every_point(pg, work_dir):
    src = pg.new("src")
    orm = sa.create_engine(src)
    Base.metadata.create_all(orm)
    with Session(orm) as session, session.begin():
        session.add_all([Order(pair=f"P{i}", fee=Decimal("0.1"), amount=Decimal(i)) for i in range(1, 6)])
    store = make_store(work_dir)
    engine(src, store).full()
    points = []
    execute(src, "INSERT INTO orders (pair, fee, amount) VALUES ('before', 0.2, 1)", *MIGRATION,
            "INSERT INTO orders (pair, fee, amount, note) VALUES ('no fee', NULL, 0, 'free')",
            "UPDATE orders SET fee = NULL, amount = 0 WHERE id = 1")
    engine(src, store).incremental()
    points.append((store.entries()[-1].last_seq, _orders(src)))
    execute(src, "UPDATE orders SET fee = NULL WHERE id = 2", "DELETE FROM orders WHERE id = 3")
    engine(src, store).incremental()
    points.append((store.entries()[-1].last_seq, _orders(src)))

    for seq, state in points:
        dst = pg.new("dst")
        result = restore(store, dst, seq=seq)
        assert _orders(dst) == state
        assert result.notes == []
    same_schema(dst, src)
    execute(dst, "INSERT INTO orders (pair, fee, amount, note) VALUES ('app', NULL, 0, 'x')")  # the new model
    with pytest.raises(Exception, match="not-null"):
        execute(dst, "INSERT INTO orders (pair, fee, amount) VALUES ('app', 1, 1)")  # note is NOT NULL now


def test_a_point_inside_the_migrations_incremental_notes_what_its_rows_break(pg, work_dir):
    """Before the incremental's resynchronisation the restore knows only the old
    description: a row the new constraints allow is kept, and the constraint it breaks is
    noted (a CHECK added NOT VALID), not taken for a divergence."""
    src = pg.new("src")
    orm = sa.create_engine(src)
    Base.metadata.create_all(orm)
    with Session(orm) as session, session.begin():
        session.add(Order(pair="P1", fee=Decimal("0.1"), amount=Decimal(1)))
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, *MIGRATION[:3], "INSERT INTO orders (pair, fee, amount) VALUES ('free', NULL, 0)")
    engine(src, store).incremental()
    inside = store.entries()[-1].first_seq  # the insert, before the resynchronisation
    dst = pg.new("dst")
    result = restore(store, dst, seq=inside)
    assert _orders(dst) == [(1, "P1", Decimal("0.1"), Decimal(1), None), (2, "free", None, Decimal(0), None)]
    assert sorted(n.split(":")[0] for n in result.notes) == ["orders", "orders.fee"]



def test_a_sqlite_restore_replays_the_relaxed_rows_and_keeps_the_new_not_null(pg, work_dir):
    src = pg.new("src")
    orm = sa.create_engine(src)
    Base.metadata.create_all(orm)
    with Session(orm) as session, session.begin():
        session.add_all([Order(pair=f"P{i}", fee=Decimal("0.1"), amount=Decimal(i)) for i in range(1, 4)])
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, *MIGRATION, "INSERT INTO orders (pair, fee, amount, note) VALUES ('no fee', NULL, 0, 'free')")
    engine(src, store).incremental()
    out = work_dir / "orders.sqlite"
    restore(store, f"sqlite:///{out}")
    conn = sqlite3.connect(out)
    try:
        assert conn.execute("SELECT id FROM orders WHERE fee IS NULL").fetchall() == [(4,)]
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (4,)
        columns = {name: notnull for _, name, _, notnull, _, _ in conn.execute("PRAGMA table_info(orders)")}
        assert (columns["fee"], columns["note"]) == (0, 1)  # as the source has them now
    finally:
        conn.close()


def test_a_sqlite_restore_replays_rows_a_later_migration_let_in_after_a_not_null(pg, work_dir):
    """One migration sets ``note`` NOT NULL (the incremental's resynchronisation recreates
    the table with it); the next drops ``note`` and inserts orders. Until that
    incremental's resynchronisation the stream still describes the table with ``note``
    NOT NULL, and its inserts carry no note: into SQLite, where the resynchronised table
    was created as described, every restore past them failed ("NOT NULL constraint
    failed: orders.note", exit 3). Found by a PostgreSQL -> SQLite migration fuzzer."""
    src = pg.new("src")
    orm = sa.create_engine(src)
    Base.metadata.create_all(orm)
    with Session(orm) as session, session.begin():
        session.add_all([Order(pair=f"P{i}", fee=Decimal("0.1"), amount=Decimal(i)) for i in range(1, 4)])
    orm.dispose()
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, *MIGRATION[3:])  # note NOT NULL
    engine(src, store).incremental()
    middle = store.entries()[-1].last_seq
    execute(src, "ALTER TABLE orders DROP COLUMN note",
            "INSERT INTO orders (pair, fee, amount) VALUES ('later', 0.3, 7)")
    engine(src, store).incremental()
    for seq in (middle, None):
        out = work_dir / f"orders-{seq}.sqlite"
        restore(store, f"sqlite:///{out}", seq=seq)
        conn = sqlite3.connect(out)
        try:
            columns = {name: notnull for _, name, _, notnull, _, _ in conn.execute("PRAGMA table_info(orders)")}
            count = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        finally:
            conn.close()
        assert count == (3 if seq else 4)
        assert columns.get("note") == (1 if seq else None)  # NOT NULL where the table had it at that point
        assert columns["fee"] == 1


def test_a_domain_whose_check_is_replaced_restores_at_every_point(pg, work_dir):
    """The same window for a domain: its CHECK replaced by a looser one, a value only the
    new one allows inserted before the resynchronisation."""
    src = pg.new("src")
    execute(src, "CREATE DOMAIN price AS numeric(20, 8) NOT NULL CONSTRAINT price_positive CHECK (VALUE > 0)",
            "CREATE TABLE fills (id int PRIMARY KEY, price price)", "INSERT INTO fills VALUES (1, 5)")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "ALTER DOMAIN price DROP CONSTRAINT price_positive",
            "ALTER DOMAIN price ADD CONSTRAINT price_positive CHECK (VALUE >= 0)",
            "INSERT INTO fills VALUES (2, 0)")
    engine(src, store).incremental()
    execute(src, "UPDATE fills SET price = 0 WHERE id = 1")
    engine(src, store).incremental()
    for entry in store.entries()[1:]:
        dst = pg.new("dst")
        result = restore(store, dst, seq=entry.last_seq)
        assert result.notes == []
    conn = connect(dst)
    try:
        assert conn.execute("SELECT id, price FROM fills ORDER BY id").fetchall() == [(1, 0), (2, 0)]
    finally:
        conn.close()
    same_schema(dst, src)
    with pytest.raises(Exception, match="price_positive"):
        execute(dst, "INSERT INTO fills VALUES (3, -1)")
