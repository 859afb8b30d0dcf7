"""On PostgreSQL a point in time is a committed state too: every event of a transaction
carries its xid and its commit time, so ``--at`` inside a transaction's span gives the
state before it, and ``--seq`` inside it snaps down to the transaction before."""

from __future__ import annotations

import time

import pytest

from restore.dispatch import restore_to
from restore.planner import Target, plan_restore
from tests.postgres.pg_helpers import connect, engine, execute, make_store

pytestmark = pytest.mark.xdist_group("postgres")


def _ids(url: str) -> tuple[list, list]:
    conn = connect(url)
    try:
        return ([r[0] for r in conn.execute("SELECT id FROM trades ORDER BY id")],
                [r[0] for r in conn.execute("SELECT id FROM orders ORDER BY id")])
    finally:
        conn.close()


def test_restore_inside_a_transaction_gives_the_state_before_it(pg, work_dir):
    src = pg.new("src")
    execute(src, "CREATE TABLE trades (id int PRIMARY KEY)", "CREATE TABLE orders (id int PRIMARY KEY, trade int)",
            "INSERT INTO trades VALUES (1)", "INSERT INTO orders VALUES (10, 1)")
    store = make_store(work_dir)
    engine(src, store).full()
    conn = connect(src)
    try:
        with conn.transaction():
            conn.execute("INSERT INTO trades VALUES (2)")
            time.sleep(0.5)
            inside = time.time_ns() // 1000
            time.sleep(0.5)
            conn.execute("INSERT INTO orders VALUES (20, 2)")
    finally:
        conn.close()
    execute(src, "INSERT INTO trades VALUES (3)")
    engine(src, store).incremental()
    events = [e for e in store.entries() if e.kind == "incremental"][0]

    def restored(target: Target) -> tuple[list, list]:
        url = pg.new("dst")
        restore_to(store, plan_restore(store.entries(), target), url)
        return _ids(url)

    assert restored(Target(ts=inside)) == ([1], [10])  # neither the trade nor its order
    assert restored(Target(seq=events.first_seq)) == ([1], [10])  # the trade alone never existed
    assert restored(Target()) == ([1, 2, 3], [10, 20])
