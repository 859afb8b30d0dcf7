"""Big runs of changes replay through COPY (inserts straight into the table, updates and
deletes through a scratch table joined on the key) with every supported type exact, and a
run that finds a row missing still stops the restore."""

from __future__ import annotations

import pytest

from trade_stream.apply_postgres import COPY_ROWS, PostgresApplier
from trade_stream.errors import IntegrityError
from trade_stream.postgres_digest import table_rows

from tests.postgres.pg_helpers import connect, digest, engine, execute, make_store, restore
from tests.postgres.test_types import COLS, CREATE, ROWS

pytestmark = pytest.mark.xdist_group("postgres")

N = 2 * COPY_ROWS + 200  # every folded run below is long enough for COPY


def _rows(start: int, count: int) -> str:
    return ", ".join(ROWS[i % len(ROWS)] % (start + i) for i in range(count))


def test_thousands_of_inserts_updates_and_deletes_replay_exactly_through_copy(pg, work_dir, monkeypatch):
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, CREATE, f"INSERT INTO t ({COLS}) VALUES " + _rows(1, N))
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src,
            f"UPDATE t SET tx = coalesce(tx, '') || ' changed', n = n * 2, ai = ai || 7 WHERE id <= {N}",
            "DELETE FROM t WHERE id % 2 = 0",
            f"INSERT INTO t ({COLS}) VALUES " + _rows(100_000, N))
    incremental = engine(src, store).incremental()
    assert incremental.count >= 2 * N + N // 2
    copied = []
    original = PostgresApplier._flush_copy
    monkeypatch.setattr(PostgresApplier, "_flush_copy",
                        lambda self, cursor, table, op, params: copied.append(op) or original(self, cursor, table, op, params))
    result = restore(store, dst)
    assert sorted(copied) == ["delete", "insert", "update"]
    assert result.events == incremental.count
    src_conn, dst_conn = connect(src), connect(dst)
    try:
        for a, b in zip(table_rows(src_conn, "t", ["id"]), table_rows(dst_conn, "t", ["id"]), strict=True):
            assert repr(a) == repr(b)
        text = f"SELECT {COLS.replace(', ', '::text, ')}::text FROM t ORDER BY id"
        assert src_conn.execute(text).fetchall() == dst_conn.execute(text).fetchall()
    finally:
        src_conn.close()
        dst_conn.close()
    assert digest(dst, {"t": ["id"]}) == digest(src, {"t": ["id"]})


def test_a_copied_run_that_misses_rows_stops_the_restore(pg, work_dir):
    """The applier's own check: a run of updates through COPY must touch every row it names."""
    from trade_stream.events import UPDATE, ChangeEvent
    from trade_stream.postgres_database import PostgresDatabase
    from trade_stream.schema import DatabaseSchema

    db = pg.new("dst")
    execute(db, "CREATE TABLE k (id bigint PRIMARY KEY, v text)",
            f"INSERT INTO k SELECT g, 'x' FROM generate_series(1, {N - 1}) g")
    conn = connect(db)
    try:
        schema = DatabaseSchema(dialect="postgresql", tables=[PostgresDatabase.table_schema(conn, "k")])
        applier = PostgresApplier(conn, schema)
        events = [ChangeEvent(i, i, i, "k", UPDATE, [i], [i, "y"]) for i in range(1, N + 1)]  # id N is missing
        with pytest.raises(IntegrityError, match="missing row"):
            applier.apply(events)
    finally:
        conn.rollback()
        conn.close()


def test_runs_applied_before_the_key_is_built_are_checked_when_it_is(pg, work_dir):
    """Restore builds keys after the big runs: a run that misses rows still fails at once,
    and an insert that duplicates a key fails when the key is built."""
    from trade_stream.events import INSERT, UPDATE, ChangeEvent
    from trade_stream.postgres_database import PostgresDatabase
    from trade_stream.schema import DatabaseSchema

    db = pg.new("dst")
    execute(db, "CREATE TABLE k (id bigint PRIMARY KEY, v text)")
    conn = connect(db)
    try:
        schema = DatabaseSchema(dialect="postgresql", tables=[PostgresDatabase.table_schema(conn, "k")])
        conn.execute("ALTER TABLE k DROP CONSTRAINT k_pkey")  # as restore loads it: no key yet
        conn.execute(f"INSERT INTO k SELECT g, 'x' FROM generate_series(1, {N}) g")
        applier = PostgresApplier(conn, schema, keyless={"k"})
        applier.apply([ChangeEvent(i, i, i, "k", UPDATE, [i], [i, "y"]) for i in range(1, N + 1)])
        assert conn.execute("SELECT count(*) FROM k WHERE v = 'y'").fetchone()[0] == N
        with pytest.raises(IntegrityError, match="missing row"):
            applier.apply([ChangeEvent(i, i, i, "k", UPDATE, [i], [i, "z"]) for i in range(2, N + 2)])
        conn.rollback()

        conn.execute("ALTER TABLE k DROP CONSTRAINT IF EXISTS k_pkey")
        conn.execute(f"INSERT INTO k SELECT g, 'x' FROM generate_series(1, {N}) g")
        applier = PostgresApplier(conn, schema, keyless={"k"})
        applier.apply([ChangeEvent(i, i, i, "k", INSERT, [i], [i, "new"]) for i in range(N, 2 * N)])  # N exists
        with pytest.raises(IntegrityError, match="diverged"):
            applier.build_keys("k")
    finally:
        conn.rollback()
        conn.close()
