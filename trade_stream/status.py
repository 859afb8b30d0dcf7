"""What ``status`` reports about one source: its capture (the Source says), the newest
backups and how far each location is behind the merged catalog."""

from __future__ import annotations

from typing import Any

from trade_stream.manifest import FULL, INCREMENTAL, ManifestEntry, continuous_from, summary
from trade_stream.source import Source
from trade_stream.storage.store import BackupStore, LocationCatalog


def source_status(source: Source, store: BackupStore, catalogs: list[LocationCatalog] | None = None) -> dict[str, Any]:
    """``catalogs``: the store's, when the caller has read them already."""
    catalogs = store.catalogs() if catalogs is None else catalogs
    entries = store.merged(catalogs)
    return status_report(source.display_url, store.source, source.capture_status(store, entries), catalogs, entries)


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
    oldest = next((e for e in entries if e.kind == FULL), None)
    reach = continuous_from(entries)
    return {
        "database": database,
        "source": source,
        "capture": capture,
        "last_full": summary(last_full) if last_full else None,
        "last_incremental": summary(last_incr) if last_incr else None,
        # how far back restores reach: the oldest full backup kept, and the oldest point
        # from which every instant to now is restorable (history, diff and query reach it)
        "history": {"oldest_point": _point(oldest), "every_instant_since": _point(reach)},
        "locations": locations,
    }


def _point(entry: ManifestEntry | None) -> dict[str, Any] | None:
    return None if entry is None else {"seq": entry.last_seq, "time": entry.last_ts, "n": entry.n}
