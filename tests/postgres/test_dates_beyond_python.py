"""Dates and timestamps Python's datetime cannot hold: ``infinity`` (an application's
"valid until further notice"), ``-infinity``, BC, a year past 9999. Such a value in an
incremental stopped the capture for good: the decoder refused it, and every later
incremental read the same change again. They now travel as the text PostgreSQL reads back
to them."""

from __future__ import annotations

import sqlite3

import pytest

from tests.postgres.pg_helpers import connect, engine, execute, make_store, restore
from trade_stream.postgres.types import temporal_text

pytestmark = pytest.mark.xdist_group("postgres")

TABLE = "CREATE TABLE locks (id int PRIMARY KEY, pair text, since date, until timestamptz, logged timestamp)"
ROWS = "SELECT id, pair, since::text, until::text, logged::text FROM locks ORDER BY id"


def test_values_beyond_python_are_captured_and_restored_exactly(pg, work_dir):
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "SET TIME ZONE 'UTC'", TABLE,
            "INSERT INTO locks VALUES (1, 'BTC', '2026-01-01', 'infinity', '2026-01-01 10:00')")  # in the full backup
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "INSERT INTO locks VALUES (2, 'ETH', '-infinity', '-infinity', 'infinity')",
            "INSERT INTO locks VALUES (3, 'OLD', '0044-03-15 BC', '0044-03-15 12:30:00.5+00 BC', '10000-01-01 00:00')",
            "UPDATE locks SET pair = 'BTC2' WHERE id = 1",  # its until stays infinity
            "UPDATE locks SET until = 'infinity' WHERE id = 3")
    engine(src, store).incremental()
    execute(src, "INSERT INTO locks VALUES (4, 'SOL', 'infinity', now(), now())",
            # runs long enough to be applied through COPY, which writes these columns in binary
            "INSERT INTO locks SELECT g, 'BULK', 'infinity', '-infinity', now() FROM generate_series(10, 3009) g",
            "UPDATE locks SET since = '0100-01-01 BC' WHERE id >= 10")
    engine(src, store).incremental()  # the capture goes on
    restore(store, dst)
    expected = connect(src).execute(ROWS).fetchall()
    assert connect(dst).execute(ROWS).fetchall() == expected
    assert ("infinity", "-infinity") == (expected[0][3], expected[1][2])  # the check can fail

    target = work_dir / "locks.sqlite"
    restore(store, f"sqlite:///{target}")
    lite = sqlite3.connect(target)
    assert lite.execute("SELECT since, until, logged FROM locks WHERE id = 2").fetchone() == (
        "-infinity", "-infinity", "infinity")
    assert lite.execute("SELECT since FROM locks WHERE id = 3").fetchone() == ("0044-03-15 BC",)


@pytest.mark.parametrize("kind, literal", [
    ("date", "infinity"), ("date", "-infinity"), ("date", "0044-03-15 BC"), ("date", "4713-01-01 BC"),
    ("date", "12345-06-07"), ("date", "0001-01-01 BC"),
    ("timestamp", "infinity"), ("timestamp", "0044-03-15 12:30:00.25 BC"), ("timestamp", "10000-01-01 00:00:01"),
    ("timestamptz", "-infinity"), ("timestamptz", "0001-12-31 23:59:59.999999+00 BC"),
    ("timestamptz", "294276-12-31 23:59:59+00"),
])
def test_binary_values_read_as_the_text_postgresql_prints(pg, kind, literal):
    """The full backup's binary COPY: each value read through tradevault's loader equals
    the server's own text of it (session time zone UTC)."""
    conn = connect(pg.new("db"))
    conn.execute("SET TIME ZONE 'UTC'")
    expected = conn.execute(f"SELECT %s::{kind}::text", (literal,)).fetchone()[0]
    with conn.cursor(binary=True) as cursor:
        assert cursor.execute(f"SELECT %s::{kind}", (literal,)).fetchone()[0] == expected


def test_temporal_text_of_the_extremes():
    assert temporal_text("date", (1 << 31) - 1) == "infinity"
    assert temporal_text("timestamptz", -(1 << 63)) == "-infinity"
    assert temporal_text("date", -730_119) == "0001-01-01"  # 0001-01-01 is 730,119 days before 2000-01-01
    assert temporal_text("date", -730_120) == "0001-12-31 BC"  # the day before: year 0 is 1 BC
