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
    return conn.execute(f"SELECT * FROM ONLY {quote_ident(table)} ORDER BY {order}").fetchall()


def _typed(row: tuple[Any, ...]) -> list[Any]:
    # (type name, value) pairs: 1, 1.0 and '1' must not digest alike.
    return [(type(v).__name__, w) for v, w in zip(row, row_to_wire(list(row)) or [])]


def _select_list(conn: "psycopg.Connection", table: str) -> str:
    """Every column; one of a type that travels as text (``types.travels_as_text``) as its
    text, which is how two databases' values compare (their type oids differ)."""
    from trade_stream.postgres.types import travels_as_text

    columns = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (quote_ident(table),),
    ).fetchall()
    return ", ".join(f"{quote_ident(name)}::text" if travels_as_text(declared) else quote_ident(name)
                     for name, declared in columns)


def table_digest(conn: "psycopg.Connection", table: str, key: list[str]) -> str:
    """Rows in key order; a table without a key (``key`` empty) is a multiset of rows,
    whose order means nothing: its encoded rows are digested sorted."""
    sha = hashlib.sha256()
    select = f"SELECT {_select_list(conn, table)} FROM ONLY {quote_ident(table)}"  # its own rows, as COPY
    with conn.cursor(binary=True) as cursor:
        if not key:
            cursor.execute(select)
            for item in sorted(_encoder.encode(_typed(row)) for row in cursor.fetchall()):
                sha.update(item)
            return sha.hexdigest()
        cursor.execute(f"{select} ORDER BY {', '.join(quote_ident(k) for k in key)}")
        while rows := cursor.fetchmany(10000):
            sha.update(_encoder.encode([_typed(r) for r in rows]))
    return sha.hexdigest()


def database_digest(conn: "psycopg.Connection", tables: dict[str, list[str]]) -> dict[str, str]:
    """Digest per table; ``tables`` maps table name to its primary-key columns."""
    return {t: table_digest(conn, t, key) for t, key in sorted(tables.items())}
