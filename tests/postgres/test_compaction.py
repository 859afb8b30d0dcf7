"""Compaction of PostgreSQL incrementals: values of every kind the decoder makes go through
the merge unchanged, and the latest point and one inside the merged run restore exactly."""

from __future__ import annotations

import pytest

from tests.postgres.pg_helpers import digest, engine, execute, make_store, restore
from trade_stream.compaction import compact

pytestmark = pytest.mark.xdist_group("postgres")

TABLES = {"orders": ["id"]}


def test_merged_postgres_incrementals_restore_every_point_exactly(pg, work_dir):
    src = pg.new("src")
    execute(src, "CREATE TABLE orders (id bigint PRIMARY KEY, pair text NOT NULL, amount numeric(38,18),"
                 " at timestamptz, meta jsonb, flags boolean[])")
    store = make_store(work_dir)
    backup = engine(src, store)
    backup.full()
    middle, middle_digest = None, None
    for i in range(4):
        execute(src, f"INSERT INTO orders VALUES ({i}, 'BTC/USDT', 7.000000000000000007 * {i + 1},"
                     f" '2026-12-03 0{i}:00+00', '{{\"i\": {i}}}', ARRAY[true, false])",
                f"UPDATE orders SET amount = amount + 0.000000000000000001 WHERE id < {i}")
        result = backup.incremental()
        if i == 1:
            middle, middle_digest = result.last_seq, digest(src, TABLES)
    merged = compact(store, backup.publisher, (4,)).merged
    assert [m["replaces"] for m in merged] == [[2, 3, 4, 5]]
    latest = pg.new("latest")
    restore(store, latest)
    assert digest(latest, TABLES) == digest(src, TABLES)
    inside = pg.new("inside")
    restore(store, inside, seq=middle)
    assert digest(inside, TABLES) == middle_digest
