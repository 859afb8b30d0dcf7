"""wal2json (format-version 2) messages -> ChangeEvents. Pure: no server needed.

Options the capture passes: ``format-version 2``, ``include-xids``, ``include-timestamp``,
``include-transaction`` (default), ``include-lsn``: one JSON message per row change, framed
by ``B`` (begin: xid, commit timestamp, commit end LSN) and ``C`` (commit) messages. Nothing
more is asked for: the server writes, and the client parses, every byte of every message
(type oids and the primary key's column list would make every update's message much larger,
and nothing reads them). Messages are decoded into typed structs (``Message``), not dicts:
fields nobody reads are skipped.

wal2json decodes a transaction only once it has committed, so its ``B`` message already
names the end of the commit record (``nextlsn``), which gives every event of the
transaction its seq (``lsn.py``); ``tx`` is the real xid, ``ts`` the commit time. Events
therefore leave the decoder as their messages arrive (``take``), in windows, whatever the
transaction's size: a transaction of ten million rows never sits in memory whole.

Row values leave in their wire form (``values.to_wire``: a numeric as its exact text in a
Decimal extension, and so on), made straight from the JSON value (``types.wal2json_wire_parser``):
the events are for storing, and most values need no work at all.

* Row values are parsed by the column's declared type (``types.py``): numbers arrive
  as their exact JSON text (msgspec's ``float_hook=str``; integers are exact anyway, and a
  float ``-0`` is rewritten to ``-0.0`` before decoding so its sign survives).
* Deletes and updates carry the old primary key in ``identity`` (REPLICA IDENTITY DEFAULT
  or FULL); an update without it (REPLICA IDENTITY NOTHING) uses the new key.
* The decoder knows the protected tables as of its starting position. A message whose
  column list differs (an ALTER TABLE not resynchronised yet) is projected onto the known
  columns by name and the table is reported in ``changed``; messages of tables it does not
  know (new or unprotected tables, tradevault's own) are dropped. The capture then
  resynchronises those tables at a snapshot position (SCHEMA + SNAPSHOT events), like the
  SQLite capture does after a schema change.
* TRUNCATE becomes a SCHEMA event with the table's unchanged description: replay recreates
  it empty, which is what TRUNCATE did.
"""

from __future__ import annotations

import operator
from datetime import datetime, timezone
from typing import Any, Callable, Collection

import msgspec

from trade_stream.errors import BadInputError, IntegrityError
from trade_stream.events import DELETE, INSERT, SCHEMA, UPDATE, ChangeEvent
from trade_stream.key_index import key_bytes
from trade_stream.postgres.database import post_load
from trade_stream.postgres.lsn import MAX_TX_EVENTS, event_seq, parse_lsn
from trade_stream.postgres.special_numbers import SpecialNulls, special_columns
from trade_stream.postgres.stored_images import RowImages
from trade_stream.postgres.types import Parser, base_name, wal2json_wire_parser
from trade_stream.schema import TableSchema, quote_ident

WAL2JSON_OPTIONS = (
    ("format-version", "2"),
    ("include-xids", "1"),
    ("include-timestamp", "1"),
    ("include-transaction", "1"),
    ("include-lsn", "1"),
)


class ColumnValue(msgspec.Struct):
    name: str
    type: str = ""
    value: Any = None


class Message(msgspec.Struct):
    """One wal2json (format-version 2) message; fields not listed here are skipped."""

    action: str = ""
    xid: int = 0
    timestamp: str = ""
    nextlsn: str = ""  # B and C: the end of the commit record
    schema: str = "public"
    table: str = ""
    columns: list[ColumnValue] = msgspec.field(default_factory=list)
    identity: list[ColumnValue] = msgspec.field(default_factory=list)


_decoder = msgspec.json.Decoder(Message, float_hook=str)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def commit_ts_us(text: str) -> int:
    """wal2json's timestamp ('2026-11-26 22:15:21.257918+00') -> microseconds UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def prints_negative_zero(raw: bytes) -> bool:
    """Whether a message holds a float4/float8 negative zero: wal2json prints it "-0", which
    JSON reads as the integer 0. (Only those two types print a bare number that can be
    "-0"; any other type's value is a string or cannot be negative zero.)"""
    return b":-0" in raw and (b'"value":-0,' in raw or b'"value":-0}' in raw)


def decode_message(data: str | bytes, *, floats: bool = True) -> Message:
    """One message; ``floats``: keep a float's negative zero (see prints_negative_zero), a
    scan of the whole message that the decoder makes only for tables with float columns."""
    raw = data.encode() if isinstance(data, str) else data
    if floats and prints_negative_zero(raw):
        raw = raw.replace(b'"value":-0,', b'"value":-0.0,').replace(b'"value":-0}', b'"value":-0.0}')
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise BadInputError(f"malformed wal2json message: {exc}") from None


_SKIP: Any = object()  # a parser slot: the column is checked in place, its value not returned


class _Unchanged:
    """The value of a column an update left out of its message (see ``StreamDecoder``)."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()


class Retyped(Exception):
    """A message names a known column with another type than the one known (see
    ``_TableCodec.check_types``)."""


class UnchangedValuesMissing(Exception):
    """An update left out a TOASTed value it did not change, and nothing the decoder holds
    gives it: the capture reads the stream again with ``StreamDecoder.images`` set."""


def _unrolled(fields: list[tuple[str, str | None]], parsers: list[Parser | None],
              ) -> Callable[[list[ColumnValue]], list[Any] | None]:
    """A reader of one message's column list, unrolled for one table: each column's name
    (and declared type, where given) checked in place, each value converted only where its
    type needs it; None when the list does not match ``fields``. Written once per table (the
    names and types enter the code as ``repr`` literals): per message, the general loops
    with a list of (name, type) pairs to compare cost about twice as much (measured)."""
    names = [f"c{i}" for i in range(len(fields))]
    lines = ["def read(columns):", f"    if len(columns) != {len(fields)}:", "        return None"]
    if fields:
        lines.append(f"    {', '.join(names)}, = columns")
        checks = []
        for var, (name, declared) in zip(names, fields):
            checks.append(f"{var}.name != {name!r}")
            if declared is not None:
                checks.append(f"{var}.type != {declared!r}")
        lines += [f"    if {' or '.join(checks)}:", "        return None"]
    values = []
    for i, (var, parse) in enumerate(zip(names, parsers)):
        if parse is _SKIP:
            continue
        values.append(f"{var}.value" if parse is None else f"(None if (v{i} := {var}.value) is None else p{i}(v{i}))")
    lines.append(f"    return [{', '.join(values)}]")
    namespace: dict[str, Any] = {f"p{i}": parse for i, parse in enumerate(parsers)
                                 if parse is not None and parse is not _SKIP}
    exec("\n".join(lines), namespace)  # our own code: names and types enter through repr
    return namespace["read"]  # type: ignore[no-any-return]


class _TableCodec:
    """Turns the messages of one table into wire rows against its known description."""

    def __init__(self, table: TableSchema, renamed: dict[str, str] | None = None) -> None:
        self.table = table
        self.renamed = renamed or {}  # new name -> known name
        self.names = table.column_names
        self.signature: list[tuple[str, str | None]] = [(c.name, c.declared) for c in table.columns]
        parsers = [wal2json_wire_parser(c.declared) for c in table.columns]
        self.by_name: dict[str, Parser | None] = dict(zip(self.names, parsers))
        signature, slots = list(self.signature), list(parsers)
        for column in post_load(table).get("generated", []):  # wal2json prints their values: skipped
            if column["kind"] == "STORED":
                signature.insert(column["position"], (column["name"], column["declared"]))
                slots.insert(column["position"], _SKIP)
        self.key_indexes = table.key_indexes()
        #: whether a value may be a float's negative zero (see prints_negative_zero)
        self.floats = any(base_name(c.declared) in (("real", False), ("double precision", False))
                          for c in table.columns)
        self.identity = list(table.identity)
        self.identity_converted = [(i, self.by_name[name]) for i, name in enumerate(self.identity)
                                   if self.by_name[name] is not None]
        self._read_row = _unrolled(signature, slots)
        self.declared = {c.name: c.declared for c in table.columns}
        self._read_key = _unrolled([(name, self.declared[name]) for name in self.identity],
                                   [self.by_name[n] for n in self.identity])
        self.generated = {c["name"] for c in post_load(table).get("generated", [])}
        self.special = special_columns(table)
        picked = operator.itemgetter(*self.special) if self.special else None
        #: whether a row has NULL in a special column (the decoder's hot path: one C call)
        self.null_special: Callable[[list[Any]], bool] = (
            (lambda row: picked(row) is None) if len(self.special) == 1  # type: ignore[misc]
            else (lambda row: None in picked(row)) if picked else (lambda row: False))  # type: ignore[misc]
        self._other: dict[str, Parser | None] = {}

    def _parser_for(self, name: str, declared: str) -> Parser | None:
        if name in self.by_name:
            return self.by_name[name]
        if declared not in self._other:
            try:
                self._other[declared] = wal2json_wire_parser(declared)
            except KeyError:
                self._other[declared] = None  # projected away or resynced later
        return self._other[declared]

    def row(self, columns: list[ColumnValue], update: bool = False) -> tuple[list[Any], bool, bool]:
        """(row in the known column order, whether the message matched the known columns,
        whether the row holds ``UNCHANGED``). An ``update`` may leave out columns (their
        TOASTed values did not change): those hold ``UNCHANGED``, and the message still
        matches."""
        row = self._read_row(columns)
        if row is not None:
            return row, True, False
        if update:
            row = self._without_unchanged(columns)
            if row is not None:
                return row, True, True
        self.check_types(columns)
        values = {}
        for column in columns:
            value, name = column.value, self.renamed.get(column.name, column.name)
            if value is not None:
                parse = self._parser_for(name, column.type)
                if parse is not None:
                    value = parse(value)
            values[name] = value
        missing = UNCHANGED if update else None  # an update's: a TOASTed value it did not change
        row = [values.get(name, missing) for name in self.names]
        return row, False, update and UNCHANGED in row

    def _without_unchanged(self, columns: list[ColumnValue]) -> list[Any] | None:
        """The row of an update whose message lists the known columns in their order, some
        left out (wal2json leaves out a TOASTed value the update did not change: it is not in
        the WAL), each left out one ``UNCHANGED``; None when the message is anything else."""
        if self.generated:
            columns = [c for c in columns if c.name not in self.generated]
        if len(columns) >= len(self.signature):
            return None
        row: list[Any] = []
        at = 0
        for name, declared in self.signature:
            column = columns[at] if at < len(columns) else None
            if column is None or column.name != name:
                row.append(UNCHANGED)
                continue
            if declared is not None and column.type and column.type != declared:
                return None
            value, parse = column.value, self.by_name[name]
            row.append(value if value is None or parse is None else parse(value))
            at += 1
        return row if at == len(columns) else None

    def fill_from_identity(self, row: list[Any], identity: list[ColumnValue]) -> bool:
        """Fill the ``UNCHANGED`` values of an update's row from its old row, which holds
        them under REPLICA IDENTITY FULL (the server writes the old row whole, TOASTed
        values included); whether none is left."""
        old = {self.renamed.get(c.name, c.name): c.value for c in identity}
        for i, name in enumerate(self.names):
            if row[i] is UNCHANGED and name in old:
                value, parse = old[name], self.by_name[name]
                row[i] = value if value is None or parse is None else parse(value)
        return UNCHANGED not in row

    def check_types(self, columns: list[ColumnValue]) -> None:
        """Raises Retyped when a known column arrives with another type (an ALTER COLUMN
        ... TYPE not resynchronised yet): its values would be read, and later written, as
        the old type's."""
        for column in columns:
            known = self.declared.get(self.renamed.get(column.name, column.name))
            if known is not None and column.type and column.type != known:
                raise Retyped(column.name)

    def key_from_identity(self, identity: list[ColumnValue]) -> list[Any] | None:
        """The old key of an update or delete: its primary key, or the whole old row of a
        table without one (REPLICA IDENTITY FULL); None when the message has none."""
        key = self._read_key(identity)
        if key is not None:
            return key
        self.check_types(identity)
        by_name = {self.renamed.get(c.name, c.name): c.value for c in identity}
        if any(name not in by_name for name in self.identity):
            return None
        key = [by_name[name] for name in self.identity]
        for i, parse in self.identity_converted:
            value = key[i]
            if value is not None:
                key[i] = parse(value)  # type: ignore[misc]
        return key


class StreamDecoder:
    """Feed the messages in stream order; ``take`` the events decoded so far (a transaction
    may be taken in several windows: its seqs are known from its first message)."""

    def __init__(self, tables: list[TableSchema], after_seq: int = -1, replaced: Collection[str] = (),
                 renamed: dict[str, dict[str, str]] | None = None, home: str = "public") -> None:
        #: the schema backed up: another's tables are named qualified, and not protected
        self.home = home
        #: by table, columns renamed since the stream's position (new name -> known name): a
        #: change written after the RENAME COLUMN names the column by its new name
        self.renamed = renamed or {}
        self.codecs = {t.name: _TableCodec(t, self.renamed.get(t.name)) for t in tables}
        self.after_seq = after_seq
        #: tables dropped or renamed away and created again under their name: the stream
        #: names both the same, so their changes are left out until their resynchronisation
        self.replaced = frozenset(replaced)
        self.changed: set[str] = set()  # tables whose messages no longer match
        self.ignored: set[str] = set()  # tables seen but not protected
        self.left_out: dict[str, int] = {}  # changes left out, by table (``_left_out``)
        self.special_nulls = SpecialNulls()  # NaN and ±Infinity printed as null (special_numbers)
        self.last_commit_lsn: int | None = None
        self.transactions = 0
        self.pending: list[ChangeEvent] = []
        # Updates leave out unchanged TOASTed values (see ``_unchanged``). ``images``: None
        # (such an update raises UnchangedValuesMissing unless its old row holds them), or
        # where the keys that need a row are collected (``filling`` False) or the rows they
        # are filled from are found (True), kept up to date as the stream changes them.
        self.images: RowImages | None = None
        self.filling = False
        self._commit_lsn: int | None = None  # of the transaction being read
        self._skip = False  # that transaction is stored already
        self._base = self._xid = self._ts = self._index = 0

    @property
    def in_transaction(self) -> bool:
        return self._commit_lsn is not None

    def take(self) -> list[ChangeEvent]:
        """The events decoded since the last take, in stream order."""
        events, self.pending = self.pending, []
        return events

    def feed(self, data: str | bytes) -> None:
        """One message (its JSON), in stream order."""
        raw = data.encode() if isinstance(data, str) else data
        message = decode_message(raw, floats=False)  # a float table's change is decoded again in _change
        action = message.action
        if action in ("I", "U", "D", "T"):
            if not self._skip:
                try:
                    self._change(action, message, raw)
                except Retyped:
                    self._left_out(self._name(message))
        elif action == "B":
            self._begin(message)
        elif action == "C":
            self._commit(message)
        # "M" (logical messages) and anything newer: not row changes

    def _name(self, message: Message) -> str:
        """The table's name as the backup knows it: bare in the schema backed up, else
        qualified (and so never one of the protected tables)."""
        return message.table if message.schema == self.home else f"{message.schema}.{message.table}"

    def _begin(self, message: Message) -> None:
        if not message.nextlsn:
            raise BadInputError("wal2json begin message without its commit position (include-lsn must be on)")
        lsn = parse_lsn(message.nextlsn)
        self._commit_lsn, self._index = lsn, 0
        self._base, self._xid, self._ts = event_seq(lsn, 0), message.xid, commit_ts_us(message.timestamp)
        # a crash between storing and advancing the slot: the transaction is read again
        self._skip = self._base <= self.after_seq

    def _change(self, action: str, message: Message, raw: bytes) -> None:
        if self._commit_lsn is None:
            raise BadInputError("wal2json change outside a transaction (include-transaction must be on)")
        name = self._name(message)
        codec = self.codecs.get(name)
        if codec is None:
            self.ignored.add(name)
            return
        if codec.floats and prints_negative_zero(raw):
            message = decode_message(raw)
        if name in self.replaced:
            return self._left_out(name)
        row: list[Any] | None = None
        table_schema = None
        if action == "U":
            row, matched, partial = codec.row(message.columns, update=True)
            key = codec.key_from_identity(message.identity)
            if key is None:
                if message.identity:  # an old key, under names the known columns lack
                    return self._left_out(name)
                if not codec.key_indexes:
                    raise BadInputError(f"table {name!r} has no primary key and an update carries no old row: "
                                        f"ALTER TABLE {quote_ident(name)} REPLICA IDENTITY FULL")
                key = [row[i] for i in codec.key_indexes]  # the key did not change
                if None in key:  # a key column under a name the known columns lack
                    return self._left_out(name)
            if partial and not codec.fill_from_identity(row, message.identity):
                self._unchanged(name, key, row, strict=matched)
            op = UPDATE
        elif action == "I":
            row, matched, _ = codec.row(message.columns)
            key = [row[i] for i in codec.key_indexes]
            if None in key:  # a key column under a name the known columns lack
                return self._left_out(name)
            op = INSERT
        elif action == "D":
            matched = True
            key = codec.key_from_identity(message.identity)
            if key is None and message.identity:  # an old key, under names the known columns lack
                return self._left_out(name)
            if key is None:
                fix = "FULL" if not codec.key_indexes else "DEFAULT"
                raise BadInputError(f"table {name!r}: a delete carries no old key: "
                                    f"ALTER TABLE {quote_ident(name)} REPLICA IDENTITY {fix}")
            op = DELETE
        else:  # TRUNCATE: the table recreated empty
            matched, key, op, table_schema = True, None, SCHEMA, codec.table.to_dict()
        if not matched:
            self.changed.add(name)
        if self.filling and name in self.images.tables:  # type: ignore[union-attr]
            self._track(name, op, key, row, codec)
        if codec.special and (self.special_nulls.noted or op == SCHEMA or row is not None and codec.null_special(row)):
            self._track_special(name, op, key, row, codec)
        index = self._index
        if index >= MAX_TX_EVENTS:
            event_seq(self._commit_lsn, index)  # raises: too many changes for one transaction
        self._index = index + 1
        self.pending.append(ChangeEvent(self._base + index, self._xid, self._ts, name, op, key, row, table_schema))

    def _left_out(self, name: str) -> None:
        """A change the known columns cannot hold: a column of the table changed its type
        (ALTER COLUMN ... TYPE), a table without a primary key lost a column (its old row
        can no longer name the row it changes), its old key is under names the known
        columns lack (a key column renamed, ``renamed`` not knowing it), or the table was
        replaced by another of its name (``replaced``). The change is left out and the table is
        resynchronised (``changed``), which gives its rows back as they are; restore points
        in between show the table without those changes (``left_out`` counts them, for the
        backup's warning). Kept, they made every restore after them fail, or stopped the
        capture."""
        self.changed.add(name)
        self.left_out[name] = self.left_out.get(name, 0) + 1

    def collect_into(self, images: RowImages) -> None:
        """Collect the keys whose updates leave values out into ``images``, without filling."""
        self.images, self.filling = images, False

    def fill_from(self, images: RowImages) -> None:
        """Fill left-out values from ``images`` (the rows as the store holds them before this
        stream, of the keys wanted), kept up to date as the stream changes those keys."""
        self.images, self.filling = images, True

    def _unchanged(self, name: str, key: list[Any], row: list[Any], strict: bool = True) -> None:
        """An update left values out (UNCHANGED in ``row``), and its old row does not hold them.
        Not ``strict``: the message no longer matches the known columns (the table is
        resynchronised after this stream), and a value no row gives is NULL, not an error
        that would stop every incremental from now on."""
        if self.images is None:
            raise UnchangedValuesMissing(name)
        if not self.filling:
            self.images.want(name, key_bytes(key))
            return
        image = self.images.get(name, key_bytes(key))
        if image is None and not strict:
            image = [None] * len(row)
        if image is None:
            missing = [c for c, v in zip(self.codecs[name].names, row) if v is UNCHANGED]
            raise IntegrityError(f"table {name!r}: an update left out the unchanged value of {', '.join(missing)}"
                                 f" (TOASTed) for key {key!r}, and no stored row holds it")
        for i, value in enumerate(row):
            if value is UNCHANGED:
                row[i] = image[i]

    def _track(self, name: str, op: str, key: list[Any] | None, row: list[Any] | None, codec: _TableCodec) -> None:
        """Keep the rows of the wanted keys as the stream changes them."""
        images = self.images
        assert images is not None
        if op == SCHEMA:  # TRUNCATE: no row is left
            images.drop_wanted_rows(name)
            return
        if key is not None and images.wanted(name, old := key_bytes(key)):
            images.drop(name, old)
        if row is not None and codec.key_indexes:
            new = key_bytes([row[i] for i in codec.key_indexes])
            if images.wanted(name, new):
                images.put(name, new, row)

    def _track_special(self, name: str, op: str, key: list[Any] | None, row: list[Any] | None,
                       codec: _TableCodec) -> None:
        """Note the key whose change may have had NaN or ±Infinity printed as null."""
        nulls = self.special_nulls
        if op == SCHEMA:
            nulls.drop_table(name)
            return
        if key is not None and nulls.keys.get(name):
            nulls.drop(name, key_bytes(key))
        if row is None:
            return
        for i in codec.special:
            if row[i] is None:
                if not codec.key_indexes:
                    nulls.count_unchecked(name)  # no key to read its row back by
                    return
                new = [row[k] for k in codec.key_indexes]
                nulls.note(name, key_bytes(new), new, self._xid)
                return

    def _commit(self, message: Message) -> None:
        lsn = parse_lsn(message.nextlsn) if message.nextlsn else self._commit_lsn
        if lsn is None or lsn != self._commit_lsn:
            raise BadInputError("wal2json commit message does not match its begin message")
        self.last_commit_lsn = lsn
        self.transactions += 1
        self._commit_lsn, self._skip = None, False
