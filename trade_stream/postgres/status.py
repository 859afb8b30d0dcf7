"""What ``status`` reports about a PostgreSQL source: the slot's health (retained WAL,
lag), the capture part of ``trade_stream.status``.

``pending_events`` counts row changes not yet confirmed by peeking at most
``PEEK_LIMIT`` messages (a lower bound when ``pending_capped``); ``lag_seconds`` is the
age of the oldest unconfirmed commit. ``retained_wal_bytes`` is what the server keeps on
disk for the slot: it grows while backups are not taken, so it is the number to watch.
"""

from __future__ import annotations

import time
from typing import Any

from trade_stream.errors import BadInputError
from trade_stream.postgres.capture import PostgresCapture, slot_name_for
from trade_stream.postgres.database import PostgresDatabase
from trade_stream.postgres.wal2json import commit_ts_us, decode_message

PEEK_LIMIT = 100_000


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
        pending, oldest, changes = 0, None, 0
        rows = conn.execute(
            "SELECT data FROM pg_logical_slot_peek_changes(%s, NULL, %s" + ", %s" * (2 * len(options)) + ")",
            (slot, PEEK_LIMIT, *[v for pair in options for v in pair]),
        ).fetchall()
        for (data,) in rows:
            message = decode_message(data)
            action = message.action
            if action == "B" and oldest is None:
                oldest = commit_ts_us(message.timestamp)
            elif action in ("I", "U", "D") and not message.table.startswith("_tradevault_"):
                changes += 1
        pending = changes
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
            "pending_capped": len(rows) >= PEEK_LIMIT,
            "lag_seconds": round((now - oldest) / 1e6, 3) if oldest else 0.0,
            "schema_change_pending": False,
        }
    finally:
        conn.close()


def uninstall_capture(db: PostgresDatabase, source: str) -> dict[str, Any]:
    conn = db.connect()
    try:
        return PostgresCapture(db, slot_name_for(source)).uninstall(conn)
    finally:
        conn.close()
