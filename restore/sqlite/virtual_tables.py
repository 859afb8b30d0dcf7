"""The virtual tables of a restored SQLite database, settled after the replay
(trade_stream/sqlite/virtual_tables.py says what is captured of them): those the source had
at the restore point exist, with the statements it recorded, and every full-text index is
rebuilt from its content, which the replay brought up to date (an FTS table's own
``<name>_content``, or the table an external-content index reads). The snapshot's index
shadow tables are as the full backup left them, and the application's triggers that keep an
external-content index current were suspended during the replay."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any, Iterator

from trade_stream.schema import quote_ident
from trade_stream.sqlite.virtual_tables import rebuild, shadow_tables, virtual_tables

_ASIDE = "_tradevault_content_aside"


def settle_virtual_tables(conn: sqlite3.Connection, recorded: list[dict[str, Any]] | None, *,
                          replayed: bool = True) -> list[str]:
    """``recorded``: the database's objects at the restore point (None: not known, or a
    partial restore: the snapshot's virtual tables stay); ``replayed``: events were applied
    (else the snapshot's indexes match their content already, and rebuilding one costs a
    read of all of it). Returns the notes: an index that could not be rebuilt (its content
    table left out of a partial restore)."""
    changed = False
    if recorded is not None:
        wanted = {o["name"]: o["ddl"] for o in recorded if o.get("kind") == "virtual table"}
        for name in virtual_tables(conn).keys() - wanted.keys():  # dropped since the full backup
            conn.execute(f"DROP TABLE {quote_ident(name)}")
            changed = True
        present = virtual_tables(conn)
        for name, ddl in wanted.items():
            if name not in present:
                _create(conn, name, ddl)
                changed = True
    if not (replayed or changed):
        return []
    notes = []
    for table in virtual_tables(conn).values():
        if not table.rebuilt:
            continue
        try:
            with _savepoint(conn):
                rebuild(conn, table)
        except sqlite3.Error as exc:
            notes.append(f"full-text index {table.name} not rebuilt: {exc} (it may not match its content)")
    return notes


def _create(conn: sqlite3.Connection, name: str, ddl: str) -> None:
    """A virtual table created after the full backup: its content table, replayed as an
    ordinary table meanwhile, is set aside while the module creates its shadow tables, then
    its rows are moved into the new one."""
    content = f"{name}_content"
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (content,)).fetchone()
    if exists:
        conn.execute(f"ALTER TABLE {quote_ident(content)} RENAME TO {_ASIDE}")
    conn.execute(ddl)
    if exists:
        conn.execute(f"INSERT INTO {quote_ident(content)} SELECT * FROM {_ASIDE}")
        conn.execute(f"DROP TABLE {_ASIDE}")


def kept_in_part(conn: sqlite3.Connection, keeps: Any) -> set[str]:
    """For a restore of some tables (``keeps``: the plan's test of a name): the tables not to
    drop directly. Shadow tables go with their virtual table, which is kept when it or its
    content table is chosen."""
    virtual = virtual_tables(conn)
    spared = shadow_tables(conn, virtual)
    spared |= {name for name, table in virtual.items() if keeps(name) or (table.content and keeps(table.content))}
    return spared


@contextlib.contextmanager
def _savepoint(conn: sqlite3.Connection) -> Iterator[None]:
    """A savepoint in the caller's transaction: a failed rebuild leaves the rest."""
    conn.execute("SAVEPOINT tradevault_rebuild")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK TO tradevault_rebuild")
        raise
    finally:
        conn.execute("RELEASE tradevault_rebuild")
