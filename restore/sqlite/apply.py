"""Applying change events to a SQLite database (restore target), fast and checked.

Consecutive events of the same table and operation become one ``executemany`` with a
prepared statement; every update and delete must hit exactly one row, so a replay that
diverges from the source stops with an integrity error instead of going on silently.

Inserts and updates of a SQLite source replay with ``OR REPLACE``: when the source resolved
a conflict by REPLACE, SQLite deleted the conflicting row without firing delete triggers,
so the stream holds only the insert; replaying it the same way reproduces the same result.
A PostgreSQL source never resolves a conflict so (``replace_conflicts=False``): there a
conflict is a divergence, and a run of updates that moves keys (a DEFERRABLE key shifted
by one statement) is applied as the source's commit saw it (``restore.moved_keys``).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from typing import Any, Iterator

from restore.moved_keys import apply_in_stretches, moves_keys
from trade_stream.errors import IntegrityError
from trade_stream.events import DELETE, INSERT, SCHEMA, SNAPSHOT, UPDATE, ChangeEvent, runs
from trade_stream.schema import DatabaseSchema, TableSchema, quote_ident
from trade_stream.sqlite.database import HEADER_PRAGMAS, DatabaseService


class SqliteApplier:
    def __init__(self, conn: sqlite3.Connection, schema: DatabaseSchema, *, replace_conflicts: bool = True) -> None:
        self.conn = conn
        self.replace_conflicts = replace_conflicts
        self.tables: dict[str, TableSchema] = {t.name: t for t in schema.tables}
        self._sql: dict[tuple[str, str], str] = {}
        self.applied = 0

    def _statement(self, table: str, op: str) -> str:
        cached = self._sql.get((table, op))
        if cached:
            return cached
        schema = self.tables.get(table)
        if schema is None:
            raise IntegrityError(f"replay: event for unknown table {table!r}")
        name = quote_ident(table)
        cols = [quote_ident(c) for c in schema.column_names]
        if schema.primary_key:
            where = " AND ".join(f"{quote_ident(k)} {_key_match(schema, k)} ?" for k in schema.primary_key)
        else:  # a keyless table: one row equal to the old image (duplicates stay a multiset)
            equal = " AND ".join(f"{c} IS ?" for c in cols)
            where = f"rowid = (SELECT rowid FROM {name} WHERE {equal} LIMIT 1)"
        replace = " OR REPLACE" if self.replace_conflicts else ""
        if op in (INSERT, SNAPSHOT):
            sql = f"INSERT{replace} INTO {name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        elif op == UPDATE:
            sql = f"UPDATE{replace} {name} SET {', '.join(f'{c} = ?' for c in cols)} WHERE {where}"
        elif op == DELETE:
            sql = f"DELETE FROM {name} WHERE {where}"
        else:
            raise IntegrityError(f"replay: unknown operation {op!r}")
        self._sql[(table, op)] = sql
        return sql

    def fold_key(self, table: str) -> list[int] | None:
        """Positions of the key columns when rows of ``table`` may be replayed folded and
        in key order (see net_effect): no UNIQUE constraint besides the primary key, whose
        columns compare as Python compares them (binary collation)."""
        schema = self.tables.get(table)
        if schema is None or not schema.primary_key or DatabaseService.unique_besides_key(self.conn, table):
            return None
        for _, index, _, origin, _ in self.conn.execute(f"PRAGMA index_list({quote_ident(table)})"):
            if origin == "pk":
                info = self.conn.execute(f"PRAGMA index_xinfo({quote_ident(index)})").fetchall()
                if any(key and (coll or "BINARY").upper() != "BINARY" for *_, coll, key in info):
                    return None
        return schema.key_indexes()

    def _flush(self, table: str, op: str, params: list[Any]) -> None:
        if not params:
            return
        sql = self._statement(table, op)
        try:
            cur = self.conn.executemany(sql, params)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(f"replay diverged from the source on table {table!r}: {exc}") from None
        except sqlite3.ProgrammingError as exc:
            raise IntegrityError(f"replay: malformed event for table {table!r}: {exc}") from None
        if op in (UPDATE, DELETE) and cur.rowcount != len(params):
            raise IntegrityError(
                f"replay diverged from the source: {op} of {len(params) - cur.rowcount} "
                f"missing row(s) in table {table!r}"
            )
        self.applied += len(params)

    def apply(self, events: list[ChangeEvent]) -> None:
        """Apply events in order (the caller owns the transaction)."""
        for table, op, run in runs(events):
            if op == SCHEMA:
                self._apply_schema(run[0])
            elif op == UPDATE:
                params = [(*(e.row or ()), *(e.key or ())) for e in run]
                if not self._moved_together(table, params):
                    self._flush(table, op, params)
            elif op == DELETE:
                self._flush(table, op, [tuple(e.key or ()) for e in run])
            else:
                self._flush(table, op, [tuple(e.row or ()) for e in run])

    def _moved_together(self, table: str, params: list[Any]) -> bool:
        """A PostgreSQL source's run of updates that moves keys, applied in stretches as a
        whole (restore.moved_keys); whether it was one."""
        schema = self.tables.get(table)
        if self.replace_conflicts or schema is None or not schema.primary_key:
            return False
        key_idx, nkeys = schema.key_indexes(), len(schema.primary_key)
        if not moves_keys(params, key_idx, nkeys):
            return False
        apply_in_stretches(table, params, key_idx, nkeys, lambda stretch: self._move(table, stretch, nkeys))
        return True

    def _move(self, table: str, stretch: list[Any], nkeys: int) -> bool:
        """One stretch whole, in a savepoint: its old keys deleted, its new rows inserted;
        rolled back, False, when its old keys are not all there."""
        self.conn.execute("SAVEPOINT tradevault_move")
        deleted = self.conn.executemany(self._statement(table, DELETE), [p[-nkeys:] for p in stretch]).rowcount
        if deleted == len(stretch):
            self._flush(table, INSERT, [p[:-nkeys] for p in stretch])
        else:
            self.conn.execute("ROLLBACK TO tradevault_move")
        self.conn.execute("RELEASE tradevault_move")
        return deleted == len(stretch)

    def prepare(self, events: list[ChangeEvent]) -> None:
        """Nothing ahead: sqlite3 holds the GIL for most of its work, so a thread making
        parameter rows ahead only adds hand-offs (measured slower)."""
        return None

    def apply_prepared(self, prepared: object) -> None:
        raise TypeError("the SQLite applier prepares nothing ahead")

    def _apply_schema(self, event: ChangeEvent) -> None:
        """A table was created, altered or dropped at this point: recreate it empty; the
        SNAPSHOT events that follow in the stream refill it."""
        name = quote_ident(event.table)
        self.conn.execute(f"DROP TABLE IF EXISTS {name}")
        self._sql = {k: v for k, v in self._sql.items() if k[0] != event.table}
        if event.table_schema is None:
            self.tables.pop(event.table, None)
            return
        table = TableSchema.from_dict(event.table_schema)
        create_table(self.conn, table)
        self.tables[table.name] = table


def _key_match(table: TableSchema, key: str) -> str:
    """``=`` where a key column cannot hold NULL (measured faster on SQLite than ``IS``);
    ``IS`` where it can: SQLite lets a non-integer primary key of a rowid table be NULL."""
    column = next(c for c in table.columns if c.name == key)
    rowid_alias = table.primary_key == [key] and column.declared.strip().upper() == "INTEGER"
    without_rowid = "WITHOUT ROWID" in " ".join(table.ddl.upper().split())
    return "=" if rowid_alias or without_rowid or not column.nullable else "IS"


def create_table(conn: sqlite3.Connection, table: TableSchema) -> None:
    """Create a table from its description: the source's DDL when it is SQLite's own, with
    its indexes."""
    if table.dialect == "sqlite" and table.ddl:
        conn.execute(table.ddl)
        for statement in table.indexes or ():
            _create_index(conn, statement, table.name)
        return
    cols = ", ".join(f"{quote_ident(c.name)} {c.declared or ''}".rstrip() for c in table.columns)
    pk = ", ".join(quote_ident(k) for k in table.primary_key)
    conn.execute(f"CREATE TABLE {quote_ident(table.name)} ({cols}{f', PRIMARY KEY ({pk})' if pk else ''})")


def _create_index(conn: sqlite3.Connection, statement: str, table: str) -> None:
    """An index of ``table``. Its name is the database's: a table renamed away takes its
    indexes along, and the capture's resynchronisation may write the renamed table before
    the drop of the old name, in the same transaction. A same-named index still on another
    table then belongs to a table this transaction drops or recreates (at its end the names
    are the source's, which are unique): it goes."""
    try:
        conn.execute(statement)
        return
    except sqlite3.OperationalError as exc:
        taken = _TAKEN.fullmatch(str(exc))
        name = taken.group(1) if taken else None
        owner = name and conn.execute("SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = ?",
                                      (name,)).fetchone()
        if not name or not owner or owner[0] == table:
            raise
    conn.execute(f"DROP INDEX {quote_ident(name)}")
    conn.execute(statement)


_TAKEN = re.compile(r"index (.+) already exists")


def set_header_pragmas(conn: sqlite3.Connection, pragmas: dict[str, int]) -> None:
    """The source's header numbers (``DatabaseService.header_pragmas``) as recorded."""
    for name, value in pragmas.items():
        if name in HEADER_PRAGMAS:
            conn.execute(f"PRAGMA {name} = {int(value)}")


@contextlib.contextmanager
def user_triggers_suspended(conn: sqlite3.Connection, latest: list[dict[str, str]] | None = None) -> Iterator[None]:
    """Inside the caller's transaction: the replayed events already include what the
    source's own triggers did, so those triggers must not fire again while applying.
    Afterwards the views and triggers are those of ``latest`` (what the last incremental
    recorded, see DatabaseService.database_objects) when given, else the ones there were."""
    saved = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in saved:
        conn.execute(f"DROP TRIGGER {quote_ident(name)}")
    yield
    if latest is None:
        for _, sql in saved:
            conn.execute(sql)
        return
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'").fetchall():
        conn.execute(f"DROP VIEW {quote_ident(name)}")
    for item in latest:
        if item["kind"] in ("view", "trigger"):  # virtual tables: restore.sqlite.virtual_tables
            conn.execute(item["ddl"])
