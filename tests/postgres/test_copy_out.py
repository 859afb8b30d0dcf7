"""``copy_out_rows``: a COPY read row by row through libpq, every row exact, the server's
errors raised with the connection still usable, other threads running while it waits."""

from __future__ import annotations

import threading

import psycopg
import pytest

from tests.postgres.pg_helpers import connect
from trade_stream.postgres.copy_out import copy_out_rows

pytestmark = pytest.mark.xdist_group("postgres")


def test_rows_come_back_exactly_and_the_connection_is_idle_after(pg):
    conn = connect(pg.new("copy"))
    try:
        sql = "COPY (SELECT g, 'x\\' || g FROM generate_series(1, 3) g) TO STDOUT"
        rows = [bytes(r) for r in copy_out_rows(conn, sql)]
        assert rows == [b"1\tx\\\\1\n", b"2\tx\\\\2\n", b"3\tx\\\\3\n"]  # text format: the backslash doubled
        assert conn.execute("SELECT 42").fetchone() == (42,)
    finally:
        conn.close()


def test_a_server_error_is_raised_and_the_connection_stays_usable(pg):
    conn = connect(pg.new("copy"))
    try:
        with pytest.raises(psycopg.errors.UndefinedTable):
            list(copy_out_rows(conn, "COPY (SELECT * FROM missing) TO STDOUT"))
        with pytest.raises(psycopg.errors.DivisionByZero):  # fails after the copy began
            list(copy_out_rows(conn, "COPY (SELECT 1 / (3 - g) FROM generate_series(1, 5) g) TO STDOUT"))
        assert conn.execute("SELECT 42").fetchone() == (42,)
    finally:
        conn.close()


def test_other_threads_run_while_the_server_thinks(pg):
    """peek_changes may decode for seconds before its first row: the agent's other threads
    (config history, metrics) must not stop meanwhile."""
    conn = connect(pg.new("copy"))
    counted = [0]
    done = threading.Event()

    def count() -> None:
        while not done.is_set():
            counted[0] += 1

    counter = threading.Thread(target=count)
    try:
        counter.start()
        before = counted[0]
        rows = list(copy_out_rows(conn, "COPY (SELECT pg_sleep(1)::text) TO STDOUT"))
        during = counted[0] - before
        assert len(rows) == 1 and during > 10_000, during
    finally:
        done.set()
        counter.join()
        conn.close()
