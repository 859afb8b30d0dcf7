"""Change capture for SQLite: triggers write every row change into a change log inside
the same database, in the same transaction as the change itself.

* ``_tradevault_changes``: ``seq`` (the rowid: max + 1 for every new row, so strictly
  increasing and rolled back with the transaction that wrote it; pruning always keeps the
  newest row, so a seq is never reused — without AUTOINCREMENT, whose ``sqlite_sequence``
  update would add a page to every trading commit), ``ts`` (statement time, microseconds,
  UTC), ``tbl``, ``op``, ``k0..`` (old primary key for update/delete) and ``c0..`` (the new
  row). The value columns have no declared type, so SQLite stores each value with its
  own storage class: integers stay 64-bit, reals bit-exact, blobs raw.
* ``_tradevault_columns``: which columns ``c0..`` stand for, per table, from which seq on
  (the column list changes when a table's schema does).
* ``_tradevault_meta``: capture id, widths, the schema version last synchronised.

A schema change (new table, ALTER TABLE, dropped table) is noticed through
``PRAGMA schema_version``; ``sync`` then re-creates the triggers and writes, in one
transaction, a SCHEMA event followed by a SNAPSHOT of the changed table's rows into the
change log, so replay reproduces the change at the right position of the stream.

SQLite gives triggers no transaction identity, so ``tx`` cannot be the source transaction;
the reader sets ``tx`` to the event's own seq and ``ts`` is the statement's time (see
docs/sqlite-capture.md, "Transactions on SQLite").
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from trade_stream.errors import BadInputError
from trade_stream.events import DELETE, INSERT, SCHEMA, SNAPSHOT, UPDATE, ChangeEvent
from trade_stream.schema import DatabaseSchema, TableSchema, quote_ident
from trade_stream.sqlite.database import DatabaseService

CHANGES = "_tradevault_changes"
COLUMNS = "_tradevault_columns"
META = "_tradevault_meta"
TRIGGER_PREFIX = "_tradevault_trg_"

OP_INSERT, OP_UPDATE, OP_DELETE, OP_SNAPSHOT, OP_SCHEMA = 1, 2, 3, 4, 5
OP_NAMES = {OP_INSERT: INSERT, OP_UPDATE: UPDATE, OP_DELETE: DELETE, OP_SNAPSHOT: SNAPSHOT, OP_SCHEMA: SCHEMA}

# Statement time in microseconds (SQLite's clock has millisecond resolution).
TS_SQL = (
    "(CAST(strftime('%s','now') AS INTEGER) * 1000000"
    " + CAST(substr(strftime('%f','now'), 4) AS INTEGER) * 1000)"
)


@dataclass
class SyncReport:
    installed: list[str] = field(default_factory=list)  # tables captured for the first time
    changed: list[str] = field(default_factory=list)  # tables whose schema changed (resynced)
    dropped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    first_install: bool = False


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class SqliteCapture:
    def __init__(self, db: DatabaseService) -> None:
        self.db = db

    # -- state -----------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.db.exists()

    def require_exists(self) -> None:
        self.db.require_exists()

    def connect(self, *, readonly: bool = False) -> sqlite3.Connection:
        return self.db.connect(readonly=readonly)

    @staticmethod
    def oldest_seq(conn: sqlite3.Connection) -> int | None:
        row = conn.execute(f"SELECT min(seq) FROM {CHANGES}").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    @staticmethod
    def is_installed(conn: sqlite3.Connection) -> bool:
        row = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (META,)
        ).fetchone()
        return bool(row[0])

    @staticmethod
    def meta(conn: sqlite3.Connection) -> dict[str, str]:
        return dict(conn.execute(f"SELECT key, value FROM {META}").fetchall())

    @staticmethod
    def last_seq(conn: sqlite3.Connection) -> int:
        """The highest seq ever assigned (pruning keeps the newest row for this)."""
        row = conn.execute(f"SELECT max(seq) FROM {CHANGES}").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    @staticmethod
    def pending(conn: sqlite3.Connection, after_seq: int = 0) -> tuple[int, int | None]:
        """(events in the change log after ``after_seq``, ts of the oldest of them)."""
        row = conn.execute(f"SELECT count(*), min(ts) FROM {CHANGES} WHERE seq > ?", (after_seq,)).fetchone()
        return int(row[0]), row[1]

    def needs_sync(self, conn: sqlite3.Connection) -> bool:
        if not self.is_installed(conn):
            return True
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        return self.meta(conn).get("schema_version") != str(version)

    # -- install / sync ----------------------------------------------------------------------
    def sync(self, conn: sqlite3.Connection) -> SyncReport:
        """Install capture, or bring it up to date with the current schema. Idempotent and
        safe on a database in use: one short write transaction."""
        report = SyncReport()
        conn.execute("BEGIN IMMEDIATE")
        try:
            report.first_install = not self.is_installed(conn)
            if report.first_install:
                self._create_tables(conn)
            selection = self.db.select(conn)
            report.warnings = selection.warnings
            current = {t: self.db.table_schema(conn, t) for t in selection.tables}
            recorded = self._recorded_schemas(conn)
            self._widen(conn, current.values())
            for name, table in current.items():
                before = recorded.get(name)
                if (before is not None and before.ddl == table.ddl and before.indexes in (None, table.indexes)
                        and self._triggers_present(conn, name)):
                    if before.indexes is None:  # recorded before indexes were: recorded now, as they are
                        self._rerecord(conn, table)
                    continue
                self._create_triggers(conn, table)
                if before is None and report.first_install:
                    self._record_columns(conn, table, from_seq=0)
                    report.installed.append(name)
                    continue
                seq = self._write_schema_event(conn, name, table)
                self._record_columns(conn, table, from_seq=seq)
                self._write_resync(conn, table)
                (report.changed if before is not None else report.installed).append(name)
            for name in recorded.keys() - current.keys():
                self._drop_triggers(conn, name)
                seq = self._write_schema_event(conn, name, None)
                conn.execute(
                    f"INSERT INTO {COLUMNS}(tbl, from_seq, schema) VALUES (?, ?, NULL)", (name, seq)
                )
                report.dropped.append(name)
            conn.execute(f"INSERT OR REPLACE INTO {META}(key, value) VALUES ('tables', ?)",
                         (json.dumps(sorted(current)),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        # The trigger DDL itself bumps schema_version: record the value after it.
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        conn.execute(f"INSERT OR REPLACE INTO {META}(key, value) VALUES ('schema_version', ?)", (str(version),))
        return report

    def _create_tables(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"CREATE TABLE {META} (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute(
            f"CREATE TABLE {CHANGES} (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
            " tbl TEXT NOT NULL, op INTEGER NOT NULL)"
        )
        conn.execute(
            f"CREATE TABLE {COLUMNS} (tbl TEXT NOT NULL, from_seq INTEGER NOT NULL, schema TEXT,"
            " PRIMARY KEY (tbl, from_seq))"
        )
        conn.executemany(
            f"INSERT INTO {META}(key, value) VALUES (?, ?)",
            [("capture_id", uuid.uuid4().hex), ("format", "1"), ("key_width", "0"), ("row_width", "0")],
        )

    def _widen(self, conn: sqlite3.Connection, tables: Iterator[TableSchema] | list[TableSchema]) -> None:
        meta = self.meta(conn)
        key_width, row_width = int(meta["key_width"]), int(meta["row_width"])
        tables = list(tables)
        want_keys = max([len(t.identity) for t in tables], default=0)
        want_row = max([len(t.columns) for t in tables], default=0)
        for i in range(key_width, want_keys):
            conn.execute(f"ALTER TABLE {CHANGES} ADD COLUMN k{i}")
        for i in range(row_width, want_row):
            conn.execute(f"ALTER TABLE {CHANGES} ADD COLUMN c{i}")
        conn.execute(f"UPDATE {META} SET value = ? WHERE key = 'key_width'", (str(max(key_width, want_keys)),))
        conn.execute(f"UPDATE {META} SET value = ? WHERE key = 'row_width'", (str(max(row_width, want_row)),))

    @staticmethod
    def _recorded_schemas(conn: sqlite3.Connection) -> dict[str, TableSchema]:
        rows = conn.execute(
            f"SELECT tbl, schema FROM {COLUMNS} c WHERE from_seq = "
            f"(SELECT max(from_seq) FROM {COLUMNS} WHERE tbl = c.tbl)"
        ).fetchall()
        return {t: TableSchema.from_dict(json.loads(s)) for t, s in rows if s is not None}

    @staticmethod
    def _rerecord(conn: sqlite3.Connection, table: TableSchema) -> None:
        conn.execute(f"UPDATE {COLUMNS} SET schema = ? WHERE tbl = ? AND from_seq = "
                     f"(SELECT max(from_seq) FROM {COLUMNS} WHERE tbl = ?)",
                     (json.dumps(table.to_dict()), table.name, table.name))

    @staticmethod
    def _record_columns(conn: sqlite3.Connection, table: TableSchema, from_seq: int) -> None:
        conn.execute(
            f"INSERT OR REPLACE INTO {COLUMNS}(tbl, from_seq, schema) VALUES (?, ?, ?)",
            (table.name, from_seq, json.dumps(table.to_dict())),
        )

    @staticmethod
    def _triggers_present(conn: sqlite3.Connection, table: str) -> bool:
        names = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)
        ).fetchall()
        return sum(1 for (n,) in names if n.startswith(TRIGGER_PREFIX)) == 3

    @staticmethod
    def _trigger_names(table: str) -> dict[str, str]:
        return {op: quote_ident(f"{TRIGGER_PREFIX}{table}_{op}") for op in ("ins", "upd", "del")}

    def _drop_triggers(self, conn: sqlite3.Connection, table: str) -> None:
        for name in self._trigger_names(table).values():
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")

    def _create_triggers(self, conn: sqlite3.Connection, table: TableSchema) -> None:
        self._drop_triggers(conn, table.name)
        names = self._trigger_names(table.name)
        target = quote_ident(table.name)
        tbl = sql_literal(table.name)
        cols = [quote_ident(c) for c in table.column_names]
        keys = [quote_ident(k) for k in table.identity]  # a keyless table: its whole old row
        c_list = ", ".join(f"c{i}" for i in range(len(cols)))
        k_list = ", ".join(f"k{i}" for i in range(len(keys)))
        new_vals = ", ".join(f"NEW.{c}" for c in cols)
        old_keys = ", ".join(f"OLD.{k}" for k in keys)
        conn.execute(
            f"CREATE TRIGGER {names['ins']} AFTER INSERT ON {target} BEGIN "
            f"INSERT INTO {CHANGES}(ts, tbl, op, {c_list}) VALUES ({TS_SQL}, {tbl}, {OP_INSERT}, {new_vals}); END"
        )
        conn.execute(
            f"CREATE TRIGGER {names['upd']} AFTER UPDATE ON {target} BEGIN "
            f"INSERT INTO {CHANGES}(ts, tbl, op, {k_list}, {c_list}) "
            f"VALUES ({TS_SQL}, {tbl}, {OP_UPDATE}, {old_keys}, {new_vals}); END"
        )
        conn.execute(
            f"CREATE TRIGGER {names['del']} AFTER DELETE ON {target} BEGIN "
            f"INSERT INTO {CHANGES}(ts, tbl, op, {k_list}) VALUES ({TS_SQL}, {tbl}, {OP_DELETE}, {old_keys}); END"
        )

    @staticmethod
    def _write_schema_event(conn: sqlite3.Connection, table: str, schema: TableSchema | None) -> int:
        payload = json.dumps(schema.to_dict()) if schema else None
        cur = conn.execute(
            f"INSERT INTO {CHANGES}(ts, tbl, op, c0) VALUES ({TS_SQL}, ?, {OP_SCHEMA}, ?)",
            (table, payload),
        )
        return int(cur.lastrowid or 0)

    @staticmethod
    def _write_resync(conn: sqlite3.Connection, table: TableSchema) -> None:
        cols = ", ".join(quote_ident(c) for c in table.column_names)
        c_list = ", ".join(f"c{i}" for i in range(len(table.columns)))
        order = ", ".join(quote_ident(k) for k in table.primary_key) or "rowid"
        conn.execute(
            f"INSERT INTO {CHANGES}(ts, tbl, op, {c_list}) "
            f"SELECT {TS_SQL}, ?, {OP_SNAPSHOT}, {cols} FROM {quote_ident(table.name)} ORDER BY {order}",
            (table.name,),
        )

    def uninstall(self, conn: sqlite3.Connection) -> None:
        """Remove every trigger and table of the capture (pending changes are discarded)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            remove_capture_objects(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- reading ---------------------------------------------------------------------------
    def column_history(self, conn: sqlite3.Connection) -> dict[str, list[tuple[int, TableSchema | None]]]:
        history: dict[str, list[tuple[int, TableSchema | None]]] = {}
        for tbl, from_seq, schema in conn.execute(
            f"SELECT tbl, from_seq, schema FROM {COLUMNS} ORDER BY tbl, from_seq"
        ):
            history.setdefault(tbl, []).append(
                (from_seq, TableSchema.from_dict(json.loads(schema)) if schema else None)
            )
        return history

    def schema_at(self, conn: sqlite3.Connection, seq: int) -> DatabaseSchema:
        """The protected tables as the change stream knows them just after ``seq``."""
        tables = []
        for versions in self.column_history(conn).values():
            current = [s for f, s in versions if f <= seq]
            if current and current[-1] is not None:
                tables.append(current[-1])
        return DatabaseSchema(dialect="sqlite", tables=sorted(tables, key=lambda t: t.name))

    def read(
        self, conn: sqlite3.Connection, after_seq: int, upto_seq: int, batch: int = 20000,
        boundaries: Sequence[int] | None = None,
    ) -> Iterator[list[ChangeEvent]]:
        """Events with after_seq < seq <= upto_seq, in seq order, in batches.

        ``boundaries``: seqs known to end a committed transaction (``upto_seq`` always
        does). SQLite tells triggers nothing of transactions, so an event's ``tx`` is the
        first boundary at or after it: the events between two boundaries share it and a
        point-in-time restore keeps them together. None: every event is its own ``tx``
        (the seq), for readers that need no grouping."""
        ends = None
        if boundaries is not None:
            ends = sorted({b for b in boundaries if after_seq < b < upto_seq} | {upto_seq})
        history = self.column_history(conn)
        meta = self.meta(conn)
        key_width, row_width = int(meta["key_width"]), int(meta["row_width"])
        k_cols = "".join(f", k{i}" for i in range(key_width))
        c_cols = "".join(f", c{i}" for i in range(row_width))
        k0 = 4
        c0 = 4 + key_width
        position = after_seq
        while position < upto_seq:
            rows = conn.execute(
                f"SELECT seq, ts, tbl, op{k_cols}{c_cols} FROM {CHANGES} "
                "WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (position, upto_seq, batch),
            ).fetchall()
            if not rows:
                break
            events = []
            append = events.append
            end_at = 0
            table_of = None  # (name, row end, key end, key positions, latest version?) of the last table
            for r in rows:
                seq, ts, tbl, op = r[0], r[1], r[2], r[3]
                if ends is None:
                    tx = seq
                else:
                    while ends[end_at] < seq:
                        end_at += 1
                    tx = ends[end_at]
                if op == OP_SCHEMA:
                    payload = r[c0]
                    append(ChangeEvent(seq, tx, ts, tbl, SCHEMA,
                                       table_schema=json.loads(payload) if payload else None))
                    continue
                versions = history.get(tbl, ())
                # almost every event is past its table's last schema change: check that first
                if table_of is None or table_of[0] != tbl or not (table_of[4] and versions[-1][0] < seq):
                    latest = bool(versions) and versions[-1][0] < seq
                    table = versions[-1][1] if latest else _version_at(versions, seq)
                    if table is None:
                        raise BadInputError(f"change log names table {tbl!r} with no recorded columns")
                    table_of = (tbl, c0 + len(table.columns), k0 + len(table.identity), table.key_indexes(),
                                latest)
                _, c_end, k_end, key_indexes, _ = table_of
                if op == OP_UPDATE:
                    append(ChangeEvent(seq, tx, ts, tbl, UPDATE, list(r[k0:k_end]), list(r[c0:c_end])))
                elif op == OP_INSERT or op == OP_SNAPSHOT:
                    row = list(r[c0:c_end])
                    append(ChangeEvent(seq, tx, ts, tbl, OP_NAMES[op], [row[i] for i in key_indexes], row))
                else:
                    append(ChangeEvent(seq, tx, ts, tbl, DELETE, list(r[k0:k_end])))
            yield events
            position = rows[-1][0]

    # -- pruning ---------------------------------------------------------------------------
    @staticmethod
    def prune(conn: sqlite3.Connection, upto_seq: int, chunk: int = 20000) -> int:
        """Delete stored events by seq range, in small transactions so trading writers never
        wait long. The newest row stays: it is what keeps seqs from being reused."""
        removed = 0
        row = conn.execute(f"SELECT min(seq), max(seq) FROM {CHANGES}").fetchone()
        if row[0] is None:
            return 0
        low, stop = row[0] - 1, min(upto_seq, row[1] - 1)
        while low < stop:
            high = min(low + chunk, stop)
            removed += conn.execute(f"DELETE FROM {CHANGES} WHERE seq > ? AND seq <= ?", (low, high)).rowcount
            low = high
        conn.execute(f"INSERT OR REPLACE INTO {META}(key, value) VALUES ('stored_upto', ?)", (str(upto_seq),))
        return removed

    def stored_upto(self, conn: sqlite3.Connection) -> int:
        """The seq up to which this database let go of its change log, trusting that the
        events were stored: a stored chain ending earlier means backups were lost."""
        recorded = int(self.meta(conn).get("stored_upto", "0"))
        row = conn.execute(f"SELECT min(seq) FROM {CHANGES}").fetchone()
        return max(recorded, (row[0] - 1) if row[0] is not None else 0)


def _version_at(versions: list[tuple[int, TableSchema | None]], seq: int) -> TableSchema | None:
    found = None
    for from_seq, schema in versions:
        if from_seq < seq:
            found = schema
        else:
            break
    return found


def remove_capture_objects(conn: sqlite3.Connection) -> None:
    """Drop capture triggers and tables (used on uninstall and on a restored copy)."""
    triggers = [
        n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        if n.startswith(TRIGGER_PREFIX)
    ]
    for name in triggers:
        conn.execute(f"DROP TRIGGER IF EXISTS {quote_ident(name)}")
    for table in (CHANGES, COLUMNS, META):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    has_sequence = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'"
    ).fetchone()[0]
    if has_sequence:
        conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (CHANGES,))
