"""Hot standby: a database kept continuously up to date from the stored backups.

The standby starts as a restore of the latest restore point; then every new incremental
is applied as it appears. The position (capture id and last applied seq) lives in the
standby database itself, in the same transaction as the events it covers, so applying is
idempotent and a follower killed at any moment resumes exactly where it was. When the
source starts a new chain (its capture was reinstalled, e.g. after a recovery), the
standby is rebuilt from the new chain's full backup. ``promote`` removes the position
table: what is left is an ordinary database the bot can use at once.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from restore.net_effect import FoldingApplier
from restore.planner import Target, plan_restore
from restore.sqlite.apply import SqliteApplier, set_header_pragmas, user_triggers_suspended
from restore.sqlite.replay import restore_sqlite
from restore.sqlite.virtual_tables import settle_virtual_tables
from trade_stream.errors import BadInputError, FencedError
from trade_stream.gc_pause import cyclic_gc_paused
from trade_stream.manifest import INCREMENTAL, fenced_message
from trade_stream.schema import DatabaseSchema
from trade_stream.sqlite.capture import SqliteCapture
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import events_of, header_of, schema_of

POSITION = "_tradevault_standby"


@dataclass
class FollowResult:
    seq: int
    capture_id: str
    applied: int = 0  # events applied in this round
    rebuilt: bool = False
    last_ts: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def read_position(db: DatabaseService) -> tuple[str, int, int | None] | None:
    if db.is_empty():
        return None
    conn = db.connect(readonly=True)
    try:
        exists = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = ?", (POSITION,)).fetchone()[0]
        if not exists:
            return None
        row = conn.execute(f"SELECT capture_id, seq, ts FROM {POSITION}").fetchone()
        return (row[0], int(row[1]), row[2]) if row else None
    finally:
        conn.close()


def _write_position(conn: sqlite3.Connection, capture_id: str, seq: int, ts: int | None) -> None:
    conn.execute(f"CREATE TABLE IF NOT EXISTS {POSITION} (capture_id TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER)")
    conn.execute(f"DELETE FROM {POSITION}")
    conn.execute(f"INSERT INTO {POSITION} VALUES (?, ?, ?)", (capture_id, seq, ts))


class Follower:
    def __init__(self, store: BackupStore, target: DatabaseService, *, force: bool = False) -> None:
        self.store = store
        self.target = target
        self.force = force

    def _rebuild(self, entries: list, damaged: dict) -> FollowResult:
        plan = plan_restore(entries, Target(), damaged)
        result = restore_sqlite(self.store, plan, self.target, force=True)
        conn = self.target.connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            _write_position(conn, plan.full.capture_id, result.last_seq, result.last_ts)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return FollowResult(seq=result.last_seq, capture_id=plan.full.capture_id, applied=result.events,
                            rebuilt=True, last_ts=result.last_ts)

    def sync_once(self) -> FollowResult:
        entries, damaged = self.store.entries_and_damage()
        if not entries:
            raise BadInputError("no backups yet: nothing to follow")
        position = read_position(self.target)
        if position is None:
            fenced = _fenced_capture(self.store, self.target)
            if fenced:
                raise FencedError(fenced)
            if not self.target.is_empty() and not self.force:
                raise BadInputError(f"standby target {self.target.path} is not empty and not a standby "
                                    "(use --force to replace it)")
            self.force = True  # from now on the target is ours
            return self._rebuild(entries, damaged)
        capture_id, seq, ts = position
        if entries[-1].capture_id != capture_id:
            return self._rebuild(entries, damaged)
        result = FollowResult(seq=seq, capture_id=capture_id, last_ts=ts)
        pending = [e for e in entries if e.kind == INCREMENTAL and e.capture_id == capture_id and e.last_seq > seq]
        for entry in pending:
            if entry.after_seq > result.seq:
                return self._rebuild(entries, damaged)  # retention removed what we needed
            self._apply(entry, result)
        return result

    def _apply(self, entry: Any, result: FollowResult) -> None:
        """One incremental, in one transaction with the new position."""
        schema = DatabaseSchema.from_dict(schema_of(self.store, entry))
        conn = self.target.connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            applier = SqliteApplier(conn, schema)
            folding = FoldingApplier(applier)
            last_seq, last_ts = result.seq, result.last_ts
            applied = 0
            with user_triggers_suspended(conn), cyclic_gc_paused():
                for batch in events_of(self.store, entry):
                    selected = [e for e in batch if e.seq > result.seq]
                    if selected:
                        folding.apply(selected)
                        applied += len(selected)
                        last_seq, last_ts = selected[-1].seq, selected[-1].ts
                folding.finish()
                if applied:  # a full-text index follows its content (its own, or a table's)
                    settle_virtual_tables(conn, None)
            set_header_pragmas(conn, header_of(self.store, entry).extra.get("pragmas") or {})
            last_seq = max(last_seq, entry.last_seq)
            _write_position(conn, result.capture_id, last_seq, last_ts)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()
        result.applied += applied
        result.seq, result.last_ts = last_seq, last_ts


def _fenced_capture(store: BackupStore, target: DatabaseService) -> str:
    """Why ``target`` may not follow the store: it is the old primary a promotion fenced
    (its capture id is fenced), else ""."""
    if target.is_empty():
        return ""
    conn = target.connect_untouched()
    try:
        capture = SqliteCapture(target)
        capture_id = capture.meta(conn).get("capture_id") if capture.is_installed(conn) else None
    finally:
        conn.close()
    promotion = store.fence().fenced_by(capture_id) if capture_id else None
    return fenced_message(promotion) if promotion else ""


def promote(target: DatabaseService) -> tuple[str, int]:
    """Stop being a standby: drop the position table. Returns the capture id of the chain it
    followed (the old primary's, to fence) and the seq it was at."""
    position = read_position(target)
    if position is None:
        raise BadInputError(f"{target.path} is not a standby (no follow position in it)")
    conn = target.connect()
    try:
        conn.execute(f"DROP TABLE {POSITION}")
    finally:
        conn.close()
    return position[0], position[1]
