"""The tables of a SQLite file the backups do not capture (left out by ``[database]
include/exclude``, or a virtual table no trigger can watch), emptied in the full backup's
copy and in a restore. A full backup copies the whole file, so their rows were in it, as
they were at that instant and never since: a restore that kept them handed the bot a table
hours or weeks behind the others without a word (a lock or cache table it then trusted),
and the backup stored what the user had asked to leave out. Their schema stays (views,
triggers and foreign keys that name them keep working)."""

from __future__ import annotations

import sqlite3
from typing import Collection

from trade_stream.schema import quote_ident
from trade_stream.sqlite.virtual_tables import ordinary_tables, virtual_tables
from trade_stream.table_selection import INTERNAL_PREFIXES


def empty_excluded(conn: sqlite3.Connection, captured: Collection[str]) -> list[str]:
    """Empty the tables outside ``captured`` (the backup's tables); returns their names."""
    virtual = virtual_tables(conn)
    kept = set(captured)
    emptied = []
    for name in ordinary_tables(conn, virtual):
        if name not in kept and not name.startswith(INTERNAL_PREFIXES):
            _delete_all(conn, name)
            emptied.append(name)
    for table in virtual.values():
        if table.rebuilt and (table.content is None or table.content in kept):
            continue  # captured through its content, or an index rebuilt from another table
        name = quote_ident(table.name)
        conn.execute(f"DELETE FROM {name}" if table.module != "fts5" or table.content
                     else f"INSERT INTO {name}({name}) VALUES ('delete-all')")  # a contentless FTS5 table
        emptied.append(table.name)
    return sorted(emptied)


def _delete_all(conn: sqlite3.Connection, table: str) -> None:
    """Delete every row without firing the table's own triggers (one that writes another
    table would change rows the backup keeps): they are set aside and put back."""
    triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?"
                            " AND sql IS NOT NULL", (table,)).fetchall()
    for name, _ in triggers:
        conn.execute(f"DROP TRIGGER {quote_ident(name)}")
    conn.execute(f"DELETE FROM {quote_ident(table)}")
    for _, sql in triggers:
        conn.execute(sql)
