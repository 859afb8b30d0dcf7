"""A PostgreSQL schema change makes the incremental read the changed tables again, at one
snapshot (SCHEMA, then a SNAPSHOT event per row). Those events are one state of the
database, like a transaction: a restore point inside them snaps to before them, never to a
table holding some of its rows."""

from __future__ import annotations

import pytest

from tests.postgres.pg_helpers import engine, execute, fetch, make_store, restore
from trade_stream import manifest as mf
from trade_stream.events import SCHEMA, SNAPSHOT
from trade_stream.storage.stored_objects import events_of

pytestmark = pytest.mark.xdist_group("postgres")


def test_a_point_inside_a_resynchronisation_never_shows_part_of_a_table(pg, work_dir):
    src = pg.new("src")
    execute(src, "CREATE TABLE a (id int PRIMARY KEY, v text)", "CREATE TABLE b (id int PRIMARY KEY, w text)",
            "INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 10) g",
            "INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 10) g")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "INSERT INTO a VALUES (11, 'a11')", "ALTER TABLE a ADD COLUMN n int DEFAULT 7",
            "ALTER TABLE b ADD COLUMN m int DEFAULT 8")
    engine(src, store).incremental()
    entry = [e for e in store.entries() if e.kind == mf.INCREMENTAL][-1]
    events = [e for batch in events_of(store, entry) for e in batch]
    resync = [e for e in events if e.op in (SCHEMA, SNAPSHOT)]
    assert [e.op for e in resync].count(SCHEMA) == 2 and len(resync) == 2 + 11 + 10
    assert len({e.tx for e in resync}) == 1  # one state, one transaction
    before = max(e.seq for e in events if e.op not in (SCHEMA, SNAPSHOT))
    for inside in (resync[0].seq, resync[5].seq, resync[13].seq, resync[-2].seq):
        dst = pg.new("dst")
        restore(store, dst, seq=inside)
        assert fetch(dst, "SELECT count(*) FROM a")[0][0] == 11
        assert fetch(dst, "SELECT count(*) FROM b")[0][0] == 10
        assert [c for (c,) in fetch(dst, "SELECT column_name FROM information_schema.columns"
                                         " WHERE table_name = 'a' ORDER BY ordinal_position")] == ["id", "v"]
        assert restore(store, dst, seq=before).last_seq == restore(store, dst, seq=inside).last_seq
    dst = pg.new("dst")
    restore(store, dst, seq=resync[-1].seq)
    assert fetch(dst, "SELECT count(*), min(n) FROM a")[0] == (11, 7)
    assert fetch(dst, "SELECT count(*), min(m) FROM b")[0] == (10, 8)
