"""The status table's judgements on plain data: a PostgreSQL slot's retained WAL against
``max_slot_wal_keep_size`` (yellow past half, red once lost)."""

from __future__ import annotations

from tradevault.status_view import GREEN, RED, YELLOW, _slot_row, pending_text

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


def test_pending_changes_read_as_a_count_a_lower_bound_or_unknown() -> None:
    assert pending_text({"pending_events": 2, "lag_seconds": 3.25}) == "2 events not yet stored, oldest 3.2 s"
    assert pending_text({"pending_events": 0}) == "0 events not yet stored"
    assert pending_text({"pending_events": 100000, "pending_capped": True, "lag_seconds": 1, "lag_bytes": 5e6}) \
        == "100,000+ events not yet stored, oldest 1.0 s, 5.0 MB of WAL not yet read"
    assert pending_text({"pending_events": None, "pending_capped": True, "lag_bytes": 261341592}) \
        == "an unknown number of events not yet stored, 261.3 MB of WAL not yet read"
