"""Commit boundaries of a SQLite source, learnt by watching it.

SQLite tells triggers nothing of transactions, so the change log alone cannot say where one
ends. A reader sees only committed rows, so every highest seq a reader sees ends a
committed transaction. This thread looks every ``interval`` (``PRAGMA data_version``, which
changes when another connection commits, then the highest seq): the commit points of the
next seal, at that resolution. Transactions committed within one interval form one group,
which a point-in-time restore keeps or drops together: never half of one.

The points are also appended to a journal (when given: the agent's state directory), so an
agent killed before its next seal hands them to the agent after it. They are hints that
make groups smaller; losing them makes groups coarser, never wrong, so the journal is not
fsynced.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from trade_stream.sqlite.capture import SqliteCapture
from trade_stream.sqlite.database import DatabaseService

INTERVAL = 0.05  # seconds between two looks: the resolution of a point in time


class CommitPointWatcher:
    def __init__(self, db: DatabaseService, journal: Path | None = None, interval: float = INTERVAL) -> None:
        self.db = db
        self.interval = interval
        self.journal = journal
        self._seen: list[int] = _load(journal) if journal is not None else []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tradevault-commit-points", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = self.db.connect(readonly=True)
        try:
            capture = SqliteCapture(self.db)
            version = None
            while not self._stop.is_set():
                try:
                    now = conn.execute("PRAGMA data_version").fetchone()[0]
                    if now != version:
                        version = now
                        self._note(capture.last_seq(conn))
                except sqlite3.Error:
                    pass  # the log is being created or the file is busy: the next look sees it
                self._stop.wait(self.interval)
        finally:
            conn.close()

    def _note(self, seq: int) -> None:
        with self._lock:
            if self._seen and self._seen[-1] == seq:
                return
            self._seen.append(seq)
            if self.journal is not None:
                try:
                    fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # state: private
                    try:
                        os.write(fd, f"{seq}\n".encode("ascii"))
                    finally:
                        os.close(fd)
                except OSError:
                    pass  # a hint lost: coarser groups, never wrong ones

    def take(self) -> list[int]:
        """The commit points seen since the last call (the latest is kept for the next)."""
        with self._lock:
            seen, self._seen = self._seen, self._seen[-1:]
            if self.journal is not None:
                _rewrite(self.journal, self._seen)
        return seen

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _load(journal: Path) -> list[int]:
    try:
        lines = journal.read_text(encoding="ascii").split()
    except OSError:
        return []
    return sorted({int(line) for line in lines if line.isdigit()})


def _rewrite(journal: Path, points: list[int]) -> None:
    temp = journal.with_name(journal.name + ".tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, "".join(f"{p}\n" for p in points).encode("ascii"))
        finally:
            os.close(fd)
        os.replace(temp, journal)
    except OSError:
        pass
