"""``status`` counts what the slot holds through a walsender, within a time and a message
budget, so a large pending transaction costs it neither memory nor the server's temporary
files; a slot that a backup is reading is reported, not an error."""

from __future__ import annotations

import time

import pytest

from tests.postgres.pg_helpers import connect, engine, execute, make_store
from tests.postgres.test_walsender import hold_slot
from trade_stream.postgres import status
from trade_stream.postgres.capture import PostgresCapture, slot_name_for
from trade_stream.postgres.database import PostgresDatabase
from trade_stream.postgres.walsender import release_slot

pytestmark = pytest.mark.xdist_group("postgres")


def _pending_source(pg, work_dir, rows: int) -> tuple[str, PostgresDatabase]:
    src = pg.new("src")
    execute(src, "CREATE TABLE t (id bigint PRIMARY KEY, v text)")
    engine(src, make_store(work_dir)).full()
    # synchronously: status does not flush the WAL, and counts only what is flushed
    execute(src, "SET synchronous_commit = on", f"INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, {rows}) g",
            "SET synchronous_commit = on", "UPDATE t SET v = 'w' WHERE id = 1")
    return src, PostgresDatabase(src)


def test_what_is_pending_is_counted_exactly_when_it_fits(pg, work_dir):
    _, db = _pending_source(pg, work_dir, 3000)
    report = status.capture_status(db, slot_name_for("src"))
    assert (report["pending_events"], report["pending_capped"]) == (3001, False)
    assert report["lag_seconds"] >= 0 and report["lag_bytes"] > 0


def test_a_pending_transaction_past_the_budget_is_a_lower_bound(pg, work_dir, monkeypatch):
    _, db = _pending_source(pg, work_dir, 5000)
    monkeypatch.setattr(status, "PEEK_LIMIT", 1000)
    report = status.capture_status(db, slot_name_for("src"))
    assert report["pending_capped"] and 0 < report["pending_events"] < 1000
    monkeypatch.setattr(status, "PEEK_SECONDS", 0.0)  # out of time before anything is read
    started = time.monotonic()
    report = status.capture_status(db, slot_name_for("src"))
    assert report["pending_capped"] and report["pending_events"] in (None, *range(5002))
    assert time.monotonic() - started < 5


def test_a_slot_a_backup_is_reading_is_reported_not_an_error(pg, work_dir):
    src, db = _pending_source(pg, work_dir, 10)
    capture = PostgresCapture(db, slot_name_for("src"))
    conn = connect(src)
    rconn = hold_slot(capture, conn)
    try:
        report = status.capture_status(db, capture.slot)
        assert report["installed"] and report["pending_events"] is None and report["pending_capped"]
    finally:
        release_slot(rconn, conn, capture.slot)
        conn.close()
    assert status.capture_status(db, capture.slot)["pending_events"] == 11
