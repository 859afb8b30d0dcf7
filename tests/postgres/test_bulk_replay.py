"""Big runs of changes replay through COPY (inserts straight into the table, updates and
deletes through a scratch table joined on the key) with every supported type exact, and a
run that finds a row missing still stops the restore."""

from __future__ import annotations

import pytest

from restore.postgres.apply import COPY_ROWS, PostgresApplier
from tests.postgres.pg_helpers import connect, digest, engine, execute, make_store, restore
from tests.postgres.test_types import COLS, CREATE, ROWS
from trade_stream.errors import IntegrityError
from trade_stream.postgres.database import PostgresDatabase
from trade_stream.postgres.digest import table_rows

pytestmark = pytest.mark.xdist_group("postgres")

N = 2 * COPY_ROWS + 200  # every folded run below is long enough for COPY


def _rows(start: int, count: int) -> str:
    return ", ".join(ROWS[i % len(ROWS)] % (start + i) for i in range(count))


def _changed(pg, work_dir, create: str, cols: str, values, changes: str, every: int):
    """A source table filled with ``values(start, count)`` rows, a full backup, then N rows
    updated (``changes``), every ``every``-th deleted and N inserted, an incremental."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, create, f"INSERT INTO t ({cols}) VALUES " + values(1, N))
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, f"UPDATE t SET {changes} WHERE id <= {N}", f"DELETE FROM t WHERE id % {every} = 0",
            f"INSERT INTO t ({cols}) VALUES " + values(100_000, N))
    return src, dst, store, engine(src, store).incremental()


def _same_rows(src: str, dst: str, cols: str) -> None:
    src_conn, dst_conn = connect(src), connect(dst)
    try:
        for a, b in zip(table_rows(src_conn, "t", ["id"]), table_rows(dst_conn, "t", ["id"]), strict=True):
            assert repr(a) == repr(b)
        text = f"SELECT {cols.replace(', ', '::text, ')}::text FROM t ORDER BY id"
        assert src_conn.execute(text).fetchall() == dst_conn.execute(text).fetchall()
    finally:
        src_conn.close()
        dst_conn.close()
    assert digest(dst, {"t": ["id"]}) == digest(src, {"t": ["id"]})


def test_thousands_of_inserts_updates_and_deletes_replay_exactly_through_copy(pg, work_dir, monkeypatch):
    src, dst, store, incremental = _changed(pg, work_dir, CREATE, COLS, _rows,
                                            "tx = coalesce(tx, '') || ' changed', n = n * 2, ai = ai || 7", 2)
    assert incremental.count >= 2 * N + N // 2
    copied = []
    original = PostgresApplier._flush_copy
    monkeypatch.setattr(PostgresApplier, "_flush_copy",
                        lambda self, cursor, table, op, params:
                            copied.append(op) or original(self, cursor, table, op, params))
    result = restore(store, dst)
    assert sorted(copied) == ["delete", "insert", "update"]
    assert result.events == incremental.count
    _same_rows(src, dst, COLS)


BINARY_CREATE = """CREATE TABLE t (
    id bigint PRIMARY KEY, i2 smallint, i4 integer, n numeric, n2 numeric(12,4), f double precision,
    r real, b boolean, tx text, vc varchar(20), by bytea, u uuid, d date, ts timestamp, tz timestamptz
)"""
BINARY_COLS = "id, i2, i4, n, n2, f, r, b, tx, vc, by, u, d, ts, tz"


def test_runs_of_tables_of_binary_copyable_types_replay_exactly_in_binary(pg, work_dir, monkeypatch):
    """Every column type written in binary COPY format (no json, interval, time, arrays),
    with their edge values, through inserts, gathered updates and deletes."""
    from restore.postgres import apply as apply_postgres
    from restore.postgres import gathered_changes

    rows = [
        """(%s, -32768, 2147483647, 123456789012345678901234567890.123456789012345, 1.1000, 0.1, 1.1, true,
           'hé "quoted" \\ back
newline	tab 😀', 'varchar', '\\x00ff10', 'b761fb92-464e-418a-8dae-76c6836ee40b', '2024-02-29',
           '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.123456+02')""",
        """(%s, 0, -1, -0.000, 0, 5e-324, -0, false, '', NULL, '\\x', '00000000-0000-0000-0000-000000000000',
           '0001-01-01', '9999-12-31 23:59:59.999999', '1970-01-01 00:00:00+00')""",
        """(%s, NULL, NULL, 1e-20, NULL, 1.7976931348623157e308, 3.4e38, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL)""",
        """(%s, 1, 2, 0.30000000000000004, 99999999.9999, 0.30000000000000004, -1.5e-45, true, 'x', 'y',
           '\\xdeadbeef', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '2000-01-01', '2000-01-01 00:00:00',
           '2262-04-11 23:47:16.854775+00')""",
    ]

    def values(start: int, count: int) -> str:
        return ", ".join(rows[i % len(rows)] % (start + i) for i in range(count))

    src, dst, store, _ = _changed(pg, work_dir, BINARY_CREATE, BINARY_COLS, values,
                                  "tx = coalesce(tx, '') || ' changed', n = n * 2, f = -f", 3)
    formats: list[bool] = []
    original = apply_postgres.copy_rows

    def spy(cursor, target, columns, rows, types):
        formats.append(types is not None)
        return original(cursor, target, columns, rows, types)

    monkeypatch.setattr(apply_postgres, "copy_rows", spy)
    monkeypatch.setattr(gathered_changes, "copy_rows", spy)
    restore(store, dst)
    assert formats and all(formats)  # the insert run and the gathered updates and deletes
    _same_rows(src, dst, BINARY_COLS)


def test_a_copied_run_that_misses_rows_stops_the_restore(pg, work_dir):
    """The applier's own check: a run of updates through COPY must touch every row it names."""
    from trade_stream.events import UPDATE, ChangeEvent
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


NUMERIC_VALUES = ["NaN", "Infinity", "-Infinity", "123456789012345678901234567890.123456789012345", "-0.000",
                  "1E-20", "1E+20", "0.30000000000000004", None]
SCALED_VALUES = ["123456789012345.123456789012345", "-0.000", "1E-15", "2.5", None]  # fit numeric(30,15)


@pytest.mark.parametrize("pending", [True, False], ids=["gathered", "joined"])
def test_numeric_values_of_an_update_run_travel_as_text_and_arrive_exact(pg, work_dir, pending):
    """Numeric columns outside the key reach a scratch table as text and are cast back
    (postgres_copy.text_columns): every value, NaN and infinities included (which only a
    snapshot carries from wal2json), keeps its value and its scale, whether the run is
    gathered (table without its key yet) or joined through the key."""
    from decimal import Decimal

    from trade_stream.events import UPDATE, ChangeEvent
    from trade_stream.schema import DatabaseSchema

    conn = PostgresDatabase(pg.new("dst")).connect(autocommit=False)
    try:
        conn.execute("CREATE TABLE m (id bigint PRIMARY KEY, n numeric, n2 numeric(30,15), note text)")
        conn.execute(f"INSERT INTO m SELECT g, 0, 0, 'x' FROM generate_series(1, {N}) g")
        schema = DatabaseSchema(dialect="postgresql", tables=[PostgresDatabase.table_schema(conn, "m")])
        if pending:
            conn.execute("ALTER TABLE m DROP CONSTRAINT m_pkey")
        applier = PostgresApplier(conn, schema, keys_pending={"m"} if pending else set())
        def value(values: list[str | None], i: int) -> Decimal | None:
            text = values[i % len(values)]
            return None if text is None else Decimal(text)

        events = [ChangeEvent(i, i, i, "m", UPDATE, [i], [i, value(NUMERIC_VALUES, i), value(SCALED_VALUES, i), "y"])
                  for i in range(1, N + 1)]
        applier.apply(events)
        applier.settle()
        got = conn.execute("SELECT id, n::text, n2::text FROM m ORDER BY id").fetchall()
        expected = [(e.row[0], *conn.execute("SELECT %s::numeric::text, %s::numeric(30,15)::text",
                                             (e.row[1], e.row[2])).fetchone()) for e in events[:100]]
        assert got[:len(expected)] == expected
        assert conn.execute("SELECT count(*) FROM m WHERE note = 'y'").fetchone()[0] == N
    finally:
        conn.rollback()
        conn.close()


def _unindexed(conn, rows: int):
    """Table k as restore leaves it after loading a full backup: rows, no key yet."""
    from trade_stream.schema import DatabaseSchema

    conn.execute("CREATE TABLE k (id bigint PRIMARY KEY, v text)")
    schema = DatabaseSchema(dialect="postgresql", tables=[PostgresDatabase.table_schema(conn, "k")])
    conn.execute("ALTER TABLE k DROP CONSTRAINT k_pkey")
    conn.execute(f"INSERT INTO k SELECT g, 'x' FROM generate_series(1, {rows}) g")
    return PostgresApplier(conn, schema, keys_pending={"k"})


def _scans(conn) -> int:
    return conn.execute("SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'k'").fetchone()[0]


def _events(op: str, ids, value: str | None = None) -> list:
    from trade_stream.events import ChangeEvent

    return [ChangeEvent(i, i, i, "k", op, [i], None if value is None else [i, value]) for i in ids]


def test_runs_on_a_table_without_its_key_yet_are_gathered_and_applied_with_one_scan(pg, work_dir):
    """Update and delete runs of several windows, on a table whose key is not built yet, are
    applied together when the key is built: one scan of the table, the right rows."""
    from trade_stream.events import DELETE, INSERT, UPDATE

    conn = PostgresDatabase(pg.new("dst")).connect(autocommit=False)  # rolled back after each case
    try:
        applier = _unindexed(conn, 4 * N)
        applier.apply(_events(UPDATE, range(1, N + 1), "a"))
        applier.apply(_events(DELETE, range(N + 1, 2 * N + 1)))
        applier.apply(_events(UPDATE, range(2 * N + 1, 3 * N + 1), "b"))
        applier.apply(_events(INSERT, range(4 * N + 1, 5 * N + 1), "new"))  # no gathered key: straight in
        assert conn.execute("SELECT count(*) FROM k WHERE v <> 'x'").fetchone()[0] == N  # only the inserts
        scans = _scans(conn)
        applier.build_keys("k")
        assert _scans(conn) - scans == 2  # the one DELETE for three runs, and the key's build
        rows = dict(conn.execute("SELECT v, count(*) FROM k GROUP BY v").fetchall())
        assert rows == {"a": N, "b": N, "x": N, "new": N}
    finally:
        conn.rollback()
        conn.close()


def test_a_run_touching_a_gathered_key_sees_it_applied_first(pg, work_dir):
    """A later update of a gathered row, or an insert of a gathered delete's key, settles
    what is gathered first: the last image wins, the re-inserted row exists once."""
    from trade_stream.events import DELETE, INSERT, UPDATE

    conn = PostgresDatabase(pg.new("dst")).connect(autocommit=False)  # rolled back after each case
    try:
        applier = _unindexed(conn, 2 * N)
        applier.apply(_events(UPDATE, range(1, N + 1), "first"))
        applier.apply(_events(UPDATE, range(1, N + 1), "second"))
        applier.apply(_events(DELETE, range(N + 1, 2 * N + 1)))
        applier.apply(_events(INSERT, range(N + 1, 2 * N + 1), "again"))
        applier.build_keys("k")
        rows = dict(conn.execute("SELECT v, count(*) FROM k GROUP BY v").fetchall())
        assert rows == {"second": N, "again": N}
    finally:
        conn.rollback()
        conn.close()


def test_gathered_runs_are_checked_when_they_are_applied(pg, work_dir):
    """A gathered run that misses rows fails when the key is built, or before its table's
    schema changes; an insert that duplicates a key fails when the key is built."""
    from trade_stream.events import INSERT, SCHEMA, UPDATE, ChangeEvent

    conn = PostgresDatabase(pg.new("dst")).connect(autocommit=False)  # rolled back after each case
    try:
        applier = _unindexed(conn, N)
        applier.apply(_events(UPDATE, range(2, N + 2), "z"))  # N + 1 is missing
        with pytest.raises(IntegrityError, match="1 missing row"):
            applier.build_keys("k")
        conn.rollback()

        applier = _unindexed(conn, N)
        applier.apply(_events(UPDATE, range(2, N + 2), "z"))
        drop = ChangeEvent(N + 5, N + 5, N + 5, "k", SCHEMA, None, None, None)
        with pytest.raises(IntegrityError, match="missing row"):
            applier.apply([drop])
        conn.rollback()

        applier = _unindexed(conn, N)
        applier.apply(_events(INSERT, range(N, 2 * N), "new"))  # N exists
        with pytest.raises(IntegrityError, match="diverged"):
            applier.build_keys("k")
    finally:
        conn.rollback()
        conn.close()


def test_a_gathered_update_the_table_refuses_is_a_divergence(pg, work_dir):
    """A gathered update whose new image breaks a constraint of the table (here NOT NULL)
    fails as a divergence when it is settled, with the server's reason."""
    from trade_stream.events import UPDATE, ChangeEvent

    conn = PostgresDatabase(pg.new("dst")).connect(autocommit=False)
    try:
        applier = _unindexed(conn, N)
        conn.execute("ALTER TABLE k ALTER COLUMN v SET NOT NULL")
        applier.apply(_events(UPDATE, range(1, N), "ok") + [ChangeEvent(N, N, N, "k", UPDATE, [N], [N, None])])
        with pytest.raises(IntegrityError, match="diverged from the source on table 'k'.*null value"):
            applier.build_keys("k")
    finally:
        conn.rollback()
        conn.close()
