"""Reading the capture slot through a walsender (START_REPLICATION): the same events as
through peek, up to the bound and no further, nothing confirmed, the slot free again as
soon as the read ends, and peek when no walsender can be had."""

from __future__ import annotations

import threading
import time

import pytest

from tests.postgres.pg_helpers import connect, engine, execute, fetch, make_store
from trade_stream.events import INSERT, UPDATE
from trade_stream.postgres.capture import PostgresCapture, slot_name_for
from trade_stream.postgres.database import PostgresDatabase
from trade_stream.postgres.wal2json import StreamDecoder
from trade_stream.postgres.walsender import start_command

pytestmark = pytest.mark.xdist_group("postgres")

# text that COPY's text format escapes (a walsender's messages are not escaped at all)
SPECIAL = ["plain", 'quote " inside', "back\\slash \\\\ twice", "tab\there new\nline", "ünïcode €"]


def _source(pg, work_dir) -> tuple[str, PostgresCapture]:
    src = pg.new("src")
    execute(src, "CREATE TABLE t (id bigint PRIMARY KEY, v text NOT NULL, n numeric(20,8))")
    engine(src, make_store(work_dir)).full()
    return src, PostgresCapture(PostgresDatabase(src), slot_name_for("src"))


CHANGES = 25000 + len(SPECIAL) + 10  # the row changes _changes makes


def _changes(src: str, capture: PostgresCapture) -> int:
    """A transaction larger than a read window (20,000 events), then small ones; returns
    the flushed position after them, the bound to read up to."""
    conn = connect(src)
    try:
        with conn.transaction():
            conn.execute("INSERT INTO t SELECT g, 'row ' || g, g * 1.25 FROM generate_series(1, 25000) g")
        for i, text in enumerate(SPECIAL):
            conn.execute("UPDATE t SET v = %s, n = NULL WHERE id = %s", (text, i + 1))
        conn.execute("DELETE FROM t WHERE id > 24990")
        return capture.flush_wal(conn)
    finally:
        conn.close()


def _database_setting(url: str, setting: str) -> None:
    """``ALTER DATABASE <the url's> SET setting``: every later session has it."""
    name = fetch(url, "SELECT current_database()")[0][0]
    execute(url, f"ALTER DATABASE {name} SET {setting}")


def _read(src: str, capture: PostgresCapture, upto: int) -> list[tuple]:
    conn = connect(src)
    try:
        table = PostgresDatabase(src).reflect(conn, ["t"]).tables
        decoder = StreamDecoder(table)
        return [(e.seq, e.tx, e.op, e.key, e.row) for batch in capture.read(conn, decoder, upto) for e in batch]
    finally:
        conn.close()


def hold_slot(capture: PostgresCapture, conn):
    """A replication connection streaming the capture's slot (and reading nothing): the
    slot is active, as while a backup or ``status`` reads it. Close it to let go."""
    holder = capture.db.connect(replication=True)
    holder.pgconn.send_query(start_command(capture.slot, 0, capture.options(conn)).encode())
    deadline = time.monotonic() + 10
    while not capture.slot_info(conn).active and time.monotonic() < deadline:
        time.sleep(0.05)
    assert capture.slot_info(conn).active
    return holder


def _confirmed(src: str, capture: PostgresCapture) -> int | None:
    conn = connect(src)
    try:
        return capture.slot_info(conn).confirmed_lsn
    finally:
        conn.close()


def test_a_walsender_gives_what_peek_gives_and_confirms_nothing(pg, work_dir):
    src, capture = _source(pg, work_dir)
    before = _confirmed(src, capture)
    upto = _changes(src, capture)
    streamed = _read(src, capture, upto)
    peeked = _read(src, PostgresCapture(capture.db, capture.slot, streaming=False), upto)
    assert len(streamed) == CHANGES
    assert streamed == peeked
    assert [row[1] for _, _, op, _, row in streamed if op == UPDATE] == SPECIAL
    assert _confirmed(src, capture) == before
    assert _read(src, capture, upto) == streamed  # read again: still there


def test_a_read_stops_at_its_bound_and_frees_the_slot(pg, work_dir):
    src, capture = _source(pg, work_dir)
    conn = connect(src)
    try:
        conn.execute("INSERT INTO t VALUES (1, 'before', 1)")
        upto = capture.flush_wal(conn)
        conn.execute("INSERT INTO t VALUES (2, 'after', 2)")  # committed past the bound
        capture.flush_wal(conn)
        for reader in (capture, PostgresCapture(capture.db, capture.slot, streaming=False)):
            events = _read(src, reader, upto)
            assert [e[4][1] for e in events if e[2] == INSERT] == ["before"]
        streamed = _read(src, capture, upto)
        assert streamed
        assert capture.advance(conn, upto)  # the walsender let the slot go
        assert not capture.slot_info(conn).active
        later = capture.flush_wal(conn)
        assert [e[4][1] for e in _read(src, capture, later) if e[2] == INSERT] == ["after"]
    finally:
        conn.close()


def test_without_a_free_walsender_the_read_goes_through_peek(pg, work_dir):
    src, capture = _source(pg, work_dir)
    upto = _changes(src, capture)
    conn = connect(src)
    senders = int(conn.execute("SHOW max_wal_senders").fetchone()[0])
    held = []
    try:
        while len(held) <= senders:  # every walsender taken (their count includes those of other tests)
            try:
                held.append(PostgresDatabase(src).connect(replication=True))
            except Exception:  # noqa: BLE001 - the server refused one more: all are taken
                break
        assert len(held) <= senders
        events = _read(src, capture, upto)
    finally:
        for rconn in held:
            rconn.close()
        conn.close()
    assert events == _read(src, capture, upto)
    assert len(events) == CHANGES


def test_a_server_that_limits_temporary_files_still_gives_a_large_transaction(pg, work_dir):
    """peek keeps its whole output in a tuplestore, which spills to temporary files (1.1 GB
    for a 3M-row update): under the DBA's ``temp_file_limit`` every incremental would fail
    for as long as the transaction is in the slot. A walsender writes no temporary file."""
    src, capture = _source(pg, work_dir)
    _database_setting(src, "temp_file_limit = '1MB'")
    upto = _changes(src, capture)
    with pytest.raises(Exception, match="temp_file_limit"):
        _read(src, PostgresCapture(capture.db, capture.slot, streaming=False), upto)
    store = make_store(work_dir)
    result = engine(src, store).incremental()
    assert result.count == CHANGES


def test_a_slow_reader_keeps_its_walsender(pg, work_dir):
    """A walsender that hears nothing from its client for ``wal_sender_timeout`` ends the
    connection: a reader slower than the server (a busy disk, a slow location) reports in
    while it reads."""
    src, capture = _source(pg, work_dir)
    context = fetch(src, "SELECT context FROM pg_settings WHERE name = 'wal_sender_timeout'")[0][0]
    assert context in ("user", "superuser")  # settable per database
    _database_setting(src, "wal_sender_timeout = '3s'")
    upto = _changes(src, capture)
    conn = connect(src)
    try:
        decoder = StreamDecoder(PostgresDatabase(src).reflect(conn, ["t"]).tables)
        started, count = time.monotonic(), 0
        for batch in capture.read(conn, decoder, upto, batch=250):
            count += len(batch)
            time.sleep(0.07)  # ~7 s in all, more than twice the timeout
        assert time.monotonic() - started > 6
        assert count == CHANGES
    finally:
        conn.close()


def test_a_read_waits_for_a_moment_while_another_reader_holds_the_slot(pg, work_dir):
    """``tradevault status`` counting, say: the backup waits for the slot, it does not fail."""
    src, capture = _source(pg, work_dir)
    upto = _changes(src, capture)
    conn = connect(src)
    holder = hold_slot(capture, conn)
    try:
        letting_go = threading.Timer(1.0, holder.close)
        letting_go.start()
        started = time.monotonic()
        events = _read(src, capture, upto)
        assert time.monotonic() - started >= 0.9
        assert len(events) == CHANGES
        letting_go.join()
    finally:
        holder.close()
        conn.close()
