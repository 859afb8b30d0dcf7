"""Full and incremental backups of a SQLite source into a BackupStore.

Full: SQLite's online backup API copies the database inside one read transaction (WAL
mode: writers are never blocked), the copy's own change log says exactly which seq the
copy is at, and the file is compressed on the fly into a snapshot object.
Incremental: the change log after the chain's position, sealed into one segment. The
change log is pruned only after the segment and its manifest entry are stored everywhere.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Collection

from trade_stream import manifest as mf
from trade_stream.errors import BadInputError, IntegrityError
from trade_stream.gc_pause import cyclic_gc_paused
from trade_stream.key_index import KeyIndexBuilder
from trade_stream.manifest import chain_position
from trade_stream.object_format import BODY_SIZED_FRAMES, CODEC_EVENTS, CODEC_SQLITE_FILE, ObjectWriter
from trade_stream.priority import at_low_priority
from trade_stream.progress import Progress, no_progress
from trade_stream.publish import BackupResult, Publisher, now_us
from trade_stream.segments import encode_chunk
from trade_stream.sqlite.capture import CHANGES, OP_UPDATE, SqliteCapture, SyncReport, sql_literal
from trade_stream.sqlite.database import DatabaseService
from trade_stream.sqlite.excluded_tables import empty_excluded
from trade_stream.storage.store import BackupStore

MEMORY_SCRATCH = Path("/dev/shm")


def memory_scratch(size: int) -> str | None:
    """A memory-backed directory for the full backup's transient copy, when the database fits
    in a quarter of the memory available and twice over in the directory. Why: written to
    the bot's disk, the copy's writeback sat in front of the bot's WAL fsyncs and measurably
    delayed its commits while copying; with the copy in memory it does not (figures in
    bench-results/)."""
    try:
        if not MEMORY_SCRATCH.is_dir() or not os.access(MEMORY_SCRATCH, os.W_OK):
            return None
        meminfo = Path("/proc/meminfo").read_text()
        available = int(next(line.split()[1] for line in meminfo.splitlines() if line.startswith("MemAvailable:")))
        free = shutil.disk_usage(MEMORY_SCRATCH).free
    except (OSError, StopIteration, ValueError):
        return None
    if size * 4 > available * 1024 or size * 2 > free:
        return None
    return str(MEMORY_SCRATCH)


def checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the WAL into the database file from here, off the trading path. While a copy
    held its read snapshot (or a prune wrote its deletions) the WAL grew, and otherwise the
    bot's next commit past ``wal_autocheckpoint`` pages would do this work inline. PASSIVE
    never waits for the bot and never blocks it; the bot's commits go on meanwhile."""
    try:
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.OperationalError:
        pass  # busy or read-only: the bot's own checkpoints still run


class BackupEngine:
    def __init__(
        self,
        db: DatabaseService,
        store: BackupStore,
        *,
        work_dir: str = "",
        level: int = 3,
        threads: int = -1,
        use_wal: bool = True,
        progress: Progress = no_progress,
        annotate: Callable[[], dict[str, str]] | None = None,
        copy_in_memory: bool = True,
    ) -> None:
        """``annotate``: see ``Publisher``."""
        self.db = db
        self.store = store
        self.publisher = Publisher(store, f"{db.dialect}:{store.source}:{db.url_text}", level=level,
                                   threads=threads, annotate=annotate)
        self.warnings = self.publisher.warnings
        self.capture = SqliteCapture(db)
        self.work_dir = work_dir or None
        self.use_wal = use_wal
        self.progress = progress
        self.copy_in_memory = copy_in_memory
        self.exclusive = self.publisher.exclusive

    # -- shared ----------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        self.db.require_exists()
        return self.db.connect()

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Called only once the request is known to be valid: bad input changes nothing."""
        if not self.use_wal:
            return
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode.lower() != "wal":
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as exc:
                self.warnings.append(f"could not switch {self.db.path} to WAL mode: {exc}")

    def prepare(self, conn: sqlite3.Connection) -> SyncReport | None:
        """Install capture, or re-synchronise it after a schema change."""
        if not self.capture.needs_sync(conn):
            self._use_wal(conn)
            return None
        self.db.select(conn)  # raises on a bad include list before anything is changed
        self._use_wal(conn)
        report = self.capture.sync(conn)
        self.warnings.extend(report.warnings)
        return report

    @property
    def database_identity(self) -> str:
        """The database file a full backup records it was taken from (``Publisher.shared_chain``)."""
        return str(self.db.path.resolve())

    # -- full ------------------------------------------------------------------------------
    def full(self) -> BackupResult:
        def low_priority_full() -> BackupResult:
            with self.exclusive():
                return self._full()

        return at_low_priority(low_priority_full)

    def _full(self) -> BackupResult:
        started = time.perf_counter()
        conn = self._connect()
        try:
            self.prepare(conn)
            caught_up, entries = self.store.catch_up_for_write()
            in_memory = self.copy_in_memory and not self.work_dir  # a configured work_dir is the user's choice
            scratch = memory_scratch(self.db.path.stat().st_size) if in_memory else None
            prefix = f"tradevault-full-{self.publisher.digest}-"
            # Under the host lock no other full backup of this source runs: a directory with
            # this prefix is what a killed one left (in memory, it would stay till a reboot).
            for stale in Path(scratch or self.work_dir or tempfile.gettempdir()).glob(f"{prefix}*"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp_dir = tempfile.mkdtemp(prefix=prefix, dir=scratch or self.work_dir)
            copy_path = Path(tmp_dir) / "snapshot.sqlite"
            try:
                self.progress("copy", 0, None)
                snapshot_ts = self._copy(conn, copy_path)
                info = self._inspect_copy(copy_path)
                shared = self.publisher.shared_chain(entries, self.database_identity)
                if shared:
                    self.warnings.append(shared)
                result = self._store_snapshot(copy_path, info, snapshot_ts, entries,
                                              entry_extra={"database": self.database_identity})
            finally:
                for leftover in Path(tmp_dir).glob("*"):
                    leftover.unlink()
                os.rmdir(tmp_dir)
        finally:
            conn.close()
        result.seconds = round(time.perf_counter() - started, 3)
        result.warnings = self.warnings
        result.catch_up = caught_up
        return result

    def _copy(self, conn: sqlite3.Connection, copy_path: Path) -> int:
        target = sqlite3.connect(copy_path)
        try:
            # One step: the whole copy comes from a single read transaction (consistent).
            conn.backup(target, pages=-1)
            snapshot_ts = now_us()
            target.execute("PRAGMA journal_mode = DELETE")
        finally:
            target.close()
        checkpoint(conn)
        return snapshot_ts

    def _inspect_copy(self, copy_path: Path) -> dict[str, Any]:
        copy = sqlite3.connect(copy_path, isolation_level=None)
        try:
            capture = SqliteCapture(self.db)
            seq = capture.last_seq(copy)
            schema = capture.schema_at(copy, seq)
            counts = DatabaseService.row_counts(copy, [t.name for t in schema.tables])
            capture_id = capture.meta(copy)["capture_id"]
            # Pending changes are already part of the copy's tables; zero their pages so the
            # snapshot does not carry them twice.
            copy.execute("PRAGMA secure_delete = ON")
            copy.execute(f"DELETE FROM {CHANGES}")
            # ...and nor the rows of tables left out of the backups (restored empty)
            empty_excluded(copy, [t.name for t in schema.tables])
        finally:
            copy.close()
        return {"seq": seq, "schema": schema, "counts": counts, "capture_id": capture_id}

    def store_full_file(self, path: Path, info: dict[str, Any], snapshot_ts: int,
                        origin: dict[str, Any], config: dict[str, str]) -> BackupResult:
        """A database file already at ``info["seq"]`` of the current chain, built from the
        store rather than copied from the source (a consolidation), stored as the next full
        backup; ``origin`` says what it was built from, ``config`` the config commits live at
        that point. The caller holds ``exclusive()``."""
        started = time.perf_counter()
        result = self._store_snapshot(path, info, snapshot_ts, self.store.entries_for_write(), origin,
                                      {"config": config}, {"database": self.database_identity})
        result.seconds = round(time.perf_counter() - started, 3)
        result.warnings = self.warnings
        return result

    def _store_snapshot(self, copy_path: Path, info: dict[str, Any], snapshot_ts: int,
                        entries: list[mf.ManifestEntry], origin: dict[str, Any] | None = None,
                        entry_fields: dict[str, Any] | None = None,
                        entry_extra: dict[str, Any] | None = None) -> BackupResult:
        n = entries[-1].n + 1 if entries else 1
        key = mf.object_key(n, mf.FULL)
        seq, schema, counts = info["seq"], info["schema"], info["counts"]
        extra = {"tables": counts, **({"origin": origin} if origin else {}), **(entry_extra or {})}
        # sized frames: a restore decompresses several at once
        header = self.publisher.header(mf.FULL, CODEC_SQLITE_FILE, seq, seq, schema.to_dict(), info["capture_id"],
                              snapshot_ts, snapshot_ts, sum(counts.values()), extra, body=BODY_SIZED_FRAMES)
        size_in = copy_path.stat().st_size

        def write_body(writer: ObjectWriter) -> None:
            done = 0
            with open(copy_path, "rb") as handle:
                while chunk := handle.read(4 << 20):
                    writer.write(chunk)
                    done += len(chunk)
                    self.progress("compress", done, size_in)

        stored_object = self.publisher.store_object(key, header, write_body)
        entry, stored = self.publisher.publish_entry(
            stored_object, entries[-1] if entries else None,
            n=n, kind=mf.FULL, object=key, capture_id=info["capture_id"], after_seq=seq, first_seq=seq,
            last_seq=seq, first_ts=snapshot_ts, last_ts=snapshot_ts, count=sum(counts.values()),
            schema_hash=schema.schema_hash(), tables=counts, **(entry_fields or {}),
        )
        return BackupResult.of(entry, stored)

    # -- incremental -----------------------------------------------------------------------
    def incremental(self, commit_points: Collection[int] = ()) -> BackupResult:
        """``commit_points``: seqs seen to end a committed transaction (the agent's watch);
        the events between two of them are one transaction for a point-in-time restore."""
        with self.exclusive(), cyclic_gc_paused():
            return self._incremental(commit_points)

    def _incremental(self, commit_points: Collection[int]) -> BackupResult:
        started = time.perf_counter()
        conn = self._connect()
        try:
            if not self.capture.is_installed(conn):
                raise BadInputError("change capture is not installed yet: run `tradevault backup full` first")
            self.prepare(conn)
            caught_up, entries = self.store.catch_up_for_write()
            covered = chain_position(entries)
            capture_id = self.capture.meta(conn)["capture_id"]
            if covered is None:
                raise BadInputError("no full backup yet: run `tradevault backup full` first")
            self.publisher.require_capture(entries, capture_id, self.database_identity)
            result = self._seal(conn, entries, covered, capture_id, commit_points)
        finally:
            conn.close()
        result.seconds = round(time.perf_counter() - started, 3)
        result.warnings = self.warnings
        result.catch_up = caught_up
        return result

    def _row_counts_at(self, conn: sqlite3.Connection, entries: list[mf.ManifestEntry], capture_id: str,
                       covered: int, upto: int) -> dict[str, int]:
        """Rows per table at ``upto``. Counting a big table costs every incremental tens of
        milliseconds, so a table whose only events since ``covered`` are updates that keep
        their key, and that has no other UNIQUE index (through which an UPDATE OR REPLACE
        could drop a row silently), keeps the count recorded at ``covered``."""
        tables = [t for t in self.capture.schema_at(conn, upto).tables]
        known = next((dict(e.tables) for e in reversed(entries)
                      if e.capture_id == capture_id and e.last_seq == covered and e.tables), {})
        same_key = " ".join(
            f"WHEN {sql_literal(t.name)} THEN " + " AND ".join(f"k{i} IS c{c}" for i, c in enumerate(t.key_indexes()))
            for t in tables if t.primary_key
        )  # a keyless table's update may change anything: it is always counted again
        kept = f"CASE tbl {same_key} ELSE 0 END" if same_key else "0"
        touched = dict(conn.execute(
            f"SELECT tbl, max(op != {OP_UPDATE} OR NOT ({kept})) FROM {CHANGES} "
            "WHERE seq > ? AND seq <= ? GROUP BY tbl", (covered, upto),
        ).fetchall())
        counts = {}
        for table in tables:
            name = table.name
            if name in known and not touched.get(name, 0) and not DatabaseService.unique_besides_key(conn, name):
                counts[name] = known[name]
            else:
                counts.update(DatabaseService.row_counts(conn, [name]))
        return counts

    def _seal(self, conn: sqlite3.Connection, entries: list[mf.ManifestEntry], covered: int,
              capture_id: str, commit_points: Collection[int]) -> BackupResult:
        locations = [loc.name for loc in self.store.locations]
        conn.execute("BEGIN")  # one read snapshot for the log and its column history
        try:
            upto = self.capture.last_seq(conn)
            if upto <= covered:
                conn.execute("COMMIT")
                return BackupResult(mf.INCREMENTAL, None, None, covered, 0, 0, 0.0, locations,
                                    skipped="no changes since the last backup")
            oldest = conn.execute(f"SELECT min(seq) FROM {CHANGES}").fetchone()[0]
            if oldest is None or oldest > covered + 1:
                # The log moved on past the chain (events lost before they were stored): the
                # chain can only go on from a full backup that already holds them.
                fulls = [e.last_seq for e in entries if e.kind == mf.FULL and e.capture_id == capture_id
                         and e.last_seq >= covered and oldest is not None and e.last_seq >= oldest - 1]
                if not fulls:
                    raise IntegrityError(
                        f"change log no longer holds events after seq {covered} (oldest is {oldest}): "
                        "take a full backup"
                    )
                covered = max(fulls)
                if upto <= covered:
                    conn.execute("COMMIT")
                    return BackupResult(mf.INCREMENTAL, None, None, covered, 0, 0, 0.0, locations,
                                        skipped="no changes since the last full backup")
            schema = self.capture.schema_at(conn, covered)
            n = entries[-1].n + 1
            key = mf.object_key(n, mf.INCREMENTAL)
            extra = {"sequences": DatabaseService.autoincrement_counters(conn),
                     "objects": DatabaseService.database_objects(conn),
                     "pragmas": DatabaseService.header_pragmas(conn)}
            count, first_seq, first_ts, last_ts = 0, None, None, None
            keys = KeyIndexBuilder(schema.tables)
            # the body is compressed ahead: the header that precedes it carries the key index
            with self.publisher.body_ahead(self.work_dir) as body:
                last = None
                for batch in self.capture.read(conn, covered, upto, boundaries=commit_points):
                    body.write(encode_chunk(batch, plain=True))  # SQLite values are plain
                    keys.add(batch)
                    if first_seq is None:
                        first_seq, first_ts = batch[0].seq, batch[0].ts
                    last_ts, last = batch[-1].ts, batch[-1].seq
                    count += len(batch)
                    self.progress("seal", count, upto - covered)
                if last != upto:
                    raise IntegrityError(f"change log ended before seq {upto}")
                body.finish()
                # Rows per table at ``upto`` (same read snapshot): restore checks against them.
                per_table = self._row_counts_at(conn, entries, capture_id, covered, upto)
                extra["keys"] = keys.to_header()
                header = self.publisher.header(mf.INCREMENTAL, CODEC_EVENTS, covered, upto, schema.to_dict(),
                                               capture_id, first_ts, last_ts, count, extra, body=BODY_SIZED_FRAMES)
                stored_object = body.store(key, header)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        entry, stored = self.publisher.publish_entry(
            stored_object, entries[-1],
            n=n, kind=mf.INCREMENTAL, object=key, capture_id=capture_id, after_seq=covered,
            first_seq=first_seq or upto, last_seq=upto, first_ts=first_ts, last_ts=last_ts, count=count,
            schema_hash=schema.schema_hash(), tables=per_table,
        )
        if len(stored) == len(self.store.locations):
            # Only what every location holds leaves the change log; while a location is
            # behind, the log keeps the events (a later seal prunes them).
            self.capture.prune(conn, upto)
            checkpoint(conn)
        return BackupResult.of(entry, stored)
