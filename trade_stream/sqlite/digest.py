"""Content digests of tables: equal digests mean equal rows, values and storage classes.

Used to prove a restore equals its source (tests, demo, benchmark, restore drills).
"""

from __future__ import annotations

import hashlib
import sqlite3

import msgspec

from trade_stream.schema import quote_ident

_encoder = msgspec.msgpack.Encoder()


def table_digest(conn: sqlite3.Connection, table: str, key: list[str]) -> str:
    order = ", ".join(quote_ident(k) for k in key) or "rowid"
    sha = hashlib.sha256()
    cursor = conn.execute(f"SELECT * FROM {quote_ident(table)} ORDER BY {order}")
    while rows := cursor.fetchmany(10000):
        # (type name, value) pairs: 1, 1.0 and '1' must not digest alike.
        sha.update(_encoder.encode([[(type(v).__name__, v) for v in row] for row in rows]))
    return sha.hexdigest()


def database_digest(conn: sqlite3.Connection, tables: dict[str, list[str]]) -> dict[str, str]:
    """Digest per table; ``tables`` maps table name to its primary-key columns."""
    return {t: table_digest(conn, t, key) for t, key in sorted(tables.items())}
