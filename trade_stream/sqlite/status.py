"""What ``status`` reports about one source: capture lag and the newest backups."""

from __future__ import annotations

import time
from typing import Any

from trade_stream.sqlite.backup import chain_position
from trade_stream.sqlite.capture import SqliteCapture
from trade_stream.sqlite.database import DatabaseService
from trade_stream.manifest import FULL, INCREMENTAL, ManifestEntry, summary
from trade_stream.storage.store import BackupStore, LocationCatalog


def source_status(db: DatabaseService, store: BackupStore) -> dict[str, Any]:
    now = time.time_ns() // 1000
    capture: dict[str, Any] = {"installed": False}
    catalogs = store.catalogs()
    entries = store.merged(catalogs)
    if db.exists():
        conn = db.connect(readonly=True)
        try:
            cap = SqliteCapture(db)
            if cap.is_installed(conn):
                pending, oldest = cap.pending(conn, chain_position(entries) or 0)
                capture = {
                    "installed": True,
                    "last_seq": cap.last_seq(conn),
                    "pending_events": pending,
                    "lag_seconds": round((now - oldest) / 1e6, 3) if oldest else 0.0,
                    "schema_change_pending": cap.needs_sync(conn),
                }
        finally:
            conn.close()
    return status_report(db.url_text, store.source, capture, catalogs, entries)


def status_report(database: str, source: str, capture: dict[str, Any], catalogs: list[LocationCatalog],
                  entries: list[ManifestEntry]) -> dict[str, Any]:
    """The report every dialect shares: its capture state, the newest backups, and how far
    each location is behind the merged catalog."""
    last_full = next((e for e in reversed(entries) if e.kind == FULL), None)
    last_incr = next((e for e in reversed(entries) if e.kind == INCREMENTAL), None)
    locations = [
        {"name": c.location.name, "url": c.location.url, "ok": not c.error and not c.problems,
         "entries": len(c.entries), "behind": len(entries) - len(c.entries),
         "error": c.error or "; ".join(p for _, p in c.problems[:3])}
        for c in catalogs
    ]
    return {
        "database": database,
        "source": source,
        "capture": capture,
        "last_full": summary(last_full) if last_full else None,
        "last_incremental": summary(last_incr) if last_incr else None,
        "locations": locations,
    }
