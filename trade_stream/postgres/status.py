"""What ``status`` reports about a PostgreSQL source: the slot's health (retained WAL,
lag), the capture part of ``trade_stream.status``.

``pending_events`` counts row changes not yet confirmed, reading the slot for at most
``PEEK_SECONDS`` and ``PEEK_LIMIT`` messages (a lower bound when ``pending_capped``; None
when nothing could be read in time, or a backup holds the slot); ``lag_seconds`` is the
age of the oldest unconfirmed commit read. The read goes through a walsender
(``capture.messages``): memory and the server's temporary files stay bounded whatever is
pending. (Through ``pg_logical_slot_peek_changes``, which hands out every row of a
transaction it starts, one pending 1M-row update made ``status`` take 12.4 s and 898 MB,
and 370 MB of temporary files on the server.)
``retained_wal_bytes`` is what the server keeps on disk for the slot: it grows while
backups are not taken, so it is the number to watch.
"""

from __future__ import annotations

import time
from typing import Any

from trade_stream.errors import BadInputError
from trade_stream.postgres.capture import PostgresCapture, slot_name_for
from trade_stream.postgres.database import PostgresDatabase
from trade_stream.postgres.lsn import parse_lsn
from trade_stream.postgres.wal2json import commit_ts_us, decode_message

PEEK_LIMIT = 100_000
PEEK_SECONDS = 2.0


def capture_status(db: PostgresDatabase, slot: str) -> dict[str, Any]:
    """The capture part of the status (also usable alone, e.g. by monitoring)."""
    now = time.time_ns() // 1000
    try:
        conn = db.connect()
    except BadInputError as exc:
        return {"installed": False, "error": str(exc)}
    try:
        capture = PostgresCapture(db, slot)
        if not capture.is_installed(conn):
            return {"installed": False, "slot": slot}
        info = capture.slot_info(conn)
        options = capture.options(conn)
        pending, oldest, capped = _pending(capture, conn, options)
        keep_mb = conn.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'max_slot_wal_keep_size'"
                               ).fetchone()[0]
        return {
            "installed": True,
            "slot": slot,
            "capture_id": capture.meta(conn).get("capture_id", ""),
            "wal_status": info.wal_status,
            "active": info.active,
            "confirmed_lsn": info.confirmed_lsn,
            "retained_wal_bytes": info.retained_bytes,
            "max_slot_wal_keep_size_bytes": keep_mb * 1024 * 1024 if keep_mb >= 0 else None,  # None: unlimited
            "lag_bytes": info.lag_bytes,
            "pending_events": pending,
            "pending_capped": capped,
            "lag_seconds": round((now - oldest) / 1e6, 3) if oldest else 0.0,
            "schema_change_pending": False,
        }
    finally:
        conn.close()


def _pending(capture: PostgresCapture, conn: Any, options: tuple[tuple[str, str], ...],
             ) -> tuple[int | None, int | None, bool]:
    """(row changes read, the first one's commit time, whether more may follow)."""
    import psycopg

    upto = parse_lsn(conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()[0])
    deadline = time.monotonic() + PEEK_SECONDS
    changes, oldest, read = 0, None, 0
    try:
        for data in capture.messages(conn, options, upto, until=deadline, nchanges=PEEK_LIMIT, busy_wait=0.0):
            read += 1
            message = decode_message(data)
            action = message.action
            if action == "B" and oldest is None:
                oldest = commit_ts_us(message.timestamp)
            elif action in ("I", "U", "D") and not message.table.startswith("_tradevault_"):
                changes += 1
            if read >= PEEK_LIMIT:
                return changes, oldest, True
    except psycopg.errors.ObjectInUse:  # a backup is reading the slot right now
        return None, None, True
    if time.monotonic() < deadline:
        return changes, oldest, False
    # cut short: what was read is a lower bound, and none read (the server still decoding
    # a large transaction) is not "nothing pending"
    return (changes if read else None), oldest, True


def uninstall_capture(db: PostgresDatabase, source: str) -> dict[str, Any]:
    conn = db.connect()
    try:
        return PostgresCapture(db, slot_name_for(source)).uninstall(conn)
    finally:
        conn.close()
