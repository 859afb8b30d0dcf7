"""Read-only SQL on a materialised past state (``restore.point_cache``).

Two locks, either of which alone refuses a write: the file is opened read-only
(``mode=ro``), and an authorizer allows only reading (SELECT, reading columns, functions,
recursive CTEs, and the PRAGMAs that describe the schema). A refused statement is bad
input: the user asked for something ``query`` does not do.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from primitives.sqlite_files import open_read_only
from trade_stream.errors import BadInputError

_READS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE})
_DESCRIBING_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    "collation_list", "function_list",
    "data_version",  # read by an FTS5 table whenever it is opened ("vtable constructor failed" without it)
})


def _authorize(action: int, first: str | None, second: str | None, database: str | None,
               trigger: str | None) -> int:
    if action in _READS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and first in _DESCRIBING_PRAGMAS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_UPDATE and first == "sqlite_master" and trigger is None:
        # asked while a virtual table's module declares its columns as it is opened; a
        # statement of the user's that writes the schema still fails on the read-only file
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def run_query(path: Path, sql: str) -> QueryResult:
    """One statement on the SQLite file at ``path``; any statement that is not a read is
    refused (BadInputError), and so is SQL that SQLite cannot run."""
    conn = open_read_only(path)
    try:
        conn.set_authorizer(_authorize)
        try:
            cursor = conn.execute(sql)
            rows = cursor.fetchall()
        except sqlite3.DatabaseError as exc:
            if "not authorized" in str(exc) or "readonly" in str(exc):
                raise BadInputError(f"query refused: only reading statements are allowed ({exc})") from None
            raise BadInputError(f"query failed: {exc}") from None
        except (sqlite3.ProgrammingError, sqlite3.Warning) as exc:  # e.g. two statements at once
            raise BadInputError(f"query failed: {exc}") from None
        columns = [d[0] for d in cursor.description or ()]
        return QueryResult(columns, rows)
    finally:
        conn.close()
