"""``COPY ... TO STDOUT`` read row by row at libpq's speed.

psycopg's ``Copy`` iterator runs a generator and a wait function for every row: for a
stream of a million small rows (a large transaction's wal2json messages) that is a good
part of the capture's time. Here each row is one ``PQgetCopyData`` call. libpq is used
in non-blocking mode and the wait for the socket is a selector's, which lets other threads
run: the server may think for seconds before its first row (``peek_changes`` decodes a
whole transaction first), and libpq's blocking ``PQgetResult``/``PQgetCopyData``, as
psycopg's pq layer calls them, keep the interpreter lock while they wait (measured: a
counting thread made 36,741 steps during a one-second blocking ``get_result``, 8.4 million
during ``exec_``, which releases it), freezing the agent's other threads.
"""

from __future__ import annotations

import selectors
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import psycopg


def copy_out_rows(conn: "psycopg.Connection", sql: str) -> Iterator[memoryview]:
    """The rows of ``sql`` (a ``COPY ... TO STDOUT``), each as libpq hands it out: one
    memoryview per row, valid until the next one is asked for. ``conn`` must be idle and
    is idle again when the iterator ends (or raises the server's error)."""
    pgconn = conn.pgconn
    # (a selector, not select(): a long-running agent may hold more than 1,024 descriptors)
    readable = selectors.DefaultSelector()
    readable.register(pgconn.socket, selectors.EVENT_READ)
    try:
        yield from _rows(conn, pgconn, readable, sql)
    finally:
        readable.close()


def _rows(conn: "psycopg.Connection", pgconn: "psycopg.pq.abc.PGconn", readable: selectors.BaseSelector,
          sql: str) -> Iterator[memoryview]:
    from psycopg import errors, pq

    result = first_result(pgconn, readable, sql.encode())
    if result is None or result.status != pq.ExecStatus.COPY_OUT:
        drain(pgconn)
        raise errors.error_from_result(result, encoding=conn.info.encoding) if result is not None \
            else errors.OperationalError("COPY TO STDOUT returned no result")
    get = pgconn.get_copy_data
    while True:
        size, data = get(1)
        if size > 0:
            yield data  # type: ignore[misc]
        elif size == 0:  # nothing buffered: wait for the socket, without the interpreter lock
            readable.select()
            pgconn.consume_input()
        else:  # -1: the copy is complete
            break
    failure = None
    while (result := pgconn.get_result()) is not None:
        if result.status != pq.ExecStatus.COMMAND_OK and failure is None:
            failure = errors.error_from_result(result, encoding=conn.info.encoding)
    if failure is not None:
        raise failure


def first_result(pgconn: "psycopg.pq.abc.PGconn", readable: selectors.BaseSelector,
                 query: bytes) -> "psycopg.pq.abc.PGresult | None":
    """Send ``query`` and return its first result, waiting on ``readable`` (the
    connection's socket) without the interpreter lock."""
    pgconn.send_query(query)
    while True:
        pgconn.consume_input()
        if not pgconn.is_busy():
            break
        readable.select()
    return pgconn.get_result()


def drain(pgconn: "psycopg.pq.abc.PGconn") -> None:
    """Read and drop what results the connection still holds (after a failed query)."""
    while pgconn.get_result() is not None:
        pass
