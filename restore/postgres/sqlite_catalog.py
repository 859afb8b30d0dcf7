"""What a SQLite database says of its tables beyond their columns (for a restore into
PostgreSQL, ``restore.schema_to_postgres``): defaults, rowid keys and AUTOINCREMENT
counters, UNIQUE constraints, indexes, foreign keys, and which values break their
declared limits (``restore.type_limits``). Read from the SQLite file a restore loads
(restore.postgres.from_sqlite.point_file)."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec

from primitives.sqlite_files import open_read_only
from restore.schema_to_postgres import SqliteForeignKey, SqliteGenerated, SqliteIndex, SqliteTable
from restore.type_limits import Limit, fits, judged_values_sql, limit_of, reals_fit, scan_sql
from restore.type_mapping import sqlite_column_to_pg, sqlite_value_converters
from trade_stream.errors import IntegrityError
from trade_stream.schema import TableSchema, quote_ident
from trade_stream.sqlite.capture import TRIGGER_PREFIX

_WHERE = re.compile(r"\bWHERE\b", re.I)


def read_tables(conn: sqlite3.Connection, tables: Iterable[TableSchema], *, scan: bool = True) -> list[SqliteTable]:
    """The description of each table as ``conn``'s database has it; ``scan``: check the
    rows against the declared limits (a database in memory has none)."""
    has_sequence = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'").fetchone() is not None
    counters = dict(conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall()) if has_sequence else {}
    out = [_table(conn, schema, counters) for schema in tables]
    if scan:  # the generated columns too: their values may break their declared types as well
        scanned = [msgspec.structs.replace(t.schema, columns=[*t.schema.columns, *(g.column() for g in t.generated)])
                   for t in out]
        for table, schema, (broken, classes) in zip(out, scanned, _scans(conn, scanned)):
            table.broken, table.classes = broken, classes
            # the load refuses a non-integral REAL in an INTEGER column (naming it); a generated
            # column's are the expression's doing (``id + 0.5``): typed by its values instead
            integers = [g.name for g in table.generated if g.column().family == "integer" and g.name not in classes]
            for name, found in _storage_classes(conn, schema, integers).items():
                if "real" in found:
                    table.classes[name] = found
    return out


def _scans(conn: sqlite3.Connection, tables: list[TableSchema]) -> list[tuple[set[str], dict[str, set[str]]]]:
    """Each table's columns with values beyond their limits (``_broken``) and the storage
    classes of its columns without a type (``_classes``). The tables of a database file
    are scanned side by side, each on its own connection: SQLite lets go of the
    interpreter lock while it runs a query (measured on the bench database, two cores:
    0.44 -> 0.28 s)."""
    path = conn.execute("PRAGMA database_list").fetchone()[2]
    workers = min(4, os.cpu_count() or 1, len(tables))
    if not path or workers < 2:
        return [(_broken(conn, t), _classes(conn, t)) for t in tables]

    def scan(table: TableSchema) -> tuple[set[str], dict[str, set[str]]]:
        own = open_read_only(path)
        try:
            return _broken(own, table), _classes(own, table)
        finally:
            own.close()

    with ThreadPoolExecutor(workers, thread_name_prefix="tradevault-scan") as pool:
        return list(pool.map(scan, tables))


def views(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(name, CREATE VIEW statement) of every view."""
    return conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view' ORDER BY rowid").fetchall()


def _table(conn: sqlite3.Connection, schema: TableSchema, counters: dict[str, int]) -> SqliteTable:
    name = quote_ident(schema.name)
    info = conn.execute(f"PRAGMA table_info({name})").fetchall()
    ddl = " ".join((schema.ddl or "").upper().split())
    rowid_key = (len(schema.primary_key) == 1 and "WITHOUT ROWID" not in ddl
                 and next(r[2] for r in info if r[1] == schema.primary_key[0]).strip().upper() == "INTEGER")
    table = SqliteTable(
        schema=schema,
        defaults={r[1]: r[4] for r in info if r[4] is not None},
        rowid_key=rowid_key,
        autoincrement=rowid_key and "AUTOINCREMENT" in ddl,
        counter=counters.get(schema.name),
        checks=len(re.findall(r"\bCHECK\s*\(", ddl)),
        triggers=conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?"
                              " AND substr(name, 1, ?) != ?",
                              (schema.name, len(TRIGGER_PREFIX), TRIGGER_PREFIX)).fetchone()[0],
        generated=_generated(conn, schema),
    )
    names = _unique_names(schema.ddl or "")
    for _, index, unique, origin, partial in conn.execute(f"PRAGMA index_list({name})").fetchall():
        if origin == "pk":
            continue
        columns = [r[2] for r in conn.execute(f"PRAGMA index_info({quote_ident(index)})").fetchall()]
        if origin == "u":
            table.unique.append((names.get(tuple(columns)), columns))
            continue
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (index,)).fetchone()[0]
        key, where = _index_parts(sql)
        table.indexes.append(SqliteIndex(name=index, unique=bool(unique), key=key, where=where if partial else None))
    table.unique.reverse()  # index_list lists the newest first
    table.indexes.reverse()
    for row in _foreign_keys(conn, name):
        table.foreign_keys.append(row)
    return table


def _generated(conn: sqlite3.Connection, schema: TableSchema) -> list[SqliteGenerated]:
    """The table's generated columns (``PRAGMA table_xinfo``'s hidden 2 and 3, VIRTUAL and
    STORED: table_info leaves them out), each at its place among all the columns."""
    expressions = generated_expressions(schema.ddl or "")
    return [SqliteGenerated(name=name, declared=declared, expression=expressions.get(name), stored=hidden == 3,
                            position=position, not_null=bool(notnull))
            for position, (_, name, declared, notnull, _, _, hidden) in enumerate(
                conn.execute(f"PRAGMA table_xinfo({quote_ident(schema.name)})").fetchall())
            if hidden in (2, 3)]


_IDENT = r'(?:"(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[\w$]+)'
_FIRST_IDENT = re.compile(rf"\s*({_IDENT})")
_NAMED_UNIQUE = re.compile(rf"CONSTRAINT\s+({_IDENT})\s+UNIQUE\s*\(([^)]*)\)", re.I)
_NAMED_UNIQUE_COLUMN = re.compile(rf"(?:^|[(,])\s*({_IDENT})\s[^,]*?\bCONSTRAINT\s+({_IDENT})\s+UNIQUE\b(?!\s*\()",
                                  re.I)


def _unquote(ident: str) -> str:
    ident = ident.strip()
    if ident[:1] in "\"`[":
        return ident[1:-1].replace('""', '"') if ident[0] == '"' else ident[1:-1]
    return ident


def _unique_names(ddl: str) -> dict[tuple[str, ...], str]:
    """The names the CREATE TABLE gives its UNIQUE constraints (``PRAGMA index_list`` shows
    only ``sqlite_autoindex_...``), by their columns."""
    body = ddl[ddl.index("("):] if "(" in ddl else ""
    names = {(_unquote(column),): _unquote(name) for column, name in _NAMED_UNIQUE_COLUMN.findall(body)}
    names.update({tuple(_unquote(c.split()[0]) for c in columns.split(",")): _unquote(name)
                  for name, columns in _NAMED_UNIQUE.findall(ddl)})
    return names


def _foreign_keys(conn: sqlite3.Connection, name: str) -> list[SqliteForeignKey]:
    keys: dict[int, SqliteForeignKey] = {}
    for key_id, _, parent, column, parent_column, on_update, on_delete, _ in conn.execute(
            f"PRAGMA foreign_key_list({name})").fetchall():
        key = keys.setdefault(key_id, SqliteForeignKey([], parent, [], on_update, on_delete))
        key.columns.append(column)
        if parent_column is None:
            key.parent_columns = None
        elif key.parent_columns is not None:
            key.parent_columns.append(parent_column)
    return [keys[k] for k in sorted(keys)]


def _unquoted(sql: str, start: int) -> Iterator[tuple[int, str, int]]:
    """(index, character, parenthesis depth after it) of each character of ``sql`` from
    ``start`` that is outside a quoted string or identifier."""
    depth, quote = 0, ""
    for i in range(start, len(sql)):
        char = sql[i]
        if quote:
            if char == quote:
                quote = ""
            continue
        if char in "'\"`[":
            quote = "]" if char == "[" else char
            continue
        depth += (char == "(") - (char == ")")
        yield i, char, depth


def _index_parts(sql: str) -> tuple[str, str | None]:
    """The key list and the WHERE clause of a CREATE INDEX statement."""
    start = sql.index("(")
    for i, char, depth in _unquoted(sql, start):
        if char == ")" and depth == 0:
            rest = sql[i + 1:]
            match = _WHERE.search(rest)
            return sql[start + 1:i].strip(), rest[match.end():].strip() if match else None
    raise IntegrityError(f"unexpected index definition in the backup: {sql!r}")


_AS = re.compile(r"\bAS\s*$", re.I)


def generated_expressions(ddl: str) -> dict[str, str]:
    """Each generated column's expression as the CREATE TABLE statement writes it (``...
    [GENERATED ALWAYS] AS (expression) [STORED | VIRTUAL]``), by column name."""
    if "(" not in ddl:
        return {}
    definitions, begin = [], ddl.index("(") + 1
    for i, char, depth in _unquoted(ddl, begin - 1):
        if (char == "," and depth == 1) or (char == ")" and depth == 0):
            definitions.append(ddl[begin:i])
            begin = i + 1
            if depth == 0:
                break
    found = {}
    for definition in definitions:
        opened = None
        for i, char, depth in _unquoted(definition, 0):
            if char == "(" and depth == 1 and opened is None and _AS.search(definition[:i]):
                opened = i
            elif char == ")" and depth == 0 and opened is not None:
                name = _FIRST_IDENT.match(definition)
                if name:
                    found[_unquote(name.group(1))] = definition[opened + 1:i].strip()
                break
    return found


def _broken(conn: sqlite3.Connection, schema: TableSchema) -> set[str]:
    """The columns one of whose values PostgreSQL would refuse or round under the declared
    type: one query in SQLite; a numeric column's TEXT and REAL values then in Python."""
    mapped = [sqlite_column_to_pg(c) for c in schema.columns]
    limits = {c.name: limit for c in mapped if (limit := limit_of(c.declared)) is not None}
    if not limits:
        return set()
    flags = conn.execute(scan_sql(schema.name, limits)).fetchone()
    broken = {column for column, flag in zip(limits, flags) if flag & 1}
    converters = dict(zip(schema.column_names, sqlite_value_converters(TableSchema(
        name=schema.name, columns=mapped, primary_key=schema.primary_key, dialect="postgresql"))))
    for column, flag in zip(limits, flags):
        if column not in broken and flag & 2 and not _numeric_values_fit(
                conn.execute(judged_values_sql(schema.name, column)), limits[column], converters[column]):
            broken.add(column)
    return broken


# a column without a type holds any storage class: what its values are decides its type
_CLASSES = ("integer", "real", "text", "blob")
_BIG = 1 << 53  # integers a double holds exactly


def _classes(conn: sqlite3.Connection, schema: TableSchema) -> dict[str, set[str]]:
    """The storage classes of each column declared without a type, and of each column
    holding a value its declared type cannot take (``_mismatched``)."""
    untyped = [c.name for c in schema.columns if not c.declared.strip()]
    return _storage_classes(conn, schema, untyped + _mismatched(conn, schema))


# per family whose converter can refuse a value: the SQL that is true for a value of a
# storage class it is not made for (SQLite orders every number before every text, and every
# text before every blob, whatever the column's affinity or collation: a comparison with ''
# or x'' tells the class without a function call per value)
_UNEXPECTED = {
    **dict.fromkeys(("integer", "float", "numeric", "boolean"), "{c} >= ''"),  # text or blob
    **dict.fromkeys(("date", "datetime", "time"), "({c} < '' OR {c} >= x'')"),  # number or blob
    "uuid": "{c} < ''",  # number
    "text": "{c} >= x''",  # blob: text only when it is UTF-8 without NUL (see _as_pg_text)
}
_PASSED_THROUGH = {"date", "datetime", "time"}  # their converters pass such values on: any is a mismatch


def _mismatched(conn: sqlite3.Connection, schema: TableSchema) -> list[str]:
    """The typed columns one of whose values their PostgreSQL type cannot take (SQLite keeps
    'abc' in an INTEGER column, a Unix time in a DATETIME one): one query flags the columns
    holding a value of an unexpected storage class (``_UNEXPECTED``; a ``typeof`` per value
    cost several times as much, measured on the bench database), whose such values are then
    tried. A non-integral REAL in an INTEGER column is not flagged: the load refuses it,
    naming it."""
    mapped = [sqlite_column_to_pg(c) for c in schema.columns]
    checked = [(c.name, _UNEXPECTED[m.family].format(c=quote_ident(c.name))) for c, m in zip(schema.columns, mapped)
               if c.declared.strip() and m.family in _UNEXPECTED]
    if not checked:
        return []
    flags = conn.execute(f"SELECT {', '.join(f'coalesce(max({test}), 0)' for _, test in checked)}"
                         f" FROM {quote_ident(schema.name)}").fetchone()
    converters = dict(zip(schema.column_names, sqlite_value_converters(TableSchema(
        name=schema.name, columns=mapped, primary_key=schema.primary_key, dialect="postgresql"))))
    families = {c.name: m.family for c, m in zip(schema.columns, mapped)}
    # a text column's converter passes bytes on (a SQLite target keeps them): tried as PostgreSQL text instead
    converters.update((name, _as_pg_text) for name, family in families.items() if family == "text")
    found = []
    for (name, test), flag in zip(checked, flags):
        if flag and (families[name] in _PASSED_THROUGH or not _all_convert(
                conn.execute(f"SELECT {quote_ident(name)} FROM {quote_ident(schema.name)} WHERE {test}"),
                converters[name])):
            found.append(name)
    return found


def _as_pg_text(value: bytes) -> str:
    """A BLOB in a text column as PostgreSQL text: UTF-8 without NUL, else IntegrityError
    (the column is then typed by its values: bytea, noted). SQLite keeps bytes in a TEXT
    column as they came (Python's sqlite3 stores ``bytes`` so)."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise IntegrityError("not UTF-8") from None
    if "\x00" in text:
        raise IntegrityError("holds a NUL")
    return text


def _all_convert(cursor: sqlite3.Cursor, convert: Callable[[Any], Any]) -> bool:
    for (value,) in cursor:
        try:
            convert(value)
        except IntegrityError:
            return False
    return True


def _storage_classes(conn: sqlite3.Connection, schema: TableSchema, names: list[str]) -> dict[str, set[str]]:
    """The storage classes of the values of each of the columns ``names`` ("big": an integer
    a double would round), in one query."""
    if not names:
        return {}
    parts = []
    for name in names:
        col = quote_ident(name)
        parts += [f"max(typeof({col}) = '{kind}')" for kind in _CLASSES]
        parts.append(f"max(typeof({col}) = 'integer' AND abs({col}) > {_BIG})")
    flags = conn.execute(f"SELECT {', '.join(parts)} FROM {quote_ident(schema.name)}").fetchone()
    found = {}
    for i, name in enumerate(names):
        row = flags[i * 5:(i + 1) * 5]
        found[name] = {kind for kind, flag in zip((*_CLASSES, "big"), row) if flag}
    return found


def _numeric_values_fit(cursor: sqlite3.Cursor, limit: Limit, convert: Callable[[Any], Any]) -> bool:
    while values := [value for (value,) in cursor.fetchmany(100_000)]:
        if not reals_fit(limit, [v for v in values if v.__class__ is float]):
            return False
        for value in values:
            if value.__class__ is not float:
                try:
                    if not fits(limit, convert(value)):
                        return False
                except IntegrityError:  # not a number at all: the restore says so when it maps it
                    return True
    return True
