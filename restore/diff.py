"""``tradevault diff``: what changed between two committed points, per table, by net effect.

Only the incrementals between the two points are read. Each row's first and last event
in the window say what happened to it: a row whose first event is an insert did not exist
at the earlier point, one whose first event is an update or delete did; its last event
says whether it exists at the later point. So a row inserted and deleted inside the window
counts nowhere, and a row deleted and inserted again counts as updated. A row that is
present at both points and was written in between counts as updated, even when it was
set back to its old values. An update that changes a row's key is a delete of the old key
and an insert of the new one. A table without a primary key is a multiset: rows in and
rows out, never "updated".

A schema change recreates a table in the stream (its SCHEMA event, then a SNAPSHOT of each
row it holds): every row before it is gone unless a snapshot brings it back, those of the
window's start that no event names included (a row a migration's rebuild lost, or the
application deleted before the resynchronisation). Before-images (``--rows``), rows
restated by a resynchronisation (whose existence before the window the events cannot
tell), and a recreated table's rows at the start come from the earlier point's
materialised state (``restore.point_cache``).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from primitives.sqlite_files import open_read_only
from restore.planner import Target
from restore.point_cache import PointCache
from restore.replay import committed_events
from restore.type_mapping import key_mapper, pg_value_converters, sqlite_row_reader
from trade_stream.errors import BadInputError, IntegrityError
from trade_stream.events import DELETE, INSERT, SCHEMA, SNAPSHOT, UPDATE, ChangeEvent, runs
from trade_stream.gc_pause import cyclic_gc_paused
from trade_stream.key_index import key_bytes
from trade_stream.manifest import FULL, INCREMENTAL, ManifestEntry
from trade_stream.schema import TableSchema, quote_ident
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import header_of


@dataclass
class RowChange:
    op: str  # inserted | updated | deleted
    key: dict[str, Any]
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass
class TableDiff:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    schema_changed: bool = False
    rows: list[RowChange] | None = None

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"inserted": self.inserted, "updated": self.updated, "deleted": self.deleted}
        if self.schema_changed:
            out["schema_changed"] = True
        if self.rows is not None:
            out["rows"] = [{"op": r.op, "key": _plain(r.key, value), "before": _plain(r.before, value),
                            "after": _plain(r.after, value)} for r in self.rows]
        return out


def _plain(row: dict[str, Any] | None, value: Callable[[Any], Any]) -> dict[str, Any] | None:
    return None if row is None else {k: value(v) for k, v in row.items()}


@dataclass
class Diff:
    from_seq: int
    to_seq: int
    tables: dict[str, TableDiff] = field(default_factory=dict)
    read: list[str] = field(default_factory=list)  # objects read

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {"from_seq": self.from_seq, "to_seq": self.to_seq,
                "tables": {name: t.to_json(value) for name, t in sorted(self.tables.items())}}


# -- folding (pure) -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Unhashable:
    """The identity of a key whose values cannot be hashed (an array): its canonical text."""

    text: bytes


class _Keyed:
    """One keyed table's window: each key's last operation (``last``), the keys whose first
    operation was an insert (``born``: not there before the window) or a resynchronised
    snapshot (``unknown``: the events cannot tell), and with ``rows`` the last image (and
    its columns). Every other key was there before (its first operation was an update or
    a delete). A run of events of one operation is folded in bulk, by dict and set
    operations in C, with as few passes over the events as can be: per event in Python a
    busy window cost more than reading it."""

    def __init__(self, table: TableSchema, rows: bool) -> None:
        self.last: dict[Any, str] = {}
        self.born: set[Any] = set()
        self.unknown: set[Any] = set()
        self.images: dict[Any, tuple[list[Any] | None, list[str]]] | None = {} if rows else None
        self.odd: dict[Any, list[Any]] = {}  # key values of _Unhashable identities
        self.cleared = False  # recreated in the window: a row of the start not seen since is gone
        self.schema(table)

    def schema(self, table: TableSchema) -> None:
        self.columns = table.column_names
        self.positions = table.key_indexes()
        self.key_columns = list(table.primary_key)
        self.single = len(self.positions) == 1

    def key_values(self, identity: Any) -> list[Any]:
        if isinstance(identity, _Unhashable):
            return self.odd[identity]
        return [identity] if self.single else list(identity)

    def clear(self) -> None:
        """The table was recreated (a schema change: ``SCHEMA``, then ``SNAPSHOT`` events
        of the rows it holds): every row so far is gone unless a snapshot brings it back,
        and so is every row of the window's start that no event names."""
        for identity in self.last:
            self.last[identity] = DELETE
            if self.images is not None:
                self.images[identity] = (None, self.columns)
        self.cleared = True

    def existed(self, identity: Any) -> bool | None:
        """Whether the row was there at the window's start (None: the events cannot tell)."""
        return False if identity in self.born else None if identity in self.unknown else True

    def add_run(self, op: str, events: list[ChangeEvent]) -> None:
        """Events of this table, all ``op``, in stream order."""
        try:
            if self.single:
                ids: list[Any] = [e.key[0] for e in events]  # type: ignore[index]
            else:
                ids = [tuple(e.key) for e in events]  # type: ignore[arg-type]
            if op == UPDATE:
                p = self.positions
                moved = [e.row[p[0]] for e in events] if self.single else \
                    [tuple(e.row[i] for i in p) for e in events]  # type: ignore[index]
                if moved != ids:  # some update changes its row's key
                    raise ValueError
            folded = dict.fromkeys(ids, op)
        except (TypeError, IndexError, ValueError):  # no key, an unhashable one, a key that moves
            for event in events:
                self.add(event)
            return
        last = self.last
        if op == INSERT:
            self.born.update(folded.keys() - last.keys())
        elif op == SNAPSHOT:
            self.unknown.update(folded.keys() - last.keys())
        last.update(folded)
        if self.images is not None:
            columns = self.columns
            self.images.update(zip(ids, [(e.row, columns) for e in events]))

    def _identity(self, key: list[Any]) -> Any:
        identity: Any = key[0] if self.single else tuple(key)
        try:
            hash(identity)
        except TypeError:
            identity = _Unhashable(key_bytes(key))
            self.odd[identity] = key
        return identity

    def add(self, event: ChangeEvent) -> None:
        op, key = event.op, event.key
        if key is None:
            raise IntegrityError(f"{event.table}: event at seq {event.seq} has no key")
        if op == UPDATE and event.row is not None:
            new = [event.row[p] for p in self.positions]
            if new != key:  # the key changed: the old row goes, a new one comes
                self._note(self._identity(key), DELETE, None)
                self._note(self._identity(new), INSERT, event.row)
                return
        self._note(self._identity(key), op, event.row)

    def _note(self, identity: Any, op: str, row: list[Any] | None) -> None:
        if identity not in self.last:
            if op == INSERT:
                self.born.add(identity)
            elif op == SNAPSHOT:
                self.unknown.add(identity)
        self.last[identity] = op
        if self.images is not None:
            self.images[identity] = (row, self.columns)


class _Keyless:
    """A table without a primary key: each event's old row (its key) goes out, its new row
    comes in; rows are counted as a multiset."""

    def __init__(self, table: TableSchema) -> None:
        self.balance: Counter[Any] = Counter()
        self.rows: dict[Any, list[Any]] = {}
        self.cleared = False  # recreated in the window: the start's rows all went
        self.schema(table)

    def clear(self) -> None:
        """The table was recreated (see ``_Keyed.clear``): the balance starts again from
        an empty table, less the rows of the window's start (``_table_diff``)."""
        self.balance.clear()
        self.cleared = True

    def schema(self, table: TableSchema) -> None:
        self.columns = table.column_names

    def identity(self, row: list[Any]) -> Any:
        identity = key_bytes(row)
        self.rows.setdefault(identity, row)
        return identity

    def add(self, event: ChangeEvent) -> None:
        if event.op in (UPDATE, DELETE) and event.key is not None:
            self.balance[self.identity(event.key)] -= 1
        if event.op in (INSERT, SNAPSHOT, UPDATE) and event.row is not None:
            self.balance[self.identity(event.row)] += 1


class WindowFold:
    """Every event of the window, in stream order (``add``); ``tables`` then holds each
    table's fold. ``schemas``: the tables at the window's start."""

    def __init__(self, schemas: Iterable[TableSchema], rows: bool, only: set[str] | None = None) -> None:
        self.known = {t.name: t for t in schemas}
        self.rows = rows
        self.only = only
        self.tables: dict[str, _Keyed | _Keyless] = {}
        self.schema_changed: set[str] = set()

    def add(self, events: list[ChangeEvent]) -> None:
        kinds = {(e.table, e.op) for e in events}
        if len(kinds) == 1:  # the common batch: one table, one operation (one pass to see it)
            name, op = next(iter(kinds))
            self._add_run(name, op, events)
            return
        for name, op, run in runs(events):
            self._add_run(name, op, run)

    def _add_run(self, name: str, op: str, run: list[ChangeEvent]) -> None:
        only = self.only
        if only is not None and name not in only:
            return
        if op == SCHEMA:
            for event in run:
                self.schema_changed.add(name)
                if event.table_schema is not None:
                    self.known[name] = TableSchema.from_dict(event.table_schema)
                elif name not in self.known:  # the drop of a table the window never saw
                    continue
                cleared = self._fold(name, event.seq)
                cleared.schema(self.known[name])
                cleared.clear()
            return
        fold = self._fold(name, run[0].seq)
        if isinstance(fold, _Keyed):
            fold.add_run(op, run)
        else:
            for event in run:
                fold.add(event)


    def _fold(self, name: str, seq: int) -> _Keyed | _Keyless:
        fold = self.tables.get(name)
        if fold is None:
            schema = self.known.get(name)
            if schema is None:
                raise IntegrityError(f"event for unknown table {name!r} at seq {seq}")
            fold = self.tables[name] = _Keyed(schema, self.rows) if schema.primary_key else _Keyless(schema)
        return fold


# -- reading ------------------------------------------------------------------------------------
def _chain(entries: list[ManifestEntry]) -> list[ManifestEntry]:
    capture = entries[-1].capture_id
    return [e for e in entries if e.kind == INCREMENTAL and e.capture_id == capture]


def _boundaries(entries: list[ManifestEntry]) -> dict[int, int | None]:
    """Committed points the catalog itself names: where each object ends (seq -> time)."""
    capture = entries[-1].capture_id
    return {e.last_seq: e.last_ts for e in entries if e.capture_id == capture}


def resolve_point(store: BackupStore, entries: list[ManifestEntry], target: Target) -> int:
    """The seq of the last committed point at or before ``target``. A point where an object
    ends is read from the catalog; one inside an object reads that object."""
    if not entries:
        raise BadInputError("no backups found: run `tradevault backup full` first")
    ends = _boundaries(entries)
    chain = _chain(entries)
    oldest = min((e.last_seq for e in entries if e.kind == FULL and e.capture_id == entries[-1].capture_id),
                 default=None)
    if oldest is None:
        raise BadInputError("no full backup of the current capture: run `tradevault backup full`")
    newest = max(ends)
    if target.seq is not None:
        if target.seq > newest:
            raise BadInputError(f"seq {target.seq} is beyond the newest stored change (seq {newest})")
        if target.seq in ends:
            return target.seq
        inside = [e for e in chain if e.after_seq < target.seq < e.last_seq]
    else:
        assert target.ts is not None
        done = [s for s, ts in ends.items() if ts is not None and ts <= target.ts]
        inside = [e for e in chain if e.first_ts is not None and e.first_ts <= target.ts < (e.last_ts or 0)]
        if not inside:
            if not done:
                raise BadInputError(f"no stored point at or before {target.describe()}")
            return max(done)
    if not inside:
        raise BadInputError(f"no stored object holds {target.describe()} (the oldest point is seq {oldest})")
    entry = inside[0]
    point = entry.after_seq
    for item in committed_events(store, [entry], entry.after_seq, target):
        if isinstance(item, list) and item:
            point = item[-1].seq
    return point


def window_events(store: BackupStore, entries: list[ManifestEntry], low: int, to: Target,
                  read: list[str]) -> Iterator[list[ChangeEvent]]:
    """The committed events after ``low`` up to ``to``, in order, whole transactions only;
    the objects opened are added to ``read``."""
    chain = [e for e in _chain(entries) if e.last_seq > low]
    if chain and chain[0].after_seq > low:
        raise IntegrityError(f"no stored incremental holds the changes after seq {low} "
                             f"(the next one starts after seq {chain[0].after_seq})")
    span = []
    for entry in chain:  # the objects that may hold events up to ``to`` (as the planner picks them)
        if to.seq is not None and entry.after_seq >= to.seq:
            break
        if to.ts is not None and entry.first_ts is not None and entry.first_ts > to.ts:
            break
        span.append(entry)
    for item in committed_events(store, span, low, to):
        if isinstance(item, ManifestEntry):
            read.append(item.object)
        else:
            yield item


def diff_points(store: BackupStore, entries: list[ManifestEntry], start: Target, end: Target | None, *,
                cache: PointCache, rows: bool = False, tables: list[str] | None = None) -> Diff:
    from_seq = resolve_point(store, entries, start)
    end = end or Target()
    if end.seq is not None and end.seq < from_seq:
        raise BadInputError(f"the end point (seq {end.seq}) is before the start (seq {from_seq})")
    result = Diff(from_seq, from_seq)
    chain = [e for e in _chain(entries) if e.last_seq > from_seq]
    schema_entry = chain[0] if chain else None
    schemas = []
    if schema_entry is not None:
        schemas = [TableSchema.from_dict(t) for t in header_of(store, schema_entry).schema.get("tables", ())]
    known = {t.name for t in schemas}
    if tables:
        missing = [t for t in tables if t not in known]
        if missing:
            raise BadInputError(f"--table {missing[0]}: no such table at seq {from_seq} "
                                f"(tables: {', '.join(sorted(known))})")
    fold = WindowFold(schemas, rows, set(tables) if tables else None)
    with cyclic_gc_paused():  # the fold holds a row per key: collections would rescan it all
        for selected in window_events(store, entries, from_seq, end, result.read):
            if selected:
                fold.add(selected)
                result.to_seq = selected[-1].seq
    before = _BeforeState(cache, entries, from_seq, fold.known)
    try:
        for name, table_fold in fold.tables.items():
            result.tables[name] = _table_diff(name, table_fold, rows, before)
        for name in fold.schema_changed:
            result.tables.setdefault(name, TableDiff()).schema_changed = True
    finally:
        before.close()
    return result


def _table_diff(name: str, fold: _Keyed | _Keyless, rows: bool, before: "_BeforeState") -> TableDiff:
    out = TableDiff(rows=[] if rows else None)
    if isinstance(fold, _Keyless):
        if fold.cleared:  # recreated: the start's rows all went
            for row in before.every_row(name):
                fold.balance[fold.identity(list(row.values()))] -= 1
        for identity, balance in sorted(fold.balance.items()):
            if balance == 0:
                continue
            row = dict(zip(fold.columns, fold.rows[identity]))
            if balance > 0:
                out.inserted += balance
            else:
                out.deleted -= balance
            if out.rows is not None:
                change = RowChange("inserted" if balance > 0 else "deleted", row,
                                   None if balance > 0 else row, row if balance > 0 else None)
                out.rows.extend([change] * abs(balance))
        return out
    last = fold.last
    if not rows and not fold.unknown and not fold.cleared:  # counts alone, in C: by last operation, the born apart
        ends = Counter(last.values())
        born = Counter(map(last.__getitem__, fold.born))
        gone, born_gone = ends[DELETE], born[DELETE]
        out.inserted = sum(born.values()) - born_gone
        out.updated = sum(ends.values()) - gone - out.inserted
        out.deleted = gone - born_gone
        return out
    if fold.cleared:  # recreated: every row of the start is read; one that no event names is gone
        images = {key_bytes([row.get(c) for c in fold.key_columns]): row for row in before.every_row(name)}
        named = {key_bytes(fold.key_values(identity)) for identity in last}
        for key, row in images.items():
            if key not in named:
                out.deleted += 1
                if out.rows is not None:
                    out.rows.append(RowChange("deleted", {c: row[c] for c in fold.key_columns if c in row}, row, None))
    else:
        wanted = list(last) if rows else list(fold.unknown)
        images = before.rows(name, fold.key_columns, [fold.key_values(i) for i in wanted])
    for identity, final in _in_key_order(last):
        existed = fold.existed(identity)
        if existed is None:
            existed = key_bytes(fold.key_values(identity)) in images
        exists = final != DELETE
        if existed and exists:
            op = "updated"
            out.updated += 1
        elif exists:
            op = "inserted"
            out.inserted += 1
        elif existed:
            op = "deleted"
            out.deleted += 1
        else:
            continue
        if out.rows is not None:
            key = fold.key_values(identity)
            assert fold.images is not None
            image, columns = fold.images[identity]
            out.rows.append(RowChange(op, dict(zip(fold.key_columns, key)), images.get(key_bytes(key)),
                                      dict(zip(columns, image)) if image is not None and exists else None))
    if fold.cleared and out.rows:
        try:  # the start's rows that went, among the others
            out.rows.sort(key=lambda change: list(change.key.values()))
        except TypeError:
            pass
    return out


def _in_key_order(last: dict[Any, str]) -> list[tuple[Any, str]]:
    try:
        return sorted(last.items())
    except TypeError:
        return list(last.items())


class _BeforeState:
    """Rows at the window's start, from the materialised point (built on first use)."""

    def __init__(self, cache: PointCache, entries: list[ManifestEntry], seq: int,
                 schemas: dict[str, TableSchema]) -> None:
        self.cache, self.entries, self.seq, self.schemas = cache, entries, seq, schemas
        self.conn: sqlite3.Connection | None = None
        self._known: dict[str, list[str]] = {}  # each table's columns, read once

    def rows(self, table: str, key_columns: list[str], keys: list[list[Any]]) -> dict[bytes, dict[str, Any]]:
        """The rows of ``keys``, by the canonical bytes of their key."""
        if not keys:
            return {}
        schema = self._mapped(table)
        as_stored = key_mapper(schema, pg_value_converters(schema)) if schema else list
        select = (f"SELECT * FROM {quote_ident(table)} WHERE "
                  + " AND ".join(f"{quote_ident(c)} = ?" for c in key_columns))
        found: dict[bytes, dict[str, Any]] = {}
        for key in keys:
            for row in self._read(table, select, as_stored(key)):
                found[key_bytes([row[c] for c in key_columns if c in row])] = row
        return found

    def every_row(self, table: str) -> list[dict[str, Any]]:
        """Every row of the table (duplicates too)."""
        return self._read(table, f"SELECT * FROM {quote_ident(table)}", [])

    def _columns(self, table: str) -> list[str]:
        """The table's columns at the start (none: it was not there)."""
        if table in self._known:
            return self._known[table]
        if self.conn is None:
            point = self.cache.point(self.entries, Target(seq=self.seq))
            self.conn = open_read_only(point.path)
        try:
            columns = [r[1] for r in self.conn.execute(f"PRAGMA table_info({quote_ident(table)})")]
        except sqlite3.Error:
            columns = []
        self._known[table] = columns
        return columns

    def _mapped(self, table: str) -> TableSchema | None:
        """The PostgreSQL description whose values the point holds as SQLite's, if so."""
        schema = self.schemas.get(table)
        if schema is not None and schema.dialect == "postgresql" and schema.column_names == self._columns(table):
            return schema
        return None

    def _read(self, table: str, select: str, params: list[Any]) -> list[dict[str, Any]]:
        """Rows as the stream carries their values."""
        columns = self._columns(table)
        if not columns:
            return []
        schema = self._mapped(table)
        convert = sqlite_row_reader(schema) if schema else list
        assert self.conn is not None
        return [dict(zip(columns, convert(list(row)))) for row in self.conn.execute(select, params).fetchall()]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
