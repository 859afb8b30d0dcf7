"""A PostgreSQL table as SQLite should hold it (restore into SQLite). Pure.

What the source recorded (``trade_stream/postgres/catalog.py``) becomes one ``CREATE
TABLE`` with the columns (``type_mapping.pg_column_to_sqlite``), NOT NULL, defaults that
mean the same in SQLite, the primary key, UNIQUE constraints and foreign keys (with their
actions and deferrability), plus ``CREATE INDEX`` statements built after the data:

==========================================  ===========================================
PostgreSQL                                  SQLite
==========================================  ===========================================
identity / serial single integer key        ``INTEGER PRIMARY KEY AUTOINCREMENT`` (a rowid
                                            alias: new rows get ids, past the source's
                                            sequence position, never reused)
other primary keys                          ``PRIMARY KEY (...)``
UNIQUE (...)                                ``CONSTRAINT name UNIQUE (...)``
FOREIGN KEY ... ON DELETE/UPDATE ...        the same clause (``NOT VALID`` dropped)
btree indexes, partial and expression ones  ``CREATE [UNIQUE] INDEX``, casts removed;
                                            one SQLite cannot parse is skipped (noted)
defaults: literals, ``now()``,              the literal, ``CURRENT_TIMESTAMP``;
``CURRENT_TIMESTAMP``, true/false           1/0; others skipped (noted)
generated columns                           ``GENERATED ALWAYS AS (...)`` with the
                                            expression, casts removed, when SQLite
                                            accepts it (tried in memory), else not kept
CHECK, EXCLUDE, ``NULLS NOT DISTINCT``,     not kept (noted): their expressions are
triggers, views, functions                  PostgreSQL's language
==========================================  ===========================================

Every decision that drops or changes something is returned as a note, for
``restore --dry-run`` and the restore's report.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from dataclasses import dataclass, field

from restore.type_mapping import pg_column_to_sqlite
from trade_stream.postgres.catalog import referenced_schema, referenced_table
from trade_stream.postgres.database import post_load
from trade_stream.postgres.types import pg_family
from trade_stream.schema import Column, TableSchema, quote_ident

# a cast as pg_get_expr / pg_get_indexdef print it: ::text, ::character varying(25),
# ::timestamp without time zone, ::"MyEnum", ::numeric[]
_TYPMOD = r"(?:\(\d+(?:,\s*\d+)?\))?"
_CAST = re.compile(rf"::(?:\"(?:[^\"]|\"\")+\"|[a-z_][\w.]*){_TYPMOD}"
                   rf"(?: varying| precision| without time zone| with time zone)?{_TYPMOD}(?:\[\])*")
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
_LITERAL = re.compile(r"^\(*('(?:[^']|'')*'|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\)*$")
_NOW = {"now()", "current_timestamp", "transaction_timestamp()", "statement_timestamp()",
        "clock_timestamp()", "localtimestamp"}
_INDEX = re.compile(r'^CREATE (UNIQUE )?INDEX ((?:"(?:[^"]|"")+"|[^\s"]+)) ON (?:ONLY )?'
                    r'(?:(?:"(?:[^"]|"")+"|[^\s."]+)\.)?(?:"(?:[^"]|"")+"|[^\s."]+) USING (\w+) (.*)$', re.S)


@dataclass
class SqliteTable:
    """One table's SQLite form: the CREATE TABLE, the indexes to build after the data, the
    AUTOINCREMENT column whose counter continues the source's sequence, and the notes."""

    schema: TableSchema
    indexes: list[str] = field(default_factory=list)
    autoincrement: str | None = None
    sequence: str | None = None  # the source's sequence behind ``autoincrement``
    notes: list[str] = field(default_factory=list)
    unchecked_keys: bool = False  # a NOT VALID foreign key: the source let old rows break it


def strip_casts(expression: str) -> str:
    """The expression without PostgreSQL's ``::type`` casts (string literals untouched)."""
    out, at = [], 0
    for literal in _STRING_LITERAL.finditer(expression):
        out.append(_CAST.sub("", expression[at:literal.start()]) + literal.group())
        at = literal.end()
    return "".join(out) + _CAST.sub("", expression[at:])


def sqlite_default(expression: str) -> str | None:
    """A PostgreSQL default expression in SQLite's words, or None when it has none."""
    bare = strip_casts(expression).strip()
    if bare.lower() in _NOW:
        return "CURRENT_TIMESTAMP"
    if bare.lower() in ("current_date", "current_time"):
        return bare.upper()
    if bare.lower() in ("true", "false"):
        return "1" if bare.lower() == "true" else "0"
    match = _LITERAL.match(bare)
    if match:
        literal = match.group(1)
        return f"({literal})" if literal.startswith("-") else literal
    return None


def sqlite_index(statement: str, table: str) -> tuple[str | None, str]:
    """A ``pg_get_indexdef`` statement as SQLite's CREATE INDEX (None: not expressible),
    with why not."""
    match = _INDEX.match(statement)
    if match is None:
        return None, "not a plain index definition"
    unique, name, method, rest = match.groups()
    if method != "btree":
        return None, f"a {method} index"
    rest = strip_casts(rest)
    if " INCLUDE (" in rest or " WITH (" in rest:
        return None, "INCLUDE or storage options"
    rest = re.sub(r" NULLS (?:FIRST|LAST)", "", rest)
    return f"CREATE {unique or ''}INDEX {name} ON {quote_ident(table)} {rest}", ""


def _generated(table: str, column: dict, columns: list[str]) -> tuple[str | None, str]:
    """A generated column as SQLite computes it (casts removed), when SQLite accepts its
    expression beside the table's ``columns`` (tried on an in-memory table), and the note."""
    expression = strip_casts(column["expr"])
    declared = pg_column_to_sqlite(Column(name=column["name"], declared=column["declared"],
                                          family=pg_family(column["declared"]))).declared
    definition = f"{quote_ident(column['name'])} {declared} GENERATED ALWAYS AS ({expression}) {column['kind']}"
    where = f"{table}.{column['name']}"
    try:
        with contextlib.closing(sqlite3.connect(":memory:")) as trial:
            trial.execute(f"CREATE TABLE t ({', '.join([*columns, definition])})")
    except sqlite3.Error as exc:
        return None, f"{where}: generated column not kept (SQLite refuses {expression}: {exc})"
    return definition, f"{where}: generated column kept, SQLite computes {expression} (in its own arithmetic)"


def _integer_key(table: TableSchema, extra: dict) -> Column | None:
    """The single integer primary key column fed by a sequence (identity or serial)."""
    if len(table.primary_key) != 1:
        return None
    key = table.primary_key[0]
    column = next(c for c in table.columns if c.name == key)
    fed = key in extra.get("identity", {}) or key in extra.get("serial", {})
    return column if fed and column.family == "integer" else None


def table_to_sqlite(table: TableSchema) -> SqliteTable:
    """The SQLite form of a PostgreSQL table description (see the module doc)."""
    if table.dialect == "sqlite":
        return SqliteTable(table)
    extra = post_load(table)
    out = SqliteTable(table)
    key = _integer_key(table, extra)
    defaults = extra.get("defaults", {})
    columns, definitions = [], []
    for column in table.columns:
        mapped = pg_column_to_sqlite(column)
        if key is not None and column.name == key.name:
            mapped = Column(name=column.name, declared="INTEGER", family="integer", nullable=False)
            out.autoincrement = column.name
            out.sequence = (extra.get("sequences", {}).get(column.name, {}).get("name")
                            or extra.get("serial", {}).get(column.name))
            definitions.append(f"{quote_ident(column.name)} INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT")
            out.notes.append(f"{table.name}.{column.name}: {column.declared} identity -> "
                             "INTEGER PRIMARY KEY AUTOINCREMENT")
            columns.append(mapped)
            continue
        if mapped.declared != column.declared:
            out.notes.append(f"{table.name}.{column.name}: {column.declared} -> {mapped.declared}")
        text = f"{quote_ident(column.name)} {mapped.declared}" + ("" if column.nullable else " NOT NULL")
        if column.name in defaults:
            default = sqlite_default(defaults[column.name])
            if default is None:
                out.notes.append(f"{table.name}.{column.name}: default {defaults[column.name]} not kept")
            else:
                text += f" DEFAULT {default}"
        definitions.append(text)
        columns.append(mapped)
    constraints = []
    if table.primary_key and key is None:
        keys = ", ".join(quote_ident(k) for k in table.primary_key)
        name = extra.get("pk_name")
        constraints.append((f"CONSTRAINT {quote_ident(name)} " if name else "") + f"PRIMARY KEY ({keys})")
    for constraint in extra.get("constraints", []):
        definition = constraint["def"]
        if definition.startswith("UNIQUE (") and " INCLUDE (" not in definition:
            constraints.append(f"CONSTRAINT {quote_ident(constraint['name'])} {definition}")
        else:
            out.notes.append(f"{table.name}: constraint {constraint['name']} ({definition}) not kept")
    for check in extra.get("checks", []):
        out.notes.append(f"{table.name}: check {check['name']} not kept (PostgreSQL expression)")
    for foreign in extra.get("foreign_keys", []):
        definition = foreign["def"]
        schema = referenced_schema(definition)
        if schema is not None:
            out.notes.append(f"{table.name}: foreign key {foreign['name']} to {schema}.{referenced_table(definition)} "
                             f"not kept (schema {schema} is not backed up)")
            continue
        if definition.endswith(" NOT VALID"):
            definition = definition[: -len(" NOT VALID")]
            out.unchecked_keys = True
        constraints.append(f"CONSTRAINT {quote_ident(foreign['name'])} {definition}")
    for statement in extra.get("indexes", []):
        index, why = sqlite_index(statement, table.name)
        if index is None:
            out.notes.append(f"{table.name}: index not kept ({why}): {statement}")
        else:
            out.indexes.append(index)
    if extra.get("triggers"):
        out.notes.append(f"{table.name}: {len(extra['triggers'])} trigger(s) not kept (PostgreSQL functions)")
    for column in sorted(extra.get("generated", []), key=lambda c: c["position"]):
        definition, note = _generated(table.name, column, definitions)
        out.notes.append(note)
        if definition is not None:
            definitions.insert(column["position"], definition)
    if extra.get("row_security") or extra.get("policies"):
        out.notes.append(f"{table.name}: row security and {len(extra.get('policies', []))} policy(ies) not kept "
                         "(SQLite has none)")
    ddl = f"CREATE TABLE {quote_ident(table.name)} ({', '.join(definitions + constraints)})"
    out.schema = TableSchema(name=table.name, columns=columns, primary_key=list(table.primary_key),
                             dialect="sqlite", ddl=ddl)
    return out


def database_notes(objects: list[dict]) -> list[str]:
    """The database objects a SQLite restore leaves out: functions, views, sequences and
    extensions are PostgreSQL's own; owners and privileges too, said once."""
    notes = [f"{o.get('kind', 'object')} {o.get('name', '?')} not kept (PostgreSQL only)" for o in objects
             if o.get("kind") != "privileges"]
    if any(o.get("kind") == "privileges" for o in objects):
        notes.append("owners and privileges not kept (SQLite has none)")
    return notes
