"""Change capture for PostgreSQL: logical decoding with wal2json through a replication
slot that tradevault owns (``tradevault_<source>``).

* **Install** (first full backup): the slot is created over a replication connection with
  ``CREATE_REPLICATION_SLOT ... LOGICAL wal2json (SNAPSHOT 'export')``; the exported
  snapshot is exactly the database at the slot's consistent point, so the full backup
  read in it and the stream that follows meet without gap or overlap.
  ``_tradevault_meta`` (key/value, in the schema backed up) records the capture id and slot name;
  its own changes are ignored by the decoder.
* **Read**: from the slot's confirmed position up to a bound, over the streaming
  replication protocol without confirming anything (``walsender.py``), or, when no
  replication connection can be had, with ``pg_logical_slot_peek_changes`` streamed by
  COPY (the server keeps its output in a tuplestore that spills to disk); parsed by
  ``wal2json.StreamDecoder`` into windows of events (bounded client memory whatever a
  transaction's size). Neither consumes anything.
* **Advance**: ``pg_replication_slot_advance`` only after the incremental holding the
  events is stored and its manifest entry published in every location. A crash before
  that replays the same changes next time; the decoder drops those at or below the
  chain's position, so nothing is stored twice and nothing is lost.
* **Later snapshots** (further full backups, resynchronising a changed table) use a
  TEMPORARY slot created the same way: its exported snapshot is consistent with a known
  LSN; it disappears when its connection closes.
* **Uninstall** drops the slot (so the server stops retaining WAL for it) and the meta table.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from trade_stream.errors import BadInputError, CaptureLost
from trade_stream.events import ChangeEvent
from trade_stream.postgres.copy_out import copy_out_rows
from trade_stream.postgres.database import PostgresDatabase
from trade_stream.postgres.lsn import format_lsn, parse_lsn
from trade_stream.postgres.wal2json import WAL2JSON_OPTIONS, StreamDecoder
from trade_stream.postgres.walsender import BUSY_SLOT_SECONDS, release_slot, streamed_messages

if TYPE_CHECKING:
    import psycopg

META = "_tradevault_meta"
PLUGIN = "wal2json"
RESTART_LAG_LIMIT = 64 << 20  # bytes of WAL a slot's restart point may trail its confirmed one (advance)
RESTART_CATCH_UP_ROUNDS = 3


def _json_of(line: bytes) -> bytes:
    """A wal2json message from its line of COPY's text format, which doubles every
    backslash (JSON holds no raw control characters, the only other thing it escapes)."""
    return line.replace(b"\\\\", b"\\") if b"\\" in line else line


def _literal(text: str) -> str:
    """A SQL string literal (slot names and plugin options: no quote is ever in them)."""
    if "'" in text or "\\" in text:
        raise BadInputError(f"unexpected character in {text!r}")
    return f"'{text}'"


def slot_name_for(source: str) -> str:
    """A valid slot name (lower-case letters, digits, underscore; at most 63 bytes)."""
    cleaned = re.sub(r"[^a-z0-9_]", "_", source.lower())
    return f"tradevault_{cleaned}"[:63]


@dataclass
class ExportedSnapshot:
    """A snapshot exported at ``lsn``; valid while the replication connection is open."""

    name: str
    lsn: int
    slot: str
    temporary: bool


@dataclass
class SlotInfo:
    exists: bool
    confirmed_lsn: int | None = None
    restart_lsn: int | None = None
    current_lsn: int | None = None
    wal_status: str = ""
    active: bool = False

    @property
    def retained_bytes(self) -> int | None:
        if self.restart_lsn is None or self.current_lsn is None:
            return None
        return self.current_lsn - self.restart_lsn

    @property
    def lag_bytes(self) -> int | None:
        if self.confirmed_lsn is None or self.current_lsn is None:
            return None
        return self.current_lsn - self.confirmed_lsn


class PostgresCapture:
    def __init__(self, db: PostgresDatabase, slot: str, *, streaming: bool = True) -> None:
        """``streaming`` False: read through peek only (see ``read``)."""
        self.db = db
        self.slot = slot
        self.streaming = streaming
        self._extra_options: tuple[tuple[str, str], ...] | None = None
        self._utf8: bool | None = None  # the database's encoding never changes: asked once

    # -- state -------------------------------------------------------------------------------
    @staticmethod
    def has_meta(conn: "psycopg.Connection") -> bool:
        row = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relname = %s",
            (META,),
        ).fetchone()
        return bool(row[0])

    def meta(self, conn: "psycopg.Connection") -> dict[str, str]:
        if not self.has_meta(conn):
            return {}
        return dict(conn.execute(f"SELECT key, value FROM {META}").fetchall())

    def slot_info(self, conn: "psycopg.Connection") -> SlotInfo:
        """The capture slot's state. Slot names are the server's, databases share them: a
        slot of this name in another database is another source's (two databases backed
        up under one source name), bad input, never this one's to read or drop."""
        row = conn.execute(
            "SELECT confirmed_flush_lsn::text, restart_lsn::text, coalesce(wal_status, ''), active,"
            " pg_current_wal_lsn()::text, database, current_database() FROM pg_replication_slots"
            " WHERE slot_name = %s",
            (self.slot,),
        ).fetchone()
        if row is None:
            return SlotInfo(exists=False)
        confirmed, restart, status, active, current, database, here = row
        if database != here:
            raise BadInputError(
                f"replication slot {self.slot!r} on this server belongs to database {database!r}, not {here!r}:"
                " another database is backed up under the same source name; give this one its own"
                " ([database] name in tradevault.toml), or, if that database is no longer backed up, drop its"
                f" slot (`tradevault uninstall` with its config, or SELECT pg_drop_replication_slot('{self.slot}'))")
        return SlotInfo(
            exists=True,
            confirmed_lsn=parse_lsn(confirmed) if confirmed else None,
            restart_lsn=parse_lsn(restart) if restart else None,
            current_lsn=parse_lsn(current),
            wal_status=status,
            active=bool(active),
        )

    def is_installed(self, conn: "psycopg.Connection") -> bool:
        meta = self.meta(conn)
        return bool(meta.get("capture_id")) and meta.get("slot") == self.slot and self.slot_info(conn).exists

    def check_usable(self, conn: "psycopg.Connection") -> None:
        """Raises when the server cannot do logical decoding with wal2json (bad input)."""
        level = conn.execute("SHOW wal_level").fetchone()[0]
        if level != "logical":
            raise BadInputError(
                f"PostgreSQL wal_level is {level!r}: change capture needs wal_level = logical "
                "(postgresql.conf, then restart the server)"
            )

    # -- snapshots -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def exported_snapshot(self, *, temporary: bool) -> Iterator[ExportedSnapshot]:
        """Create the capture slot (or a temporary one) and export its snapshot. Use the
        snapshot in another connection before leaving the block."""
        name = self.slot if not temporary else f"{self.slot[:40]}_tmp_{uuid.uuid4().hex[:12]}"
        rconn = self.db.connect(replication=True)
        try:
            kind = "TEMPORARY " if temporary else ""
            command = f"CREATE_REPLICATION_SLOT \"{name}\" {kind}LOGICAL {PLUGIN} (SNAPSHOT 'export')"
            result = rconn.pgconn.exec_(command.encode())
            if result.status != 2:  # PGRES_TUPLES_OK
                message = (result.error_message or b"").decode(errors="replace").strip()
                if "could not access file" in message and PLUGIN in message:
                    message += " (install the wal2json output plugin: apt-get install postgresql-15-wal2json)"
                raise BadInputError(f"cannot create replication slot {name!r}: {message}")
            values = [(result.get_value(0, i) or b"").decode() for i in range(result.ntuples and 4)]
            yield ExportedSnapshot(name=values[2], lsn=parse_lsn(values[1]), slot=name, temporary=temporary)
        finally:
            rconn.close()

    @staticmethod
    def use_snapshot(conn: "psycopg.Connection", snapshot: ExportedSnapshot) -> None:
        """Start a REPEATABLE READ, read-only transaction seeing exactly the snapshot."""
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot.name}'")

    # -- install / uninstall ---------------------------------------------------------------------
    def write_meta(self, conn: "psycopg.Connection", capture_id: str) -> None:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {META} (key text PRIMARY KEY, value text NOT NULL)")
        for key, value in (("capture_id", capture_id), ("slot", self.slot), ("format", "1")):
            conn.execute(
                f"INSERT INTO {META}(key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @staticmethod
    def new_capture_id() -> str:
        return uuid.uuid4().hex

    def drop_slot(self, conn: "psycopg.Connection") -> bool:
        if not self.slot_info(conn).exists:
            return False
        conn.execute("SELECT pg_drop_replication_slot(%s)", (self.slot,))
        return True

    def uninstall(self, conn: "psycopg.Connection") -> dict[str, Any]:
        """Drop the slot (the server stops retaining WAL for it) and the meta table."""
        dropped = self.drop_slot(conn)
        had_meta = self.has_meta(conn)
        conn.execute(f"DROP TABLE IF EXISTS {META}")
        return {"slot": self.slot, "slot_dropped": dropped, "meta_dropped": had_meta}

    # -- reading ---------------------------------------------------------------------------------
    def options(self, conn: "psycopg.Connection") -> tuple[tuple[str, str], ...]:
        """wal2json options; adds numeric-data-types-as-string when the plugin knows it
        (>= 2.6: NaN/Infinity then survive), probed on an empty range of the slot."""
        if self._extra_options is None:
            extra = (("numeric-data-types-as-string", "1"),)
            info = self.slot_info(conn)
            try:
                with conn.transaction():
                    conn.execute(
                        "SELECT count(*) FROM pg_logical_slot_peek_changes(%s, %s::pg_lsn, 1"
                        + ", %s" * (2 * len(WAL2JSON_OPTIONS + extra)) + ")",
                        (self.slot, format_lsn(info.confirmed_lsn or 0),
                         *[v for pair in WAL2JSON_OPTIONS + extra for v in pair]),
                    )
                self._extra_options = extra
            except Exception:  # noqa: BLE001 - an older wal2json: no such option
                self._extra_options = ()
        return WAL2JSON_OPTIONS + self._extra_options

    def read(
        self, conn: "psycopg.Connection", decoder: StreamDecoder, upto_lsn: int, batch: int = 20000
    ) -> Iterator[list[ChangeEvent]]:
        """Decoded events of the transactions committed up to ``upto_lsn``, in windows of at
        most ``batch`` events (a large transaction spans several windows)."""
        info = self.slot_info(conn)
        if not info.exists:
            raise BadInputError(
                f"replication slot {self.slot!r} is missing (dropped?): run `tradevault backup full` "
                "to reinstall change capture"
            )
        if info.wal_status == "lost":
            raise CaptureLost(
                f"replication slot {self.slot!r} lost WAL it needed (max_slot_wal_keep_size?): "
                "changes since the last backup are gone; run `tradevault backup full`"
            )
        options = self.options(conn)
        feed = decoder.feed
        for message in self.messages(conn, options, upto_lsn):
            feed(message)
            if len(decoder.pending) >= batch:
                yield decoder.take()
        if decoder.in_transaction:
            raise BadInputError("the change stream ended inside a transaction")
        events = decoder.take()
        if events:
            yield events

    def messages(self, conn: "psycopg.Connection", options: tuple[tuple[str, str], ...], upto_lsn: int, *,
                 until: float | None = None, nchanges: int | None = None,
                 busy_wait: float = BUSY_SLOT_SECONDS) -> Iterator[bytes]:
        """The slot's messages up to ``upto_lsn``: from a walsender (``walsender.py``; it
        stops at ``until``, a ``time.monotonic()`` deadline, when given, and waits up to
        ``busy_wait`` seconds for another reader to let the slot go), or through peek
        (at most the transactions holding ``nchanges`` messages, when given) when a
        replication connection cannot be had (every walsender busy, a pooler that refuses
        them), the database's encoding is not UTF-8, or ``streaming`` is off."""
        rconn = None
        if self.streaming and self._utf8_output(conn):
            try:
                rconn = self.db.connect(replication=True)
            except BadInputError:
                rconn = None
        if rconn is None:
            yield from self._peeked(conn, options, upto_lsn, nchanges)
            return
        try:
            yield from streamed_messages(rconn, self.slot, options, upto_lsn, until, busy_wait)
        finally:
            release_slot(rconn, conn, self.slot)

    def _utf8_output(self, conn: "psycopg.Connection") -> bool:
        """Whether wal2json writes UTF-8 here. It writes in the database's encoding, which
        a walsender hands out unconverted; peek's rows are converted to the session's
        client encoding (UTF-8) like any query's. SQL_ASCII converts nothing either way."""
        if self._utf8 is None:
            encoding = conn.execute("SELECT pg_encoding_to_char(encoding) FROM pg_database"
                                    " WHERE datname = current_database()").fetchone()
            self._utf8 = encoding is not None and encoding[0] in ("UTF8", "SQL_ASCII")
        return self._utf8

    def _peeked(self, conn: "psycopg.Connection", options: tuple[tuple[str, str], ...],
                upto_lsn: int, nchanges: int | None = None) -> Iterator[bytes]:
        """The messages through ``COPY (SELECT data FROM pg_logical_slot_peek_changes(...))
        TO STDOUT`` (``copy_out``): each message one line, with no per-row work of a cursor
        on either side; the server decodes the whole range before the first line."""
        literals = ", ".join(_literal(v) for pair in options for v in pair)
        sql = (f"COPY (SELECT data FROM pg_logical_slot_peek_changes({_literal(self.slot)},"
               f" '{format_lsn(upto_lsn)}'::pg_lsn, {nchanges or 'NULL'}, {literals})) TO STDOUT")
        rest = b""
        for row in copy_out_rows(conn, sql):
            data = bytes(row)
            if not rest and data.find(b"\n") == len(data) - 1:
                # one message per COPY row (JSON allows the trailing newline)
                yield _json_of(data)
            else:  # not one whole message: never seen from PostgreSQL, handled all the same
                *lines, rest = (rest + data).split(b"\n")
                for line in lines:
                    yield _json_of(line)
        if rest:
            raise BadInputError("the change stream ended inside a transaction")

    def advance(self, conn: "psycopg.Connection", lsn: int) -> bool:
        """Confirm everything up to ``lsn``: the server may recycle the WAL before it.

        Every read decodes from the slot's ``restart_lsn``, not from its confirmed position,
        and one advance moves ``restart_lsn`` only to the first restart point it decodes
        past. After a burst of WAL (a bulk load into any database of the cluster: a slot
        reads them all) it stays behind, and each later incremental re-reads the burst
        while the server keeps its WAL. When it is more than ``RESTART_LAG_LIMIT`` behind,
        further advances to the same position (which decode only up to what is already
        confirmed; at most ``RESTART_CATCH_UP_ROUNDS``, while it moves) let it catch up."""
        info = self.slot_info(conn)
        if not info.exists or info.confirmed_lsn is None or lsn <= info.confirmed_lsn:
            return False
        target, restart = lsn, None
        for _ in range(1 + RESTART_CATCH_UP_ROUNDS):
            conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (self.slot, format_lsn(target)))
            after = self.slot_info(conn)
            if after.restart_lsn is None or after.confirmed_lsn is None or after.restart_lsn == restart \
                    or after.confirmed_lsn - after.restart_lsn <= RESTART_LAG_LIMIT:
                break
            target, restart = after.confirmed_lsn, after.restart_lsn
        return True

    @staticmethod
    def current_lsn(conn: "psycopg.Connection") -> int:
        return parse_lsn(conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])

    @staticmethod
    def flush_wal(conn: "psycopg.Connection") -> int:
        """Make every commit so far decodable and return the flushed position. Logical
        decoding reads only flushed WAL; with ``synchronous_commit = off`` (common on busy
        databases) recent commits may not be flushed yet. A tiny transaction committed
        synchronously flushes everything before it (it must write WAL itself, or its commit
        is not flushed: a transactional logical message, which the decoder ignores)."""
        with conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = on")
            conn.execute("SELECT pg_logical_emit_message(true, 'tradevault', 'flush')")
        return parse_lsn(conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()[0])
