"""The status table's judgements on plain data: a PostgreSQL slot's retained WAL against
``max_slot_wal_keep_size`` (yellow past half, red once lost)."""

from __future__ import annotations

from tradevault.status_view import GREEN, RED, YELLOW, _slot_row

MB = 1024 * 1024


def test_a_sqlite_capture_has_no_slot_row() -> None:
    assert _slot_row({"installed": True, "pending_events": 3}) is None


def test_slot_wal_against_the_keep_size() -> None:
    assert _slot_row({"retained_wal_bytes": 10 * MB, "max_slot_wal_keep_size_bytes": None})[0] == GREEN
    assert _slot_row({"retained_wal_bytes": 10 * MB, "max_slot_wal_keep_size_bytes": 64 * MB})[0] == GREEN
    state, detail = _slot_row({"retained_wal_bytes": 40 * MB, "max_slot_wal_keep_size_bytes": 64 * MB})
    assert state == YELLOW and "past half" in detail
    state, detail = _slot_row({"retained_wal_bytes": None, "wal_status": "lost", "max_slot_wal_keep_size_bytes": MB})
    assert state == RED and "lost its WAL" in detail
