"""wal2json (format-version 2) messages -> ChangeEvents. Pure: no server needed.

Options the capture passes: ``format-version 2``, ``include-xids``, ``include-timestamp``,
``include-transaction`` (default): one JSON message per row change, framed by ``B`` (begin:
xid, commit timestamp) and ``C`` (commit) messages. Nothing more is asked for: the server
writes, and the client parses, every byte of every message (type oids and the primary key's
column list would make every update's message much larger, and nothing reads them). Messages are
decoded into typed structs (``Message``), not dicts: fields nobody reads are skipped.
The commit message's LSN (the end of the commit record) gives every event of the
transaction its seq (``lsn.py``); ``tx`` is the real xid, ``ts`` the commit time.

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

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import msgspec

from trade_stream.errors import BadInputError
from trade_stream.events import DELETE, INSERT, SCHEMA, UPDATE, ChangeEvent
from trade_stream.postgres.lsn import event_seq
from trade_stream.postgres.types import Parser, wal2json_parser
from trade_stream.schema import TableSchema, quote_ident

WAL2JSON_OPTIONS = (
    ("format-version", "2"),
    ("include-xids", "1"),
    ("include-timestamp", "1"),
    ("include-transaction", "1"),
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


def decode_message(data: str | bytes) -> Message:
    raw = data.encode() if isinstance(data, str) else data
    if b":-0" in raw:  # float8/float4 print negative zero as "-0": keep it a float
        raw = raw.replace(b'"value":-0,', b'"value":-0.0,').replace(b'"value":-0}', b'"value":-0.0}')
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise BadInputError(f"malformed wal2json message: {exc}") from None


class _TableCodec:
    """Parses the messages of one table against its known description."""

    def __init__(self, table: TableSchema) -> None:
        self.table = table
        self.names = table.column_names
        self.signature = [(c.name, c.declared) for c in table.columns]
        self.parsers: list[Parser] = [wal2json_parser(c.declared) for c in table.columns]
        self.by_name = dict(zip(self.names, self.parsers))
        self.key_indexes = table.key_indexes()
        self._other: dict[str, Parser] = {}

    def _parser_for(self, name: str, declared: str) -> Parser:
        parser = self._other.get(declared)
        if parser is None:
            try:
                parser = wal2json_parser(declared)
            except KeyError:
                parser = lambda v: v  # noqa: E731 - projected away or resynced later
            self._other[declared] = parser
        return parser

    def row(self, columns: list[ColumnValue]) -> tuple[list[Any], bool]:
        """(row in the known column order, whether the message matched the known columns)."""
        if len(columns) == len(self.names):
            row = []
            for column, (name, declared), parser in zip(columns, self.signature, self.parsers):
                if column.name != name or column.type != declared:
                    break
                value = column.value
                row.append(None if value is None else parser(value))
            else:
                return row, True
        values = {}
        for column in columns:
            name, value = column.name, column.value
            if value is not None:
                known = self.by_name.get(name)
                parser = known if known is not None else self._parser_for(name, column.type)
                value = parser(value)
            values[name] = value
        return [values.get(name) for name in self.names], False

    def key_from_identity(self, identity: list[ColumnValue]) -> list[Any] | None:
        """The old key of an update or delete: its primary key, or the whole old row of a
        table without one (REPLICA IDENTITY FULL); None when the message has none."""
        values = {c.name: c.value for c in identity}
        key = []
        for name in self.table.identity:
            if name not in values:
                return None
            value = values[name]
            key.append(None if value is None else self.by_name[name](value))
        return key


@dataclass
class Transaction:
    xid: int
    ts: int
    changes: list[tuple[str, str, list[Any] | None, list[Any] | None, dict[str, Any] | None]] = field(
        default_factory=list
    )


class StreamDecoder:
    """Feed ``(lsn, message)`` pairs in stream order; every commit returns its events."""

    def __init__(self, tables: list[TableSchema], after_seq: int = -1) -> None:
        self.codecs = {t.name: _TableCodec(t) for t in tables}
        self.after_seq = after_seq
        self.changed: set[str] = set()  # tables whose messages no longer match
        self.ignored: set[str] = set()  # tables seen but not protected
        self.last_commit_lsn: int | None = None
        self.transactions = 0
        self._tx: Transaction | None = None

    def feed(self, lsn: int, data: str | bytes) -> list[ChangeEvent]:
        message = decode_message(data)
        action = message.action
        if action == "B":
            self._tx = Transaction(message.xid, commit_ts_us(message.timestamp))
            return []
        if action == "C":
            return self._commit(lsn, message)
        if action in ("I", "U", "D", "T"):
            self._change(action, message)
        return []  # "M" (logical messages) and anything newer: not row changes

    def _change(self, action: str, message: Message) -> None:
        tx = self._tx
        if tx is None:
            raise BadInputError("wal2json change outside a transaction (include-transaction must be on)")
        name = message.table
        if message.schema != "public":
            name = f"{message.schema}.{name}"
        codec = self.codecs.get(name)
        if codec is None:
            self.ignored.add(name)
            return
        if action == "T":
            tx.changes.append((name, SCHEMA, None, None, codec.table.to_dict()))
            return
        if action == "I":
            row, matched = codec.row(message.columns)
            key = [row[i] for i in codec.key_indexes]
            tx.changes.append((name, INSERT, key, row, None))
        elif action == "U":
            row, matched = codec.row(message.columns)
            key = codec.key_from_identity(message.identity)
            if key is None:
                if not codec.key_indexes:
                    raise BadInputError(f"table {name!r} has no primary key and an update carries no old row: "
                                        f"ALTER TABLE {quote_ident(name)} REPLICA IDENTITY FULL")
                key = [row[i] for i in codec.key_indexes]  # the key did not change
            tx.changes.append((name, UPDATE, key, row, None))
        else:
            matched = True
            key = codec.key_from_identity(message.identity)
            if key is None:
                fix = "FULL" if not codec.key_indexes else "DEFAULT"
                raise BadInputError(f"table {name!r}: a delete carries no old key: "
                                    f"ALTER TABLE {quote_ident(name)} REPLICA IDENTITY {fix}")
            tx.changes.append((name, DELETE, key, None, None))
        if not matched:
            self.changed.add(name)

    def _commit(self, lsn: int, message: Message) -> list[ChangeEvent]:
        tx = self._tx
        self._tx = None
        self.last_commit_lsn = lsn
        self.transactions += 1
        if tx is None or not tx.changes:
            return []
        events = []
        for index, (table, op, key, row, table_schema) in enumerate(tx.changes):
            seq = event_seq(lsn, index)
            if seq <= self.after_seq:
                continue  # already stored (a crash between storing and advancing the slot)
            events.append(ChangeEvent(seq, tx.xid, tx.ts, table, op, key, row, table_schema))
        return events
