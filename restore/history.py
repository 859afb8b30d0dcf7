"""``tradevault history``: every version of one row, read from the stored backups.

The history starts from a full backup (the oldest one the chain continues from without a
gap, or with ``--from`` the newest one at or before that time) and walks every
incremental after it. Each incremental's header carries a key index
(``trade_stream.key_index``): an object whose index says it never touched the row is not
opened, so the history of one row over a long chain reads the headers and the few
objects that hold it. The row as the full backup held it comes from that backup,
materialised once into the point cache (``restore.point_cache``), and only when the chain
does not start the row's history with an insert.

A row is named by its primary key (every key column, once). A table without a primary key
is captured by its whole row: its rows are named by any of their columns' values, and the
history follows every row with those values.
"""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import msgspec

from primitives.sqlite_files import open_read_only
from restore.planner import Target, format_ts
from restore.point_cache import PointCache
from restore.type_mapping import sqlite_row_reader
from trade_stream.errors import BadInputError
from trade_stream.events import DELETE, INSERT, SCHEMA, SNAPSHOT, UPDATE, ChangeEvent
from trade_stream.gc_pause import cyclic_gc_paused
from trade_stream.key_index import KeyIndex, canonical, key_bytes
from trade_stream.manifest import FULL, INCREMENTAL, ManifestEntry, continuous_from
from trade_stream.object_format import ObjectHeader
from trade_stream.schema import DatabaseSchema, TableSchema, quote_ident
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import events_of, header_of

_NUMBERS = ("integer", "float", "numeric")
_PARSED_TIMES = ("datetime", "date", "time")
HEADER_READERS = 8


@dataclass
class Version:
    """One version of the row. ``seq`` is the change's own position; ``commit_seq`` and
    ``ts`` are those of the end of its transaction, the committed point where the version
    became visible (so ``query --seq commit_seq`` or ``--at`` that time shows it)."""

    seq: int
    ts: int
    op: str  # snapshot | insert | update | delete
    columns: list[str]
    row: list[Any] | None  # None after a delete
    commit_seq: int
    tx: int = 0  # (none for the full backup's row)
    recreated: bool = False  # the table was recreated here: the row is gone unless restated (_recreations)

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {"seq": self.seq, "commit_seq": self.commit_seq, "time": format_ts(self.ts, precise=True),
                "op": self.op,
                "row": None if self.row is None else {c: value(v) for c, v in zip(self.columns, self.row)}}


@dataclass
class History:
    table: str
    key: dict[str, str]
    full: ManifestEntry
    versions: list[Version] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)  # objects whose events were read
    skipped: int = 0  # incrementals their key index ruled out
    headers: int = 0  # headers read


# -- the row a user names -----------------------------------------------------------------------
def _user_value(text: str, family: str, dialect: str) -> tuple[str, Any]:
    """A command-line value in ``key_index.canonical`` form, read as its column's type, and
    that typed value as the backend decodes it (None when its stored form cannot be
    foreseen: then every event of the table is compared by canonical form). A SQLite
    column holds whatever was written to it, so there a value that does not read as the
    declared type is taken as text."""
    lowered = text.lower()
    try:
        if family == "integer":
            return canonical(int(text)), int(text)
        if family == "boolean" and lowered in ("true", "false", "t", "f", "1", "0"):
            return ("1", True) if lowered in ("true", "t", "1") else ("0", False)
        if family in _NUMBERS:
            number = decimal.Decimal(text)
            typed = (float(text) if family == "float" else number) if dialect == "postgresql" else None
            return canonical(number), typed
        if dialect == "postgresql" and family in _PARSED_TIMES:
            parse = {"datetime": dt.datetime, "date": dt.date, "time": dt.time}[family].fromisoformat
            moment = parse(text.replace("Z", "+00:00"))
            return canonical(moment), moment
        if dialect == "postgresql" and family == "uuid":
            return canonical(uuid.UUID(text)), uuid.UUID(text)
    except (ValueError, ArithmeticError):
        if dialect == "postgresql":
            raise BadInputError(f"--key value {text!r} is not a valid {family}") from None
    foreseen = family == "text" or (dialect == "postgresql" and family == "other")
    return text, text if foreseen else None


def _encoded_exactly(value: Any) -> bytes | None:
    if type(value) not in (int, str):  # (a bool is stored as 0/1 by SQLite, and others as tagged text)
        return None
    try:
        return msgspec.msgpack.encode(value)
    except (OverflowError, TypeError):  # an int past 64 bits travels as tagged text
        return None


def _stored_value(value: Any, family: str) -> str:
    """A stored value in canonical form; numbers kept as text (a SQLite NUMERIC column, or a
    decimal mapped to text) compare by value."""
    if isinstance(value, str) and family in _NUMBERS:
        try:
            return canonical(decimal.Decimal(value))
        except ArithmeticError:
            return value
    return canonical(value)


class RowMatcher:
    """Which events and stored rows are the named row."""

    def __init__(self, table: TableSchema, given: dict[str, str]) -> None:
        names = table.column_names
        unknown = [c for c in given if c not in names]
        if unknown:
            raise BadInputError(f"table {table.name!r} has no column {unknown[0]!r} (columns: {', '.join(names)})")
        self.table = table.name
        self.keyed = bool(table.primary_key)
        if self.keyed and set(given) != set(table.primary_key):
            raise BadInputError(f"--key must name the primary key of {table.name!r}: "
                                f"{', '.join(table.primary_key)} (one --key per column)")
        self.columns = list(table.primary_key) if self.keyed else list(given)
        families = {c.name: c.family for c in table.columns}
        self.families = [families[c] for c in self.columns]
        parsed = [_user_value(given[c], families[c], table.dialect) for c in self.columns]
        self.wanted = [text for text, _ in parsed]
        #: the first column's value as the backend decodes it, to pick out the few events
        #: worth comparing in full (``candidates``), or None: compare every event
        self.probe = parsed[0][1]
        #: the probe as msgpack writes it, when that is exact (an int, a str): then events
        #: are read with their rows left encoded, and a row is looked into as bytes
        self.encoded = _encoded_exactly(self.probe)
        self.key = key_bytes(self.wanted) if self.keyed else b""
        # The index holds keys as they were stored; a SQLite number column may hold a key
        # as text ("1.50"), which only a comparison by value finds: read every object then.
        self.indexed = self.keyed and not (table.dialect == "sqlite" and any(f in ("float", "numeric")
                                                                              for f in self.families))
        self._positions: list[int] = []

    def columns_changed(self, table: TableSchema) -> None:
        """The table's columns at this point of the stream."""
        names = table.column_names
        self._positions = [names.index(c) if c in names else -1 for c in self.columns]

    def _values_match(self, values: list[Any]) -> bool:
        return [_stored_value(v, f) for v, f in zip(values, self.families)] == self.wanted

    def row_matches(self, row: list[Any] | None) -> bool:
        if row is None or any(p < 0 or p >= len(row) for p in self._positions):
            return False
        return self._values_match([row[p] for p in self._positions])

    def event_matches(self, event: ChangeEvent) -> bool:
        if self.keyed:
            if event.key is not None and len(event.key) == len(self.wanted) and self._values_match(event.key):
                return True
            return event.op == UPDATE and self.row_matches(event.row)  # moved to this key
        # a keyless table: the old row (the event's key) or the new one has the values
        return self.row_matches(event.key) or self.row_matches(event.row)

    def candidates(self, batch: list[ChangeEvent]) -> list[int]:
        """Positions in ``batch`` of this table's SCHEMA events and of every event that may
        be the row: its key, or (an update moving a row to this key) its new row, holds the
        probe value. One pass in a comprehension: most events are of other rows."""
        table, probe, encoded = self.table, self.probe, self.encoded
        if probe is None:
            return [i for i, e in enumerate(batch) if e.table == table]
        if encoded is not None:  # KeyedEvents: the row still msgpack
            return [i for i, e in enumerate(batch) if e.table == table and (
                e.op == SCHEMA or (e.key is not None and probe in e.key) or encoded in bytes(e.row))]
        return [i for i, e in enumerate(batch) if e.table == table and (
            e.op == SCHEMA or (e.key is not None and probe in e.key) or (e.row is not None and probe in e.row))]

    def object_may_hold(self, index: KeyIndex) -> bool:
        return index.may_hold(self.table, self.key) if self.indexed else index.touches(self.table)


# -- which objects ------------------------------------------------------------------------------
def history_chain(entries: list[ManifestEntry], from_ts: int | None) -> tuple[ManifestEntry, list[ManifestEntry]]:
    """The full backup the history starts from and the incrementals after it. Without
    ``from_ts``: the oldest full of the newest capture that the incrementals continue from
    without a gap (retention may have thinned older days down to their full backups); with
    it, the newest full at or before that time, if the chain continues from it."""
    if not entries:
        raise BadInputError("no backups found: run `tradevault backup full` first")
    capture = entries[-1].capture_id
    oldest = continuous_from(entries)
    if oldest is None:
        raise BadInputError("no full backup of the current capture that the stored incrementals continue from: "
                            "run `tradevault backup full`")
    usable = [e for e in entries if e.kind == FULL and e.capture_id == capture and e.n >= oldest.n]
    if from_ts is not None:
        usable = [f for f in usable if (f.last_ts or 0) <= from_ts][-1:] or usable[:1]
    base = usable[0]
    return base, [e for e in entries if e.kind == INCREMENTAL and e.capture_id == capture
                  and e.last_seq > base.last_seq]


# -- walking them -------------------------------------------------------------------------------
def row_history(base: ManifestEntry, chain: list[ManifestEntry], headers: dict[int, ObjectHeader], table: str,
                given: dict[str, str], *, events: Callable[[ManifestEntry, bool], Any],
                snapshot_rows: Callable[[ManifestEntry, TableSchema, RowMatcher], list[list[Any]]],
                from_ts: int | None = None, to_ts: int | None = None) -> History:
    """The row's versions from ``base`` (a full backup) along ``chain`` (``history_chain``);
    ``headers``: every one of their object headers, by position; ``events`` reads an
    incremental (``stored_objects.events_of``, as KeyedEvents when its flag says so);
    ``snapshot_rows`` finds the matching rows in a full backup's state."""
    schemas = [DatabaseSchema.from_dict(headers[e.n].schema) for e in (base, *chain)]
    known = _table_schema(table, schemas) or _created_inside(table, chain, headers, events)
    if known is None:
        names = sorted({t.name for s in schemas for t in s.tables})
        raise BadInputError(f"no table {table!r} in the backups (tables: {', '.join(names)})")
    matcher = RowMatcher(known, given)
    result = History(table, dict(given), base, headers=1 + len(chain))
    versions: list[Version] = []
    for position, entry in enumerate(chain):
        if to_ts is not None and entry.first_ts is not None and entry.first_ts > to_ts:
            break
        head = headers[entry.n]
        index = KeyIndex(head.extra)
        after = headers[chain[position + 1].n] if position + 1 < len(chain) else None
        if not matcher.object_may_hold(index) and not _recreates(matcher, index, head, after):
            result.skipped += 1
            continue
        result.opened.append(entry.object)
        columns = _columns_at(head.schema, table)
        if columns is not None:
            matcher.columns_changed(columns)
        names = columns.column_names if columns is not None else []
        pending: list[Version] = []  # versions whose transaction may go on in the next batch
        keyed = matcher.encoded is not None
        for batch in events(entry, keyed):
            if pending:
                _continue_transaction(pending, batch)
            known_tx, end = None, 0
            for i in matcher.candidates(batch):
                event = batch[i].decoded() if keyed else batch[i]
                if event.seq <= base.last_seq:
                    continue
                if event.op == SCHEMA:
                    if event.table_schema is not None:
                        changed = TableSchema.from_dict(event.table_schema)
                        matcher.columns_changed(changed)
                        names = changed.column_names
                    if not matcher.keyed:
                        continue
                elif not matcher.event_matches(event):
                    continue
                if event.tx != known_tx or end < i:  # where its transaction ends (in this batch)
                    known_tx, end = event.tx, i
                    while end + 1 < len(batch) and batch[end + 1].tx == known_tx:
                        end += 1
                version = Version(event.seq, batch[end].ts, DELETE if event.op == SCHEMA else event.op, names,
                                  event.row, batch[end].seq, event.tx, recreated=event.op == SCHEMA)
                versions.append(version)
                if end == len(batch) - 1:
                    pending.append(version)
    if not versions or versions[0].op != INSERT:  # the row may have been in the full backup
        base_table = _columns_at(headers[base.n].schema, table)
        if base_table is not None:
            matcher.columns_changed(base_table)
            versions = [Version(base.last_seq, base.last_ts or 0, SNAPSHOT, base_table.column_names, row,
                                base.last_seq)
                        for row in snapshot_rows(base, base_table, matcher)] + versions
    result.versions = _window(_resynchronised(_recreations(versions), base.last_seq), from_ts, to_ts)
    return result


def _recreates(matcher: RowMatcher, index: KeyIndex, head: ObjectHeader, after: ObjectHeader | None) -> bool:
    """Whether an object whose key index rules the row out must still be read: it
    recreates the row's table (a schema change: SCHEMA, then a SNAPSHOT of each row the
    table holds), so a row it no longer holds has no event there, and is gone. An index
    written before it said so: the object touches the table and the table's description
    differs in the next header (the newest object: read)."""
    if not matcher.indexed:
        return False  # not ruled out by keys: object_may_hold read it whenever it touches the table
    said = index.recreates(matcher.table)
    if said is not None:
        return said
    if not index.touches(matcher.table):
        return False
    return after is None or _columns_at(head.schema, matcher.table) != _columns_at(after.schema, matcher.table)


def _recreations(versions: list[Version]) -> list[Version]:
    """Each recreation of the table (``Version.recreated``) is the row's delete unless the
    row's next version is a snapshot (the resynchronisation writes the table's SCHEMA
    event, then a SNAPSHOT of each of its rows, nothing else between); one when the row
    was not there says nothing."""
    out: list[Version] = []
    for i, version in enumerate(versions):
        if version.recreated:
            restated = i + 1 < len(versions) and versions[i + 1].op == SNAPSHOT
            if restated or not out or out[-1].op == DELETE:
                continue
        out.append(version)
    return out


def _continue_transaction(pending: list[Version], batch: list[ChangeEvent]) -> None:
    """Versions whose transaction reached the end of the previous batch end where it ends
    in this one (a transaction never spans two objects); ``pending`` is emptied once it is
    seen to end."""
    tx, end = pending[0].tx, -1
    while end + 1 < len(batch) and batch[end + 1].tx == tx:
        end += 1
    if end >= 0:
        for version in pending:
            version.commit_seq, version.ts = batch[end].seq, batch[end].ts
    if end < len(batch) - 1:
        pending.clear()


def _resynchronised(versions: list[Version], base_seq: int) -> list[Version]:
    """A row restated by a resynchronisation (after a schema change, so after the full
    backup's seq) continues its history as an update, or an insert when the history had no
    live row. The full backup's own rows stay snapshots (a keyless table may hold several
    equal ones)."""
    for i, version in enumerate(versions):
        if version.op == SNAPSHOT and version.seq > base_seq:
            version.op = UPDATE if i > 0 and versions[i - 1].op != DELETE else INSERT
    return versions


def _window(versions: list[Version], from_ts: int | None, to_ts: int | None) -> list[Version]:
    """Versions in [from, to], led by the one in force at ``from`` (the row as it was then)."""
    if to_ts is not None:
        versions = [v for v in versions if v.ts <= to_ts]
    if from_ts is None:
        return versions
    later = [v for v in versions if v.ts >= from_ts]
    earlier = [v for v in versions if v.ts < from_ts]
    return earlier[-1:] + later if earlier and earlier[-1].op != DELETE else later


def _table_schema(table: str, schemas: list[DatabaseSchema]) -> TableSchema | None:
    for schema in reversed(schemas):
        for candidate in schema.tables:
            if candidate.name == table:
                return candidate
    return None


def _created_inside(table: str, chain: list[ManifestEntry], headers: dict[int, ObjectHeader],
                    events: Callable[[ManifestEntry, bool], Any]) -> TableSchema | None:
    """A table no header describes was created inside an incremental (the newest one, or
    every later one ruled it out): its description is in that object's SCHEMA event."""
    for entry in reversed(chain):
        if not KeyIndex(headers[entry.n].extra).touches(table):
            continue
        found = None
        for batch in events(entry, True):
            for event in batch:
                if event.table == table and event.op == SCHEMA and event.table_schema is not None:
                    found = TableSchema.from_dict(event.table_schema)
        if found is not None:
            return found
    return None


def _columns_at(schema: dict[str, Any], table: str) -> TableSchema | None:
    for candidate in schema.get("tables", ()):
        if candidate.get("name") == table:
            return TableSchema.from_dict(candidate)
    return None


# -- the full backup's row ----------------------------------------------------------------------
def rows_in_state(path: Path, table: TableSchema, matcher: RowMatcher,
                  convert: Callable[[list[Any]], list[Any]] | None = None) -> list[list[Any]]:
    """The rows of ``table`` that ``matcher`` names, in the materialised state at ``path``
    (``convert``: its values back to the source's types, for a cross-dialect copy). The
    key's equality finds them through the table's index; a value SQLite compares
    differently (a number kept as text) falls back to reading the table."""
    conn = open_read_only(path)
    try:
        names = ", ".join(quote_ident(c) for c in table.column_names)
        where = " AND ".join(f"{quote_ident(c)} = ?" for c in matcher.columns)
        select = f"SELECT {names} FROM {quote_ident(table.name)}"
        try:
            rows = conn.execute(f"{select} WHERE {where}", _sql_values(matcher)).fetchall()
            if not rows and any(f not in ("integer", "text") for f in matcher.families):
                rows = conn.execute(select).fetchall()
        except sqlite3.OperationalError:  # the table is not there at that point
            return []
    finally:
        conn.close()
    found = []
    for row in rows:
        values = convert(list(row)) if convert is not None else list(row)
        if matcher.row_matches(values):
            found.append(values)
    return found


def _sql_values(matcher: RowMatcher) -> list[Any]:
    out: list[Any] = []
    for text, family in zip(matcher.wanted, matcher.families):
        if family == "integer":
            try:
                out.append(int(text))
                continue
            except ValueError:
                pass
        out.append(text)
    return out


def read_history(store: BackupStore, entries: list[ManifestEntry], table: str, given: dict[str, str],
                 cache: PointCache, *, from_ts: int | None = None, to_ts: int | None = None) -> History:
    """``row_history`` on a store: every header read once, all at once by several threads
    (on S3 each is a request's round trip), the full backup's row from its materialised
    state (values of a PostgreSQL source read back as that source's types)."""
    base, chain = history_chain(entries, from_ts)
    with ThreadPoolExecutor(HEADER_READERS, thread_name_prefix="tradevault-headers") as pool:
        headers = dict(zip([e.n for e in (base, *chain)],
                           pool.map(lambda entry: header_of(store, entry), (base, *chain))))

    def snapshot_rows(full: ManifestEntry, schema: TableSchema, matcher: RowMatcher) -> list[list[Any]]:
        point = cache.point(entries, Target(seq=full.last_seq))
        convert = sqlite_row_reader(schema) if schema.dialect == "postgresql" else None
        return rows_in_state(point.path, schema, matcher, convert)

    with cyclic_gc_paused():
        return row_history(base, chain, headers, table, given,
                           events=lambda entry, keyed: events_of(store, entry, keyed=keyed),
                           snapshot_rows=snapshot_rows, from_ts=from_ts, to_ts=to_ts)
