"""The replay loop every restore target shares: the plan's incremental events after its
full backup, cut at the target point, folded per window (net_effect), handed to an
``Applier`` step by step (inline, or made ahead by a thread: read_ahead), and the result
every restore reports."""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Callable, Iterable, Iterator, NamedTuple

from restore.applier import Applier
from restore.net_effect import WINDOW, NetEffect
from restore.planner import Plan, Target, format_ts
from restore.read_ahead import ReadAhead
from trade_stream.errors import IntegrityError
from trade_stream.events import SCHEMA, ChangeEvent
from trade_stream.gc_pause import cyclic_gc_paused
from trade_stream.manifest import ManifestEntry
from trade_stream.progress import Progress
from trade_stream.segments import decode_chunks, encode_chunk
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import events_of


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
    #: what the restore could not give back as it was: a restore into another dialect's
    #: mapping decisions, what a partial restore left out, a table the backups left out
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = format_ts(self.last_ts) if self.last_ts else None
        return data


class TransactionCut:
    """Cuts the event stream at the target point without ever splitting a transaction: a
    point in time is a committed state. A transaction (consecutive events with one ``tx``)
    is kept only when its last event is at or before the target (by seq, and by time: its
    last statement's time, which is as close to its commit as the stream knows), so a
    target inside a transaction's span snaps down to the end of the one before.

    A transaction is held until its end shows whether it fits; past ``hold`` events, what
    is held moves to a temporary file, so one huge transaction (a migration's UPDATE of
    every row) costs disk, not memory. Windows handed out hold fewer than ``2 * hold`` events."""

    def __init__(self, low: int, target: Target, hold: int = WINDOW // 2) -> None:
        self.low = low
        self.target = target
        self.hold = hold
        self.everything = target.seq is None and target.ts is None
        self.held: list[ChangeEvent] = []  # the transaction being read, not yet known complete
        self.last: ChangeEvent | None = None  # its last event so far
        self.spill: IO[bytes] | None = None  # its events before ``held``, when there are many
        self.reached = False

    def _fits(self, last: ChangeEvent) -> bool:
        return ((self.target.seq is None or last.seq <= self.target.seq)
                and (self.target.ts is None or last.ts <= self.target.ts))

    def feed(self, batch: list[ChangeEvent]) -> Iterator[list[ChangeEvent]]:
        """The complete transactions of ``batch`` (and of what came before) to apply."""
        low = self.low
        if self.everything:
            yield batch if batch and batch[0].seq > low else [e for e in batch if e.seq > low]
            return
        selected: list[ChangeEvent] = []
        for event in batch:
            if event.seq <= low:
                continue
            last = self.last
            if last is not None and event.tx != last.tx:
                if not self._fits(last):
                    self._drop()
                    self.reached = True
                    break
                if self.spill is not None:
                    if selected:
                        yield selected
                        selected = []
                    yield from self._release()
                else:
                    selected += self.held
                    self.held, self.last = [], None
                    if len(selected) >= self.hold:
                        yield selected
                        selected = []
            self.held.append(event)
            self.last = event
            if len(self.held) >= self.hold:
                self._spill()
        if selected:
            yield selected

    def whole(self, batch: list[ChangeEvent]) -> Iterator[list[ChangeEvent]]:
        """``feed`` for a batch known to fit whole (its incremental ends at or before the
        target; incrementals end between transactions): nothing is held."""
        yield from self._release()
        yield batch if batch and batch[0].seq > self.low else [e for e in batch if e.seq > self.low]

    def finish(self) -> Iterator[list[ChangeEvent]]:
        """At the end of the stream the transaction being read is complete."""
        if self.last is not None and self._fits(self.last):
            yield from self._release()
        else:
            self.reached = self.reached or self.last is not None
            self._drop()

    def _spill(self) -> None:
        if self.spill is None:
            self.spill = tempfile.TemporaryFile(prefix="tradevault-transaction-")
        self.spill.write(encode_chunk(self.held))
        self.held = []

    def _release(self) -> Iterator[list[ChangeEvent]]:
        held, spill = self.held, self.spill
        self.held, self.last, self.spill = [], None, None
        if spill is not None:
            with spill:
                spill.seek(0)
                yield from decode_chunks(iter(lambda: spill.read(1 << 20), b""), "held transaction")
        if held:
            yield held

    def _drop(self) -> None:
        if self.spill is not None:
            self.spill.close()
        self.held, self.last, self.spill = [], None, None


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
    next step is made: folding what follows asks ``fold_key`` about the table it changed.
    Events (SCHEMA ones too) of tables the plan leaves out are dropped here, after the cut:
    the point reached is the one a restore of every table reaches."""
    net = NetEffect(fold_key)
    tables = plan.tables
    for item in committed_events(store, plan.incrementals, plan.full.last_seq, plan.target):
        if isinstance(item, ManifestEntry):
            yield Step(used=item.object)
        else:
            yield from _folded(net, item, tables)
    yield from (Step(ready=ready) for ready in net.drain())


def committed_events(store: BackupStore, chain: list[ManifestEntry], low: int,
                     target: Target) -> Iterator[ManifestEntry | list[ChangeEvent]]:
    """The events of ``chain`` (incrementals in order) after ``low``, read (verified,
    decoded) and cut at ``target`` by a TransactionCut; each entry is handed out before its
    events, when it is opened. Every reader of a span of the chain (a restore, ``diff``)
    goes through this, so each cuts at the same committed point."""
    cut = TransactionCut(low, target)
    for entry in chain:
        if cut.reached:
            return
        yield entry
        # (by seq only: times need not grow with seqs, and the cut stops at the first
        # transaction past the target time, wherever the entry's last event lands)
        within = target.ts is None and (target.seq is None or entry.last_seq <= target.seq)
        for batch in events_of(store, entry):
            yield from (cut.whole(batch) if within else cut.feed(batch))
            if cut.reached:
                return
    yield from cut.finish()


def _folded(net: NetEffect, selected: list[ChangeEvent], tables: frozenset[str] | None) -> Iterator[Step]:
    """``selected`` folded; only the events of ``tables`` (None: all) are applied and
    counted, but the point reached is the last event's, whichever table it changed."""
    if selected:
        last = selected[-1]
        if tables is not None:
            selected = [e for e in selected if e.table in tables]
        # (a generator expression: a loop variable here would keep the last list alive
        # while the next window is folded)
        if selected:
            yield from (Step(ready=ready) for ready in net.add(selected))
        yield Step(reached=(len(selected), last.seq, last.ts))


def steps_ahead(store: BackupStore, plan: Plan, applier: Applier, touched: set[str] | None = None) -> ReadAhead[Step]:
    """``replay_steps`` made by a thread of its own, up to two folding windows ahead (for
    appliers that mostly wait on a server; see read_ahead). Start it before loading the
    full backup; pass it to ``replay_events`` as ``steps``. ``touched`` collects the
    tables the events change, complete once the producer has finished."""
    return ReadAhead(_prepared(replay_steps(store, plan, applier.fold_key), applier, touched), limit=2 * WINDOW,
                     weight=lambda step: step.events or (len(step.ready) if step.ready else 0),
                     barrier=lambda step: step.ready is not None and bool(step.ready) and step.ready[0].op == SCHEMA)


def _prepared(steps: Iterator[Step], applier: Applier, touched: set[str] | None = None) -> Iterator[Step]:
    """Steps with what the applier can work out ahead (``prepare``, optional) done."""
    for step in steps:
        if step.ready:
            if touched is not None:
                touched.add(step.ready[0].table)  # a step holds one table's events
            prepared = applier.prepare(step.ready)
            if prepared is not None:  # the applier needs only this: the events can go
                step = Step(prepared=prepared, events=len(step.ready))
            prepared = None
        yield step
        del step  # not held while the next one is made (nor by the consumer's loop below)


def replay_events(store: BackupStore, plan: Plan, applier: Applier, progress: Progress,
                  steps: Iterable[Step] | None = None) -> RestoreResult:
    """Apply the plan's events after its full backup with any applier (``apply``, and
    ``fold_key`` when its rows may be replayed folded), for every target dialect; ``steps``:
    made ahead (``steps_ahead``) instead of inline.
    ``result.tables`` holds the row counts the backups recorded for the point reached, or
    None when that point is inside an object."""
    with cyclic_gc_paused():
        return _apply_steps(plan, applier, replay_steps(store, plan, applier.fold_key) if steps is None else steps,
                            progress)


def _apply_steps(plan: Plan, applier: Applier, steps: Iterable[Step], progress: Progress) -> RestoreResult:
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
    if recorded is not None and plan.tables is not None:  # only the chosen tables are checked
        recorded = {table: rows for table, rows in recorded.items() if table in plan.tables}
    return RestoreResult(
        target="", first_seq=plan.full.last_seq, last_seq=last_seq, last_ts=last_ts, rows=0,
        events=replayed, bytes=0, seconds=0.0, full=plan.full.object, incrementals=used,
        tables=recorded,  # type: ignore[arg-type]
    )


def compare_counts(actual: dict[str, int], expected: dict[str, int] | None) -> dict[str, int]:
    """Rows per table must equal what the backup recorded for the point restored to
    (None: the point is inside an object, where no count was recorded)."""
    for table, rows in (expected or {}).items():
        if actual.get(table) != rows:
            raise IntegrityError(f"restored table {table!r} has {actual.get(table)} rows, backups say {rows}")
    return actual
