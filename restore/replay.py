"""Replay a plan into a fresh SQLite database, atomically.

Everything happens in a hidden temporary file next to the target: the full snapshot is
decompressed into it, tradevault's capture objects are removed from it, the incremental
events are applied, row counts are checked against what the backups say, and only then
is the file renamed over the target. A failure at any point leaves the target untouched.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from restore.planner import Plan, format_ts
from trade_stream.apply_sqlite import SqliteApplier, user_triggers_suspended
from trade_stream.capture_sqlite import remove_capture_objects
from trade_stream.database import DatabaseService
from trade_stream.durable import fsync_path
from trade_stream.errors import BadInputError, IntegrityError, StorageError
from trade_stream.events import ChangeEvent
from trade_stream.manifest import ManifestEntry
from trade_stream.object_format import CODEC_EVENTS, CODEC_SQLITE_FILE, ObjectReader
from trade_stream.progress import Progress, no_progress
from trade_stream.schema import DatabaseSchema, quote_ident
from trade_stream.segments import decode_chunks
from trade_stream.store import BackupStore


@dataclass
class RestoreResult:
    target: str
    first_seq: int
    last_seq: int
    last_ts: int | None
    rows: int
    events: int
    bytes: int
    seconds: float
    full: str
    incrementals: list[str]
    tables: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    config: list[dict[str, Any]] = field(default_factory=list)  # configuration restored beside it

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = format_ts(self.last_ts) if self.last_ts else None
        return data


def check_target(target: DatabaseService, force: bool) -> None:
    if not target.is_empty() and not force:
        raise BadInputError(f"restore target {target.path} is not empty (use --force to replace it)")
    parent = target.path.absolute().parent
    if not parent.is_dir():
        raise BadInputError(f"restore target directory does not exist: {parent}")


def _expect_codec(reader: ObjectReader, codec: str) -> None:
    if reader.header.codec != codec:
        raise IntegrityError(f"{reader.name}: unexpected codec {reader.header.codec!r}")


def decompress_full(store: BackupStore, entry: ManifestEntry, path: Path, progress: Progress) -> None:
    """The snapshot's database file at ``path``, from the first intact copy."""

    def consume(reader: ObjectReader) -> None:
        _expect_codec(reader, CODEC_SQLITE_FILE)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            done = 0
            for chunk in reader.body_chunks(4 << 20):
                out.write(chunk)
                done += len(chunk)
                progress("decompress", done, None)

    store.read_object(entry, consume)


def events_of(store: BackupStore, entry: ManifestEntry) -> Iterator[list[ChangeEvent]]:
    """Decoded event batches of an incremental. The object is verified (checksums, from the
    first intact copy) before the first event is handed out, so nothing unverified is
    ever applied; the decompressed body is spooled to bound memory."""

    def consume(reader: ObjectReader) -> Any:
        _expect_codec(reader, CODEC_EVENTS)
        spool = tempfile.SpooledTemporaryFile(max_size=64 << 20)
        for chunk in reader.body_chunks():
            spool.write(chunk)
        return spool

    spool = store.read_object(entry, consume)
    with spool:
        spool.seek(0)
        previous = entry.after_seq
        for batch in decode_chunks(iter(lambda: spool.read(1 << 20), b""), entry.object):
            for event in batch:
                if event.seq <= previous:
                    raise IntegrityError(f"{entry.object}: events out of order at seq {event.seq}")
                previous = event.seq
            yield batch
        if previous != entry.last_seq:
            raise IntegrityError(f"{entry.object}: ends at seq {previous}, manifest says {entry.last_seq}")


def _cut(batch: list[ChangeEvent], low: int, plan: Plan) -> tuple[list[ChangeEvent], bool]:
    """Events of the batch inside (low, target]; True when the target was reached."""
    target = plan.target
    selected = []
    for event in batch:
        if event.seq <= low:
            continue
        if target.seq is not None and event.seq > target.seq:
            return selected, True
        if target.ts is not None and event.ts > target.ts:
            return selected, True
        selected.append(event)
    return selected, False


def restore_sqlite(store: BackupStore, plan: Plan, target: DatabaseService, *, force: bool = False,
                   progress: Progress = no_progress) -> RestoreResult:
    started = time.perf_counter()
    check_target(target, force)
    final = target.path.absolute()
    temp = final.with_name(f".{final.name}.tradevault-restore-{uuid.uuid4().hex[:8]}")
    try:
        decompress_full(store, plan.full, temp, progress)
        conn = sqlite3.connect(temp, isolation_level=None)
        try:
            result = _replay(conn, store, plan, progress)
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()
        fsync_path(temp)
        for suffix in ("-wal", "-shm", "-journal"):
            Path(str(final) + suffix).unlink(missing_ok=True)
        os.replace(temp, final)
        fsync_path(final.parent)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(temp) + suffix).unlink(missing_ok=True)
    result.target = str(final)
    result.seconds = round(time.perf_counter() - started, 3)
    result.bytes = plan.full.bytes + sum(e.bytes for e in plan.incrementals if e.object in result.incrementals)
    return result


def _replay(conn: sqlite3.Connection, store: BackupStore, plan: Plan, progress: Progress) -> RestoreResult:
    conn.execute("PRAGMA journal_mode = OFF")  # a private temp file: atomicity comes from the rename
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("BEGIN")
    remove_capture_objects(conn)
    with user_triggers_suspended(conn):
        applier, used, last_seq, last_ts = _apply_plan(conn, store, plan, progress)
    # Row counts are recorded at the end of each object: check them when we stopped there.
    recorded = plan.full.tables if last_seq == plan.full.last_seq else None
    for entry in plan.incrementals:
        if entry.last_seq == last_seq and entry.object in used:
            recorded = entry.tables
    counts = _check_counts(conn, recorded, sorted(applier.tables))
    conn.execute("COMMIT")
    return RestoreResult(
        target="", first_seq=plan.full.last_seq, last_seq=last_seq, last_ts=last_ts,
        rows=sum(counts.values()), events=applier.applied, bytes=0, seconds=0.0,
        full=plan.full.object, incrementals=used, tables=counts,
    )


def _apply_plan(conn: sqlite3.Connection, store: BackupStore, plan: Plan,
                progress: Progress) -> tuple[SqliteApplier, list[str], int, int | None]:
    schema = DatabaseSchema.from_dict(full_schema(store, plan.full))
    applier = SqliteApplier(conn, schema)
    low = plan.full.last_seq
    last_seq, last_ts = low, plan.full.last_ts
    used: list[str] = []
    total = max(plan.stop_seq - low, 1)
    reached = False
    for entry in plan.incrementals:
        if reached:
            break
        used.append(entry.object)
        for batch in events_of(store, entry):
            if reached:
                break
            selected, reached = _cut(batch, low, plan)
            if selected:
                applier.apply(selected)
                last_seq, last_ts = selected[-1].seq, selected[-1].ts
                progress("replay", last_seq - low, total)
    return applier, used, last_seq, last_ts


def full_schema(store: BackupStore, entry: ManifestEntry) -> dict[str, Any]:
    """The schema recorded in a full backup's header."""
    for location in store.locations:
        try:
            with store.open_reader(location, entry) as reader:
                return reader.header.schema
        except (IntegrityError, StorageError, OSError):
            continue
    raise IntegrityError(f"{entry.object}: no readable copy in any location")


def _check_counts(conn: sqlite3.Connection, expected: dict[str, int] | None,
                  tables: list[str]) -> dict[str, int]:
    """Rows per table must equal what the backup recorded for the point restored to."""
    actual = DatabaseService.row_counts(conn, tables)
    for table, rows in (expected or {}).items():
        if actual.get(table) != rows:
            raise IntegrityError(f"restored table {table!r} has {actual.get(table)} rows, backups say {rows}")
    return actual
