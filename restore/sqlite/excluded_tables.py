"""The tables a SQLite restore gives back empty: those the snapshot holds but the backups never
captured (left out by ``[database] include/exclude``, or a virtual table no trigger can
watch). A full backup copies the whole file, so their rows are in it, as they were at that
instant and never since: a restore that kept them handed the bot a table hours or weeks
behind the others without a word (a lock or cache table it then trusted). Their schema stays
(views, triggers and foreign keys that name them keep working); the note says so."""

from __future__ import annotations

import sqlite3
from typing import Collection

from trade_stream.schema import quote_ident
from trade_stream.sqlite.virtual_tables import VIRTUAL, shadow_tables, virtual_tables
from trade_stream.table_selection import INTERNAL_PREFIXES


def empty_excluded(conn: sqlite3.Connection, captured: Collection[str]) -> list[str]:
    """Empty the snapshot's tables outside ``captured`` (the full backup's tables); returns
    a note for each that held rows."""
    virtual = virtual_tables(conn)
    spared = shadow_tables(conn, virtual) | set(captured)
    notes = []
    for (name,) in conn.execute(f"SELECT name FROM sqlite_master WHERE type = 'table' AND NOT {VIRTUAL}"
                                " ORDER BY name").fetchall():
        if name not in spared and not name.startswith(INTERNAL_PREFIXES):
            notes += _emptied(conn, name, f"DELETE FROM {quote_ident(name)}")
    for table in virtual.values():
        if table.rebuilt and (table.content is None or table.content in spared):
            continue  # captured through its content, or an index rebuilt from another table
        name = quote_ident(table.name)
        empty = f"DELETE FROM {name}" if table.module not in ("fts5",) or table.content \
            else f"INSERT INTO {name}({name}) VALUES ('delete-all')"  # contentless FTS5
        notes += _emptied(conn, table.name, empty)
    return notes


def _emptied(conn: sqlite3.Connection, name: str, statement: str) -> list[str]:
    had = conn.execute(f"SELECT count(*) FROM {quote_ident(name)}").fetchone()[0]
    if not had:
        return []
    conn.execute(statement)
    return [f"table {name}: left out of the backups ([database] exclude), restored empty: the full backup's "
            f"{had:,} row(s) of it would be stale"]
