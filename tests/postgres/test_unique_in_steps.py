"""A transaction that moves a unique value from row to row in steps: the application
reorders its pair list, each pair's ``position`` unique, through a free value (PostgreSQL
checks a non-deferrable unique constraint row by row, so that is how applications do
it). The replay built the table's unique constraints with its primary key and applied the
updates folded by key, so the restore failed: "duplicate key value violates unique
constraint". Unique constraints and indexes are now built after the replay, and checked
then: a violation left at the end is a divergence."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tests.postgres.pg_helpers import engine, fetch, make_store, restore
from tests.postgres.test_schema_fidelity import same_schema

pytestmark = pytest.mark.xdist_group("postgres")


class Base(DeclarativeBase):
    pass


class PairSlot(Base):
    __tablename__ = "pair_slots"
    id: Mapped[int] = mapped_column(primary_key=True)
    pair: Mapped[str] = mapped_column(sa.String(25), unique=True)
    position: Mapped[int] = mapped_column()
    __table_args__ = (sa.UniqueConstraint("position", name="uq_pair_slots_position"),)


def _swap(orm: sa.Engine, a: str, b: str) -> None:
    """The application's reorder: one transaction, through a free position."""
    with Session(orm) as session, session.begin():
        first = session.scalars(sa.select(PairSlot).where(PairSlot.pair == a)).one()
        second = session.scalars(sa.select(PairSlot).where(PairSlot.pair == b)).one()
        mine, theirs = first.position, second.position
        first.position = -1
        session.flush()
        second.position = mine
        session.flush()
        first.position = theirs


def _slots(url: str) -> list[tuple]:
    return fetch(url, "SELECT id, pair, position FROM pair_slots ORDER BY id")


def test_values_moved_between_rows_in_steps_restore_at_every_point(pg, work_dir):
    src = pg.new("src")
    orm = sa.create_engine(src)
    Base.metadata.create_all(orm)
    with Session(orm) as session, session.begin():
        session.add_all([PairSlot(pair=f"P{i}/USDT", position=i) for i in range(1, 6)])
    store = make_store(work_dir)
    engine(src, store).full()
    states = []
    for a, b in (("P1/USDT", "P2/USDT"), ("P2/USDT", "P5/USDT")):
        _swap(orm, a, b)
        with Session(orm) as session, session.begin():  # a pair renamed through a free name
            slot = session.scalars(sa.select(PairSlot).where(PairSlot.position == 3)).one()
            other = session.scalars(sa.select(PairSlot).where(PairSlot.position == 4)).one()
            mine, theirs = slot.pair, other.pair
            slot.pair = "free"
            session.flush()
            other.pair = mine
            session.flush()
            slot.pair = theirs
        engine(src, store).incremental()
        states.append((store.entries()[-1].last_seq, _slots(src)))
    orm.dispose()

    for seq, state in states:
        dst = pg.new("dst")
        restore(store, dst, seq=seq)
        assert _slots(dst) == state
    same_schema(dst, src)  # the unique constraints are there, and hold
    app = sa.create_engine(dst)
    with Session(app) as session, session.begin():
        session.add(PairSlot(pair="NEW/USDT", position=6))
    with pytest.raises(sa.exc.IntegrityError), Session(app) as session, session.begin():
        session.add(PairSlot(pair="NEW/USDT", position=7))
    app.dispose()
