"""Past states of the database, materialised as private SQLite files and kept for reuse.

``tradevault query`` (and the before-images of ``diff --rows``, and the row a ``history``
starts from) need the database as it was at a point. A point is built once by the
restore every user already trusts (nearest full backup plus replay, verified, into a
SQLite file: a PostgreSQL source goes through the cross-dialect restore) and kept in the
work dir under its capture and seq, which name one state for good: a stored chain never
changes what it holds up to a seq. A second question about the same point opens the file.

Only ``KEEP`` points are kept (least recently used go first), and fewer when they would
crowd the disk (``FREE_SHARE``). A full disk while a point is built is a one-line error and
leaves nothing behind. Nothing here writes where the bot lives: the cache is in the
configured work dir.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from restore.dispatch import restore_to
from restore.planner import Target, plan_restore
from trade_stream.durable import write_atomically
from trade_stream.errors import LocalDiskFull
from trade_stream.manifest import ManifestEntry
from trade_stream.progress import Progress, no_progress
from trade_stream.storage.store import BackupStore

KEEP = 4
FREE_SHARE = 0.5  # the older points may take at most this share of the free disk
_POINTS = "points.json"


@dataclass
class Point:
    """A materialised state: the SQLite file and the committed point it holds."""

    path: Path
    seq: int
    ts: int | None
    capture_id: str
    cached: bool  # True: reused, nothing was restored


def cache_dir(work_dir: str | None, source: str) -> Path:
    """``<work_dir>/time-travel/<source>``; without a configured work dir, the user's cache
    directory (``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    if work_dir:
        return Path(work_dir) / "time-travel" / source
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tradevault" / "time-travel" / source


def _name(capture_id: str, seq: int) -> str:
    return f"{capture_id[:16]}-{seq}.sqlite"


def _target_key(target: Target) -> str:
    return f"seq:{target.seq}" if target.seq is not None else f"ts:{target.ts}"


class PointCache:
    def __init__(self, store: BackupStore, directory: Path) -> None:
        self.store = store
        self.directory = directory

    def _resolved(self) -> dict[str, list]:
        try:
            data = json.loads((self.directory / _POINTS).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _remember(self, capture_id: str, target: Target, seq: int, ts: int | None) -> None:
        points = self._resolved()
        points[f"{capture_id}|{_target_key(target)}"] = [seq, ts]
        if len(points) > 256:
            points = dict(list(points.items())[-256:])
        write_atomically(self.directory / _POINTS, json.dumps(points).encode())

    def point(self, entries: list[ManifestEntry], target: Target, damaged: dict[int, str] | None = None,
              progress: Progress = no_progress) -> Point:
        """The state at ``target`` (the last committed point at or before it), from the
        cache or restored into it."""
        capture_id = entries[-1].capture_id if entries else ""
        known = self._resolved().get(f"{capture_id}|{_target_key(target)}")
        if known is None and target.seq is not None and (self.directory / _name(capture_id, target.seq)).exists():
            # files are named by committed points: seq N is one
            known = [target.seq, next((e.last_ts for e in entries if e.last_seq == target.seq), None)]
        if known is not None:
            path = self.directory / _name(capture_id, known[0])
            if path.exists():
                os.utime(path)
                return Point(path, known[0], known[1], capture_id, cached=True)
        plan = plan_restore(entries, target, damaged)
        capture_id = plan.full.capture_id
        self.directory.mkdir(parents=True, exist_ok=True)
        building = self.directory / f".building-{os.getpid()}-{time.monotonic_ns()}.sqlite"
        try:
            result = restore_to(self.store, plan, f"sqlite:///{building}", force=True, progress=progress)
            _read_only_journal(building)
            path = self.directory / _name(capture_id, result.last_seq)
            os.replace(building, path)
        except (LocalDiskFull, OSError, sqlite3.OperationalError) as exc:
            full = (isinstance(exc, LocalDiskFull) or getattr(exc, "errno", None) in (errno.ENOSPC, errno.EFBIG)
                    or (isinstance(exc, sqlite3.OperationalError) and "full" in str(exc)))  # "database or disk is full"
            if not full:
                raise
            raise LocalDiskFull(f"no room in {self.directory} for the database as it was at {target.describe()} "
                                f"({exc}): free some space, or set work_dir to a larger disk") from None
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{building}{suffix}").unlink(missing_ok=True)
        # A seq names its point for good (later backups only add events after it), and so
        # does a time before the chain's end (the stored events after it stay after it); a
        # time at the end may move on with the next backup, so its answer is not kept.
        if target.seq is not None or result.last_seq < max(e.last_seq for e in entries
                                                           if e.capture_id == capture_id):
            self._remember(capture_id, target, result.last_seq, result.last_ts)
        self._evict(keep=path)
        return Point(path, result.last_seq, result.last_ts, capture_id, cached=False)

    def _evict(self, keep: Path) -> None:
        """At most KEEP points, the least recently used going first; and fewer while the
        kept ones (each a whole copy of the database) take more than FREE_SHARE of what the
        disk has left besides them: a big database keeps only the point just made."""
        files = sorted(self.directory.glob("*.sqlite"), key=lambda p: p.stat().st_mtime, reverse=True)
        others = [f for f in files if f != keep]
        free = shutil.disk_usage(self.directory).free
        count, kept = 1, 0  # the point just made stays
        for old in others:
            size = old.stat().st_size
            if count < KEEP and kept + size <= FREE_SHARE * (free + kept):
                count, kept = count + 1, kept + size
                continue
            for suffix in ("", "-wal", "-shm"):
                Path(f"{old}{suffix}").unlink(missing_ok=True)


def _read_only_journal(path: Path) -> None:
    """A restore leaves its file in WAL mode (a bot's database runs so); a file only ever
    read is better without: no -wal/-shm files beside it when it is opened read-only."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()
