"""Content digests of PostgreSQL tables, over the stream's Python values (exact loaders of
``types.py``): equal digests mean equal rows and values, type by type. Used to prove
a PostgreSQL restore equals its source (tests, benchmark, restore drills)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import msgspec

from trade_stream.schema import quote_ident
from trade_stream.values import row_to_wire

if TYPE_CHECKING:
    import psycopg

_encoder = msgspec.msgpack.Encoder()


def table_rows(conn: "psycopg.Connection", table: str, key: list[str]) -> list[tuple[Any, ...]]:
    """Every row in primary-key order, as Python values."""
    order = ", ".join(quote_ident(k) for k in key) or "1"
    return conn.execute(f"SELECT * FROM {quote_ident(table)} ORDER BY {order}").fetchall()


def table_digest(conn: "psycopg.Connection", table: str, key: list[str]) -> str:
    order = ", ".join(quote_ident(k) for k in key) or "1"
    sha = hashlib.sha256()
    with conn.cursor(binary=True) as cursor:
        cursor.execute(f"SELECT * FROM {quote_ident(table)} ORDER BY {order}")
        while rows := cursor.fetchmany(10000):
            # (type name, value) pairs: 1, 1.0 and '1' must not digest alike.
            sha.update(_encoder.encode([[(type(v).__name__, w) for v, w in zip(r, row_to_wire(list(r)) or [])]
                                        for r in rows]))
    return sha.hexdigest()


def database_digest(conn: "psycopg.Connection", tables: dict[str, list[str]]) -> dict[str, str]:
    """Digest per table; ``tables`` maps table name to its primary-key columns."""
    return {t: table_digest(conn, t, key) for t, key in sorted(tables.items())}
