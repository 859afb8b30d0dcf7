"""Replay a plan into a fresh SQLite database, atomically.

Everything happens in a hidden temporary file next to the target: the full snapshot is
decompressed into it, tradevault's capture objects are removed from it, the incremental
events are applied, row counts are checked against what the backups say, and only then
is the file renamed over the target. A failure at any point leaves the target untouched.

A restore of some tables (``Plan.tables``) drops the others from the snapshot first, then
the views and triggers that would fail without them; foreign keys into them stay in the
tables' definitions, unchecked, and are noted.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Collection, Iterable

from restore.latest import LatestPoint
from restore.planner import Plan
from restore.replay import RestoreResult, compare_counts, finished, replay_events
from restore.sqlite.apply import SqliteApplier, set_header_pragmas, user_triggers_suspended
from restore.sqlite.virtual_tables import kept_in_part, settle_virtual_tables
from trade_stream.durable import replacing_sqlite_file
from trade_stream.errors import BadInputError
from trade_stream.progress import Progress, no_progress
from trade_stream.schema import DatabaseSchema, quote_ident
from trade_stream.sqlite.capture import remove_capture_objects
from trade_stream.sqlite.database import DatabaseService
from trade_stream.sqlite.excluded_tables import empty_excluded
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import decompress_full


def check_target(target: DatabaseService, force: bool) -> None:
    if target.path.is_dir():  # (SQLite said "disk I/O error")
        raise BadInputError(f"restore target {target.path} is a directory: name the database file to create in it")
    if not target.is_empty() and not force:
        raise BadInputError(f"restore target {target.path} is not empty (use --force to replace it)")
    parent = target.path.absolute().parent
    if not parent.is_dir():
        raise BadInputError(f"restore target directory does not exist: {parent}")


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
            left_out = _drop_left_out(conn, plan)
            emptied = [f"table {name}: left out of the backups ([database] exclude), restored empty"
                       for name in empty_excluded(conn, [t.name for t in schema.tables])]
            applier = SqliteApplier(conn, plan.chosen(schema))
            latest = LatestPoint.read(store, plan, schema)
            objects = latest.objects if latest.objects_known else None
            with user_triggers_suspended(conn, _on_kept(objects, plan.tables)):
                result = replay_events(store, plan, applier, progress)
                settled = settle_virtual_tables(conn, objects if plan.tables is None else None,
                                                replayed=result.events > 0)
            set_header_pragmas(conn, latest.pragmas)
            if plan.tables is not None:
                result.notes = drop_unusable_objects(conn) + left_out_keys(conn, applier.tables, left_out)[0]
            result.notes = emptied + settled + result.notes
            commit_checked(conn, result, sorted(applier.tables), snapshot_file=True)
        finally:
            conn.close()
    return finished(result, str(target.path.absolute()), plan, started)


def commit_checked(conn: sqlite3.Connection, result: RestoreResult, tables: list[str], *,
                   snapshot_file: bool = False) -> None:
    """Row counts checked against what the backups recorded, then the private file is
    committed and switched to WAL, the mode a trading bot's database runs in.
    ``snapshot_file``: the file is a decompressed SQLite snapshot; at the snapshot's own
    point (a restore of some tables can pass later events of the others) its tables are
    byte for byte those of the file whose checksum was just verified and whose rows were
    counted when it was taken, so counting again would prove nothing."""
    unchanged = (snapshot_file and result.events == 0 and result.last_seq == result.first_seq
                 and result.tables is not None)
    if not (unchanged and sorted(result.tables) == tables):
        result.tables = _check_counts(conn, result.tables, tables)
    result.rows = sum(result.tables.values())
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = WAL")


def _check_counts(conn: sqlite3.Connection, expected: dict[str, int] | None,
                  tables: list[str]) -> dict[str, int]:
    return compare_counts(DatabaseService.row_counts(conn, tables), expected)


def _drop_left_out(conn: sqlite3.Connection, plan: Plan) -> set[str]:
    """The snapshot's tables the plan leaves out, dropped (their indexes and triggers go
    with them; with foreign keys off nothing cascades; a virtual table takes its shadow
    tables along)."""
    if plan.tables is None:
        return set()
    spared = kept_in_part(conn, plan.keeps)
    names = [name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 7) != 'sqlite_'").fetchall()
        if not plan.keeps(name) and name not in spared]
    for name in names:
        conn.execute(f"DROP TABLE {quote_ident(name)}")
    return set(names)


def _on_kept(objects: list[dict[str, Any]] | None, tables: Collection[str] | None) -> list[dict[str, Any]] | None:
    """The recorded views and triggers to build, without the triggers of tables left out
    (creating one would fail)."""
    if objects is None or tables is None:
        return objects
    views = {o["name"] for o in objects if o["kind"] == "view"}
    return [o for o in objects if o["kind"] != "trigger" or o["table"] in tables or o["table"] in views]


def drop_unusable_objects(conn: sqlite3.Connection) -> list[str]:
    """After a restore of some tables: the views and triggers that read a table left out
    would fail when used, so each is dropped and noted. A view fails when read; a trigger
    when a statement firing it is compiled (``EXPLAIN``), each trigger alone so that none
    is blamed for another."""
    notes = []
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'").fetchall():
        try:
            conn.execute(f"SELECT * FROM {quote_ident(name)} LIMIT 0")
        except sqlite3.Error as exc:
            conn.execute(f"DROP VIEW {quote_ident(name)}")
            notes.append(f"view {name} not kept: {exc} (a table left out)")
    triggers = conn.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    for name, _, _ in triggers:
        conn.execute(f"DROP TRIGGER {quote_ident(name)}")
    working = []
    for number, (name, table, sql) in enumerate(triggers):
        conn.execute(sql)
        missing = _missing_table(conn, table, number)
        conn.execute(f"DROP TRIGGER {quote_ident(name)}")
        if missing is None:
            working.append(sql)
        else:
            notes.append(f"trigger {name} not kept: {missing} (a table left out)")
    for sql in working:
        conn.execute(sql)
    return notes


def _missing_table(conn: sqlite3.Connection, table: str, number: int) -> str | None:
    """Why the statements that fire ``table``'s triggers do not compile for want of a
    table, or None. (``number`` makes each check's text new: an EXPLAIN statement from
    sqlite3's cache lists its old program, compiled before the triggers changed.)"""
    name = quote_ident(table)
    sets = ", ".join(f"{quote_ident(r[1])} = {quote_ident(r[1])}" for r in conn.execute(f"PRAGMA table_info({name})"))
    for statement in (f"INSERT INTO {name} DEFAULT VALUES", f"UPDATE {name} SET {sets}", f"DELETE FROM {name}"):
        try:
            conn.execute(f"EXPLAIN {statement} /* {number} */")
        except sqlite3.Error as exc:  # (a view without an INSTEAD OF trigger for it: not this)
            if "no such table" in str(exc):
                return str(exc)
    return None


def left_out_keys(conn: sqlite3.Connection, tables: Iterable[str],
                  left_out: Collection[str]) -> tuple[list[str], set[str]]:
    """Foreign keys of the restored ``tables`` into tables left out: they stay in the
    tables' definitions (SQLite enforces them only when the application turns them on)
    but cannot be checked. Returns a note for each and the tables holding one."""
    gone = {name.lower() for name in left_out}  # SQLite's names ignore case
    notes, holding = [], set()
    for table in sorted(tables):
        parents = sorted({row[2] for row in conn.execute(f"PRAGMA foreign_key_list({quote_ident(table)})")
                          if row[2].lower() in gone})
        notes += [f"{table}: foreign key to left-out table {parent} kept, not enforced" for parent in parents]
        if parents:
            holding.add(table)
    return notes, holding
