"""A SQLite table as PostgreSQL should hold it (restore into PostgreSQL): a migration the
application can use. Pure: it works on what ``restore.postgres.sqlite_catalog`` read.

==========================================  ===========================================
SQLite                                      PostgreSQL
==========================================  ===========================================
declared types                              ``type_mapping.sqlite_type_to_pg``; a column
                                            one of whose values breaks the declared limit
                                            falls back (``type_limits``), noted
no declared type, or a value the declared  by its values' storage classes
type cannot take ('abc' in an INTEGER       (``untyped_column``), noted
column, a Unix time in a DATETIME one)
``INTEGER PRIMARY KEY`` (a rowid alias)     identity (BY DEFAULT) whose next value is
                                            past the largest id; with AUTOINCREMENT past
                                            ``sqlite_sequence`` too
UNIQUE constraints                          UNIQUE constraints, built after the data
CREATE [UNIQUE] INDEX (partial, expression  the same index, built after the data; one
ones)                                       PostgreSQL cannot build is skipped, noted
foreign keys with their actions             foreign keys, validated after the load; SQLite
                                            enforces them only when the application turns
                                            them on, so one that old rows break is added
                                            NOT VALID (kept for new rows), noted
defaults: literals, CURRENT_TIMESTAMP,      the literal (0/1 -> false/true for booleans),
CURRENT_DATE, ``datetime('now')``, TRUE     UTC now (SQLite's clock is UTC); others
                                            skipped, noted
CHECK constraints, triggers                 not kept (SQLite's statements), noted
generated columns (STORED or VIRTUAL)       STORED generated columns with SQLite's
                                            expression when PostgreSQL takes it and
                                            computes the same values (checked after the
                                            load), else plain columns holding SQLite's
                                            values, noted
views                                       created when PostgreSQL accepts their SQL,
                                            else skipped, noted
==========================================  ===========================================

The result is a PostgreSQL table description whose ``ddl`` is in the form the source's
own catalog reader writes (``trade_stream/postgres/catalog.py``), so the restore builds it
the same way; index and foreign-key statements that may not translate are marked
``tried``: attempted one by one, each failure noted instead of failing the restore.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from restore.type_limits import Limit, limit_of
from restore.type_mapping import sqlite_column_to_pg
from trade_stream.schema import Column, TableSchema, family_of, quote_ident

_ACTIONS = {"NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"}
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?$")
_STRING = re.compile(r"^'(?:[^']|'')*'$")
_UTC_NOW = "timezone('utc'::text, now())"


@dataclass
class SqliteIndex:
    name: str
    unique: bool
    #: the index's key as SQLite's statement writes it (columns, expressions, DESC...)
    key: str
    where: str | None = None


@dataclass
class SqliteForeignKey:
    columns: list[str]
    parent: str
    parent_columns: list[str] | None  # None: the parent's primary key
    on_update: str = "NO ACTION"
    on_delete: str = "NO ACTION"


@dataclass
class SqliteGenerated:
    """A generated column (not in the change stream: the triggers see the stored columns)."""

    name: str
    declared: str
    expression: str | None  # as the CREATE TABLE statement writes it (None: unreadable)
    stored: bool  # STORED, else VIRTUAL
    position: int  # its place among all the table's columns
    not_null: bool = False

    def column(self) -> Column:
        """As the stream's columns are described (the limit scan reads its values too)."""
        return Column(self.name, self.declared, family_of(self.declared))


@dataclass
class SqliteTable:
    """What a SQLite database says of one table beyond its columns."""

    schema: TableSchema
    defaults: dict[str, str] = field(default_factory=dict)  # column -> PRAGMA table_info's dflt_value
    rowid_key: bool = False  # INTEGER PRIMARY KEY: new rows get ids
    autoincrement: bool = False
    counter: int | None = None  # sqlite_sequence: the largest id ever handed out
    unique: list[tuple[str | None, list[str]]] = field(default_factory=list)  # (name, columns)
    indexes: list[SqliteIndex] = field(default_factory=list)
    foreign_keys: list[SqliteForeignKey] = field(default_factory=list)
    checks: int = 0
    triggers: int = 0
    generated: list[SqliteGenerated] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)  # columns with a value beyond the declared limit
    #: a column without a type, or with a value its type cannot take -> its values' storage classes
    classes: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class PostgresTable:
    schema: TableSchema
    #: sequence -> [last_value, is_called], as the source's own backups record them
    positions: dict[str, list[int | bool]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def postgres_default(expression: str, column: Column) -> str | None:
    """A SQLite default (``PRAGMA table_info``'s text) in PostgreSQL's words, or None."""
    bare = expression.strip()
    while bare.startswith("(") and bare.endswith(")"):
        bare = bare[1:-1].strip()
    upper = bare.upper()
    now = upper in ("CURRENT_TIMESTAMP", "DATETIME('NOW')", "DATETIME(\"NOW\")")
    if now and column.family == "datetime":
        return "CURRENT_TIMESTAMP" if "with time zone" in column.declared else _UTC_NOW
    if upper == "CURRENT_DATE" and column.family == "date":
        return f"({_UTC_NOW})::date"
    if column.family == "boolean" and upper in ("0", "1", "TRUE", "FALSE", "'0'", "'1'"):
        return "true" if upper in ("1", "TRUE", "'1'") else "false"
    if upper in ("TRUE", "FALSE") and column.family == "integer":
        return "1" if upper == "TRUE" else "0"
    if _NUMBER.match(bare) and column.family in ("integer", "float", "numeric", "text"):
        return f"'{bare}'" if column.family == "text" else bare
    if _STRING.match(bare) and column.family not in ("blob", "boolean"):
        return bare
    return None


def _boolean_literals(predicate: str, booleans: set[str]) -> str:
    """SQLite's booleans are 0/1: ``is_open = 1`` in a predicate means ``is_open = true``."""
    def literal(match: re.Match[str]) -> str:
        return f"{match.group(1)} {match.group(2)} {'true' if match.group(3) == '1' else 'false'}"

    for name in booleans:
        ident = f"(?:{re.escape(name)}|{re.escape(quote_ident(name))})"
        predicate = re.sub(rf"(?<![\w\"])({ident})\s*(=|!=|<>)\s*([01])\b", literal, predicate)
    return predicate


def _pg_index(index: SqliteIndex, table: str, booleans: set[str]) -> str:
    where = f" WHERE {_boolean_literals(index.where, booleans)}" if index.where else ""
    unique = "UNIQUE " if index.unique else ""
    return (f"CREATE {unique}INDEX {quote_ident(index.name)} ON public.{quote_ident(table)} "
            f"USING btree ({index.key}){where}")


def _column(column: Column, table: SqliteTable, broken: set[str], notes: list[str]) -> Column:
    """A column's PostgreSQL form: its declared type's, unless its values say otherwise
    (the limit scan: ``classes``, ``broken``), noted."""
    name = f"{table.schema.name}.{column.name}"
    if column.name in table.classes:  # no type, or a value its type cannot take
        mapped = untyped_column(column, table.classes[column.name])
        classes = ', '.join(sorted(table.classes[column.name] - {'big'})) or 'all NULL'
        notes.append(f"{name}: (no type) -> {mapped.declared}: its values are {classes}"
                     if not column.declared.strip() else
                     f"{name}: {column.declared} -> {mapped.declared}: its values are {classes}, not all of which "
                     f"a {sqlite_column_to_pg(column).declared} column takes (SQLite does not enforce types)")
        return mapped
    mapped = sqlite_column_to_pg(column)
    limit: Limit | None = limit_of(mapped.declared)
    if limit is not None and column.name in broken:
        notes.append(f"{name}: {column.declared} -> {limit.wider}: {limit.describe(mapped.declared)} "
                     "(SQLite does not enforce it)")
        return Column(name=mapped.name, declared=limit.wider, family=mapped.family, nullable=mapped.nullable)
    if mapped.declared.upper().replace(" ", "") != column.declared.upper().replace(" ", ""):
        notes.append(f"{name}: {column.declared or '(no type)'} -> {mapped.declared}")
    return mapped


def _generated(column: SqliteGenerated, mapped: Column, booleans: set[str]) -> dict:
    """A SQLite generated column (``mapped``: its PostgreSQL type) in the form the
    PostgreSQL catalog reader records one (``generated_column`` builds it), STORED
    (PostgreSQL has no VIRTUAL ones), marked ``tried``: SQLite's expression, which
    PostgreSQL may refuse or compute otherwise (``restore.postgres.generated`` checks)."""
    return {"name": column.name, "declared": mapped.declared, "kind": "STORED", "not_null": column.not_null,
            "expr": _boolean_literals(column.expression or "", booleans), "position": column.position,
            "tried": True}


def _constraint_name(table: str, columns: list[str], suffix: str) -> str:
    """PostgreSQL's own naming (``trades_pair_id_fkey``), cut to its 63 bytes."""
    return f"{table}_{'_'.join(columns)}_{suffix}".encode()[:63].decode("utf-8", "ignore")


def untyped_column(column: Column, classes: set[str]) -> Column:
    """A column declared without a type, by the storage classes of its values: with a BLOB
    ``bytea`` (TEXT as its UTF-8), else with TEXT ``text`` (numbers as their text), else
    with a REAL ``double precision`` (``numeric`` when an integer is beyond what a double
    holds exactly), integers alone ``bigint``, no value ``text``."""
    if "blob" in classes:
        declared, family = "bytea", "blob"
    elif "text" in classes or not classes:
        declared, family = "text", "text"
    elif "real" in classes:
        declared, family = ("numeric", "numeric") if "big" in classes else ("double precision", "float")
    else:
        declared, family = "bigint", "integer"
    return Column(name=column.name, declared=declared, family=family, nullable=column.nullable)


def table_to_postgres(table: SqliteTable, keys_of: dict[str, list[str]]) -> PostgresTable:
    """The PostgreSQL form of a SQLite table (see the module doc); ``keys_of``: every
    table's primary key, for foreign keys that name only their parent."""
    source = table.schema
    out = PostgresTable(schema=source)
    broken = set(table.broken)
    if table.rowid_key and table.counter is not None and table.counter >= (1 << 31) - 1:
        broken.add(source.primary_key[0])  # ids to come are beyond integer's range
    columns = [_column(column, table, broken, out.notes) for column in source.columns]
    extra: dict = {"defaults": {}, "identity": {}, "serial": {}, "indexes": []}
    by_name = {c.name: c for c in columns}
    for name, expression in table.defaults.items():
        if expression is None or expression.upper() == "NULL":
            continue
        translated = postgres_default(expression, by_name[name])
        if translated is None:
            out.notes.append(f"{source.name}.{name}: default {expression} not kept")
        else:
            extra["defaults"][name] = translated
    if source.primary_key:
        extra["pk_name"] = f"{source.name}_pkey".encode()[:63].decode("utf-8", "ignore")
    if table.rowid_key:
        key = source.primary_key[0]
        sequence = f"{source.name}_{key}_seq".encode()[:63].decode("utf-8", "ignore")
        extra["identity"][key] = "d"
        kind = by_name[key].declared if by_name[key].declared in ("smallint", "integer", "bigint") else "bigint"
        high = {"smallint": (1 << 15) - 1, "integer": (1 << 31) - 1}.get(kind, (1 << 63) - 1)
        extra["sequences"] = {key: {"name": sequence, "as": kind, "start": 1, "increment": 1, "min": 1,
                                    "max": high, "cache": 1, "cycle": False}}
        if table.autoincrement and table.counter:
            out.positions[sequence] = [table.counter, True]
        out.notes.append(f"{source.name}.{key}: INTEGER PRIMARY KEY -> {kind} identity"
                         + (" past sqlite_sequence" if table.autoincrement else " past the largest id"))
    constraints = []
    for given, unique in table.unique:
        constraints.append({"name": given or _constraint_name(source.name, unique, "key"),
                            "def": f"UNIQUE ({', '.join(quote_ident(c) for c in unique)})"})
    if constraints:
        extra["constraints"] = constraints
    booleans = {c.name for c in columns if c.family == "boolean"}
    tried = [_pg_index(index, source.name, booleans) for index in table.indexes]
    foreign = []
    for foreign_key in table.foreign_keys:
        parent_columns = foreign_key.parent_columns or keys_of.get(foreign_key.parent)
        if not parent_columns:
            out.notes.append(f"{source.name}: foreign key to {foreign_key.parent} not kept (its key is unknown)")
            continue
        actions = "".join(f" ON {what} {action.upper()}" for what, action in (("UPDATE", foreign_key.on_update),
                                                                              ("DELETE", foreign_key.on_delete))
                          if action.upper() in _ACTIONS and action.upper() != "NO ACTION")
        foreign.append({
            "name": _constraint_name(source.name, foreign_key.columns, "fkey"),
            "def": f"FOREIGN KEY ({', '.join(quote_ident(c) for c in foreign_key.columns)}) REFERENCES "
                   f"{quote_ident(foreign_key.parent)}({', '.join(quote_ident(c) for c in parent_columns)}){actions}",
            "unenforced": True,
        })
    if foreign:
        extra["foreign_keys"] = foreign
    if tried:
        extra["tried_indexes"] = tried
    if table.checks:
        out.notes.append(f"{source.name}: {table.checks} CHECK constraint(s) not kept (SQLite expressions)")
    if table.triggers:
        out.notes.append(f"{source.name}: {table.triggers} trigger(s) not kept (SQLite statements)")
    generated = [_generated(computed, _column(computed.column(), table, broken, out.notes), booleans)
                 for computed in table.generated if computed.expression is not None]
    if generated:
        extra["generated"] = generated
    for computed in table.generated:
        out.notes.append(f"{source.name}.{computed.name}: " + (
            "generated column not kept (its expression could not be read)" if computed.expression is None else
            f"generated column -> GENERATED ALWAYS AS ({computed.expression}) STORED, if PostgreSQL takes SQLite's "
            "expression and computes the same values (else a plain column holding SQLite's values)"))
    out.schema = TableSchema(name=source.name, columns=columns, primary_key=list(source.primary_key),
                             dialect="postgresql", ddl=json.dumps(extra, sort_keys=True))
    return out
