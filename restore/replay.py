"""Replay a plan into a fresh SQLite database, atomically.

Everything happens in a hidden temporary file next to the target: the full snapshot is
decompressed into it, tradevault's capture objects are removed from it, the incremental
events are applied, row counts are checked against what the backups say, and only then
is the file renamed over the target. A failure at any point leaves the target untouched.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from restore.planner import Plan, format_ts
from restore.read_ahead import ReadAhead
from restore.sqlite.apply import SqliteApplier, user_triggers_suspended
from trade_stream.sqlite.capture import remove_capture_objects
from trade_stream.sqlite.database import DatabaseService
from trade_stream.durable import replacing_sqlite_file
from trade_stream.errors import BadInputError, IntegrityError
from trade_stream.events import SCHEMA, ChangeEvent
from trade_stream.gc_pause import cyclic_gc_paused
from restore.net_effect import WINDOW, NetEffect
from trade_stream.progress import Progress, no_progress
from trade_stream.schema import DatabaseSchema
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import decompress_full, events_of


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
    with replacing_sqlite_file(target.path) as temp:
        schema = DatabaseSchema.from_dict(decompress_full(store, plan.full, temp, progress))
        conn = sqlite3.connect(temp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = OFF")  # a private temp file: the rename is the commit
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute("PRAGMA cache_size = -32768")  # 32 MiB: replayed updates hit pages all over
            conn.execute("BEGIN")
            remove_capture_objects(conn)
            applier = SqliteApplier(conn, schema)
            with user_triggers_suspended(conn):
                result = replay_events(store, plan, applier, progress)
            commit_checked(conn, result, sorted(applier.tables), snapshot_file=True)
        finally:
            conn.close()
    return finished(result, str(target.path.absolute()), plan, started)


def commit_checked(conn: sqlite3.Connection, result: RestoreResult, tables: list[str], *,
                   snapshot_file: bool = False) -> None:
    """Row counts checked against what the backups recorded, then the private file is
    committed and switched to WAL, the mode a trading bot's database runs in.
    ``snapshot_file``: the file is a decompressed SQLite snapshot; with no event replayed it
    is byte for byte the file whose checksum was just verified and whose rows were counted
    when it was taken, so counting again would prove nothing."""
    unchanged = snapshot_file and result.events == 0 and result.tables is not None
    if not (unchanged and sorted(result.tables) == tables):
        result.tables = _check_counts(conn, result.tables, tables)
    result.rows = sum(result.tables.values())
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = WAL")


def finished(result: RestoreResult, target: str, plan: Plan, started: float) -> RestoreResult:
    """The summary every restore reports (the contract's target, seconds and bytes)."""
    result.target = target
    result.seconds = round(time.perf_counter() - started, 3)
    result.bytes = plan.full.bytes + sum(e.bytes for e in plan.incrementals if e.object in result.incrementals)
    return result


class Step(NamedTuple):
    """One step of a replay: events to apply now (one table's, or a lone SCHEMA event), an
    incremental being read, or how far reading has got (events, last seq, last ts)."""

    ready: list[ChangeEvent] | None = None
    used: str | None = None
    reached: tuple[int, int, int | None] | None = None
    prepared: Any = None  # ``ready`` as the applier's ``prepare`` worked it out ahead
    events: int = 0  # how many events ``prepared`` holds (their ``ready`` list is let go)


def replay_steps(store: BackupStore, plan: Plan, fold_key: Callable[[str], list[int] | None]) -> Iterator[Step]:
    """The plan's events after its full backup, read (verified, decoded), cut at the target
    and folded (``fold_key``, see net_effect). A SCHEMA step must be applied before the
    next step is made: folding what follows asks ``fold_key`` about the table it changed."""
    low = plan.full.last_seq
    net = NetEffect(fold_key)
    reached = False
    for entry in plan.incrementals:
        if reached:
            break
        yield Step(used=entry.object)
        for batch in events_of(store, entry):
            selected, reached = _cut(batch, low, plan)
            if selected:
                # (a generator expression: a loop variable here would keep the last list
                # alive while the next window is folded)
                yield from (Step(ready=ready) for ready in net.add(selected))
                yield Step(reached=(len(selected), selected[-1].seq, selected[-1].ts))
            if reached:
                break
    yield from (Step(ready=ready) for ready in net.drain())


def steps_ahead(store: BackupStore, plan: Plan, applier: Any, touched: set[str] | None = None) -> ReadAhead[Step]:
    """``replay_steps`` made by a thread of its own, up to two folding windows ahead (for
    appliers that mostly wait on a server; see read_ahead). Start it before loading the
    full backup; pass it to ``replay_events`` as ``steps``. ``touched`` collects the
    tables the events change, complete once the producer has finished."""
    return ReadAhead(_prepared(replay_steps(store, plan, _fold_key(applier)), applier, touched), limit=2 * WINDOW,
                     weight=lambda step: step.events or (len(step.ready) if step.ready else 0),
                     barrier=lambda step: bool(step.ready) and step.ready[0].op == SCHEMA)


def _prepared(steps: Iterator[Step], applier: Any, touched: set[str] | None = None) -> Iterator[Step]:
    """Steps with what the applier can work out ahead (``prepare``, optional) done."""
    prepare = getattr(applier, "prepare", None)
    for step in steps:
        if step.ready:
            if touched is not None:
                touched.add(step.ready[0].table)  # a step holds one table's events
            prepared = prepare(step.ready) if prepare is not None else None
            if prepared is not None:  # the applier needs only this: the events can go
                step = Step(prepared=prepared, events=len(step.ready))
            prepared = None
        yield step
        del step  # not held while the next one is made (nor by the consumer's loop below)


def _fold_key(applier: Any) -> Callable[[str], list[int] | None]:
    return getattr(applier, "fold_key", lambda table: None)


def replay_events(store: BackupStore, plan: Plan, applier: Any, progress: Progress,
                  steps: Iterable[Step] | None = None) -> RestoreResult:
    """Apply the plan's events after its full backup with any applier (``apply``, and
    ``fold_key`` when its rows may be replayed folded), for every target dialect; ``steps``:
    made ahead (``steps_ahead``) instead of inline.
    ``result.tables`` holds the row counts the backups recorded for the point reached, or
    None when that point is inside an object."""
    with cyclic_gc_paused():
        return _apply_steps(plan, applier, replay_steps(store, plan, _fold_key(applier)) if steps is None else steps,
                            progress)


def _apply_steps(plan: Plan, applier: Any, steps: Iterable[Step], progress: Progress) -> RestoreResult:
    low = plan.full.last_seq
    last_seq, last_ts = low, plan.full.last_ts
    used: list[str] = []
    total = max(plan.stop_seq - low, 1)
    replayed = 0
    for step in steps:
        if step.prepared is not None:
            applier.apply_prepared(step.prepared)
        elif step.ready:
            applier.apply(step.ready)
        elif step.used:
            used.append(step.used)
        elif step.reached:
            count, last_seq, last_ts = step.reached
            replayed += count
            progress("replay", last_seq - low, total)
        del step  # a window's rows are not kept while the next one is waited for
    recorded: dict[str, int] | None = plan.full.tables if last_seq == plan.full.last_seq else None
    for entry in plan.incrementals:
        if entry.last_seq == last_seq and entry.object in used:
            recorded = entry.tables
    return RestoreResult(
        target="", first_seq=plan.full.last_seq, last_seq=last_seq, last_ts=last_ts, rows=0,
        events=replayed, bytes=0, seconds=0.0, full=plan.full.object, incrementals=used,
        tables=recorded,  # type: ignore[arg-type]
    )


def _check_counts(conn: sqlite3.Connection, expected: dict[str, int] | None,
                  tables: list[str]) -> dict[str, int]:
    return compare_counts(DatabaseService.row_counts(conn, tables), expected)


def compare_counts(actual: dict[str, int], expected: dict[str, int] | None) -> dict[str, int]:
    """Rows per table must equal what the backup recorded for the point restored to
    (None: the point is inside an object, where no count was recorded)."""
    for table, rows in (expected or {}).items():
        if actual.get(table) != rows:
            raise IntegrityError(f"restored table {table!r} has {actual.get(table)} rows, backups say {rows}")
    return actual
