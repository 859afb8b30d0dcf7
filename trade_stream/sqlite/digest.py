"""Content digests of tables: equal digests mean equal rows, values and storage classes.

Used to prove a restore equals its source (tests, demo, benchmark, restore drills).
"""

from __future__ import annotations

import hashlib
import sqlite3

import msgspec

from trade_stream.schema import quote_ident

_encoder = msgspec.msgpack.Encoder()


def _typed(row: tuple) -> list:
    # (type name, value) pairs: 1, 1.0 and '1' must not digest alike.
    return [(type(v).__name__, v) for v in row]


def table_digest(conn: sqlite3.Connection, table: str, key: list[str]) -> str:
    """Rows in key order; a table without a key (``key`` empty) is a multiset of rows,
    whose order means nothing: its encoded rows are digested sorted."""
    sha = hashlib.sha256()
    if not key:
        encoded = sorted(_encoder.encode(_typed(row)) for row in conn.execute(f"SELECT * FROM {quote_ident(table)}"))
        for item in encoded:
            sha.update(item)
        return sha.hexdigest()
    order = ", ".join(quote_ident(k) for k in key)
    cursor = conn.execute(f"SELECT * FROM {quote_ident(table)} ORDER BY {order}")
    while rows := cursor.fetchmany(10000):
        sha.update(_encoder.encode([_typed(row) for row in rows]))
    return sha.hexdigest()


def database_digest(conn: sqlite3.Connection, tables: dict[str, list[str]]) -> dict[str, str]:
    """Digest per table; ``tables`` maps table name to its primary-key columns (empty for
    a table without one)."""
    return {t: table_digest(conn, t, key) for t, key in sorted(tables.items())}
