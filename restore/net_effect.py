"""Folding a window of change events to their net effect per row, for fast replay.

Replaying every event of a busy day re-applies the same rows again and again, at random
places of big tables. Within a window of events, only each row's net change matters: a
row updated ten times needs one update with its last image. Folded changes are handed out
per table in primary-key order (deletes, then updates, then inserts), so the target walks
each table's B-tree once, in order, instead of jumping around it.

Reordering rows is only safe where no other constraint ties rows together, so an applier
says per table whether it may fold (``fold_key`` returns the key's column positions, or
None: a secondary UNIQUE constraint, a collation other than binary, an unknown table).
Events of different tables commute on a restore target (foreign keys and triggers are off
while replaying), so each table is folded on its own. Anything that does not fold cleanly
(a key change, a row inserted then deleted, an unhashable key) flushes that table's folded
changes first and then passes through in stream order; a SCHEMA event flushes everything.

Every folded event keeps the checks of the original sequence: an update or delete is
emitted only for a row that existed before the window, an insert only for one that was
inserted (or deleted, then inserted) inside it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from trade_stream.events import DELETE, INSERT, SCHEMA, SNAPSHOT, UPDATE, ChangeEvent

FoldKey = Callable[[str], "list[int] | None"]
WINDOW = 50_000  # events folded at most at once: bounds memory (a few hundred bytes each)

_INSERTS = (INSERT, SNAPSHOT)


class _Table:
    """One table's events of the window: ``ordered`` is final (apply order), ``folded``
    maps a key (the value itself for a one-column key) to its (first, last) event."""

    def __init__(self, key_indexes: list[int] | None) -> None:
        self.key_indexes = key_indexes
        self.single = key_indexes is not None and len(key_indexes) == 1
        self.ordered: list[ChangeEvent] = []
        self.folded: dict[Any, tuple[ChangeEvent, ChangeEvent]] = {}

    def settle(self) -> None:
        """Move the folded rows, in key order, behind the events already settled."""
        folded = self.folded
        if not folded:
            return
        try:
            keys: Any = sorted(folded)
        except TypeError:  # keys of mixed types: any order is right, sorted is only faster
            keys = list(folded)
        deletes, updates, inserts = [], [], []
        for key in keys:
            first, last = folded[key]
            op = last.op
            if first is last and op == UPDATE:  # by far the most common: a row updated once
                updates.append(last)
            elif op == DELETE:
                deletes.append(first if first.op == DELETE else last)
            elif first.op == UPDATE:
                updates.append(last if op == UPDATE else _as(last, UPDATE))
            elif first.op == DELETE:
                deletes.append(first)
                inserts.append(_as(last, INSERT))
            else:
                inserts.append(last if op == INSERT else _as(last, INSERT))
        self.ordered += deletes
        self.ordered += updates
        self.ordered += inserts
        self.folded = {}


def _as(event: ChangeEvent, op: str) -> ChangeEvent:
    """The event's row as another operation (its key is the row's: keys never change here)."""
    return ChangeEvent(event.seq, event.tx, event.ts, event.table, op, event.key, event.row)


class NetEffect:
    """Feed events in stream order with ``add``; apply what it yields, in order, then what
    ``drain`` yields at the end. Yielded lists belong to one table each (or are a lone
    SCHEMA event)."""

    def __init__(self, fold_key: FoldKey, window: int = WINDOW) -> None:
        self.fold_key = fold_key
        self.window = window
        self._tables: dict[str, _Table] = {}
        self._held = 0

    def add(self, events: list[ChangeEvent]) -> Iterator[list[ChangeEvent]]:
        for event in events:
            if event.op == SCHEMA:
                yield from self.drain()
                yield [event]
                continue
            state = self._tables.get(event.table)  # not cached: drain replaces the dict
            if state is None:
                state = self._tables[event.table] = _Table(self.fold_key(event.table))
            self._fold(state, event)
            self._held += 1
            if self._held >= self.window:
                yield from self.drain()

    def drain(self) -> Iterator[list[ChangeEvent]]:
        """Everything held, table by table."""
        tables, self._tables, self._held = self._tables, {}, 0
        for state in tables.values():
            state.settle()
            if state.ordered:
                yield state.ordered

    @staticmethod
    def _fold(state: _Table, event: ChangeEvent) -> None:
        indexes = state.key_indexes
        if indexes is None or not event.key:
            state.ordered.append(event)
            return
        op, row = event.op, event.row
        try:
            if state.single:
                key: Any = event.key[0]
                moved = op == UPDATE and row is not None and row[indexes[0]] != key
            else:
                key = tuple(event.key)
                moved = op == UPDATE and row is not None and tuple(row[i] for i in indexes) != key
            held = state.folded.get(key)
        except TypeError:  # an unhashable key value: this table replays in stream order
            state.settle()
            state.key_indexes, state.single = None, False
            state.ordered.append(event)
            return
        if moved:
            state.settle()  # the key itself changes: rows of this table meet in order again
            state.ordered.append(event)
        elif held is None:
            state.folded[key] = (event, event)
        elif op == DELETE and held[0].op in _INSERTS:
            # Inserted inside the window, now deleted: whether a row was there before is
            # unknown, so the insert is applied (settled) and the delete starts afresh.
            state.settle()
            state.folded[key] = (event, event)
        else:
            state.folded[key] = (held[0], event)


class FoldingApplier:
    """Wraps an applier (``apply``, optional ``fold_key``): events given to ``apply`` reach
    it folded; ``finish`` applies what is still held, and must run before committing."""

    def __init__(self, applier: Any, window: int = WINDOW) -> None:
        self.applier = applier
        self._net = NetEffect(getattr(applier, "fold_key", lambda table: None), window)

    def apply(self, events: list[ChangeEvent]) -> None:
        for ready in self._net.add(events):
            self.applier.apply(ready)

    def finish(self) -> None:
        for ready in self._net.drain():
            self.applier.apply(ready)
