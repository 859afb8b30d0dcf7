"""SQLite's generated columns in a restore into PostgreSQL, once the rows are in.

The mapping (``restore.schema_to_postgres``) gives each one SQLite's expression as a
PostgreSQL ``GENERATED ALWAYS AS (...) STORED`` column, which the server computes as rows
arrive; ``create_table`` makes it a plain column when PostgreSQL refuses the expression.
Taking an expression is not computing the same values (``price || ''`` prints a REAL
otherwise; integer and REAL division differ), so every value is checked here against the
one SQLite computed: SQLite's values go into a temporary table (the keys with them, or the
whole rows of a table without a key) and are compared in the server. A column whose values
differ becomes a plain column holding SQLite's values (``DROP EXPRESSION``), as does a
refused one: the rows are exact either way, and the notes say which columns the server
no longer computes."""

from __future__ import annotations

import sqlite3
from typing import Any

from restore.postgres.apply import cast_type
from restore.postgres.sqlite_load import Slice, copy_slice
from trade_stream.postgres.database import post_load
from trade_stream.schema import Column, TableSchema, family_of, quote_ident

SIDE = "tradevault_generated"


def settle_generated(conn: Any, source: sqlite3.Connection, table: TableSchema) -> list[str]:
    """Check the generated columns the mapping gave ``table`` (loaded, in ``conn``'s
    schema) against SQLite's values in ``source``, and make plain those whose values
    differ; fill the plain ones. Returns the notes."""
    tried = [c for c in post_load(table).get("generated", []) if c.get("tried")]
    if not tried:
        return []
    name = quote_ident(table.name)
    computed = {row[0] for row in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attgenerated <> ''", (name,))}
    match = table.primary_key or table.column_names
    side = TableSchema(name=table.name, dialect="postgresql", primary_key=[], columns=[
        *(c for c in table.columns if c.name in match),
        *(Column(c["name"], cast_type(c["declared"]), family_of(c["declared"])) for c in tried)])
    conn.execute(f"CREATE TEMP TABLE {SIDE} ({', '.join(f'{quote_ident(c.name)} {c.declared}' for c in side.columns)})"
                 " ON COMMIT DROP")
    copy_slice(conn, source, side, Slice(table.name), lambda rows: None, into=SIDE)
    checked = [c for c in tried if c["name"] in computed]
    differ = dict(zip([c["name"] for c in checked], _differences(conn, table, match, checked))) if checked else {}
    notes = [f"{table.name}.{column}: generated column kept as a plain column holding the source's values: "
             f"PostgreSQL computes {count:,} of them otherwise" for column, count in differ.items() if count]
    plain = [c["name"] for c in tried if c["name"] not in computed or differ.get(c["name"])]
    for column in plain:
        if column in computed:
            conn.execute(f"ALTER TABLE {name} ALTER COLUMN {quote_ident(column)} DROP EXPRESSION")
    if plain and table.primary_key:
        conn.execute(f"UPDATE {name} t SET {', '.join(f'{quote_ident(c)} = s.{quote_ident(c)}' for c in plain)}"
                     f" FROM {SIDE} s WHERE {_joined(match)}")
    elif plain:  # no key to find a row by: the rows again, whole, from SQLite's
        columns = ", ".join(quote_ident(c) for c in [*table.column_names, *plain])
        conn.execute(f"DELETE FROM {name}")
        conn.execute(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {SIDE}")
    conn.execute(f"DROP TABLE {SIDE}")
    return notes


def _joined(key: list[str]) -> str:
    return " AND ".join(f"t.{quote_ident(k)} = s.{quote_ident(k)}" for k in key)


def _compared(column: dict[str, Any], alias: str) -> str:
    """The column as compared: json has no equality, jsonb has."""
    value = f"{alias}.{quote_ident(column['name'])}" if alias else quote_ident(column["name"])
    return f"{value}::jsonb" if family_of(column["declared"]) == "json" else value


def _differences(conn: Any, table: TableSchema, match: list[str], columns: list[dict[str, Any]]) -> list[int]:
    """Per generated column, how many of the server's values differ from SQLite's: row by
    row through the key, or (no key) as many rows as differ between the two multisets of
    the column's values."""
    name = quote_ident(table.name)
    if table.primary_key:
        counts = ", ".join(f"count(*) FILTER (WHERE {_compared(c, 't')} IS DISTINCT FROM {_compared(c, 's')})"
                           for c in columns)
        return list(conn.execute(f"SELECT {counts} FROM {name} t JOIN {SIDE} s ON {_joined(match)}").fetchone())
    return [conn.execute(f"SELECT count(*) FROM (SELECT {_compared(c, '')} FROM {name} EXCEPT ALL"
                         f" SELECT {_compared(c, '')} FROM {SIDE}) d").fetchone()[0] for c in columns]
