"""Dialect-neutral description of the protected tables, stored with every full backup.

Each column keeps its declared type and a neutral type family, so a restore can create the
table on another dialect; ``ddl`` keeps the source's own CREATE statement so a same-dialect
restore reproduces the table exactly (SQLite type affinities, constraints, defaults).
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec


class Column(msgspec.Struct, frozen=True):
    name: str
    declared: str  # the type as declared in the source database
    # integer | float | numeric | boolean | text | blob | date | datetime | time | json | uuid | interval | other
    family: str
    nullable: bool = True


class TableSchema(msgspec.Struct, frozen=True):
    name: str
    columns: list[Column]
    primary_key: list[str]
    dialect: str
    ddl: str = ""
    #: SQLite: the table's own CREATE INDEX statements, by name (None: described before
    #: tradevault kept them). PostgreSQL keeps its indexes in ``ddl``.
    indexes: list[str] | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def key_indexes(self) -> list[int]:
        names = self.column_names
        return [names.index(k) for k in self.primary_key]

    @property
    def identity(self) -> list[str]:
        """The columns that identify a row in the change stream: the primary key, or for a
        table without one every column (PostgreSQL's REPLICA IDENTITY FULL). An update or
        delete of a keyless table carries its whole old row and changes one row equal to
        it, so duplicate rows stay a multiset."""
        return self.primary_key or self.column_names

    def identity_indexes(self) -> list[int]:
        return self.key_indexes() if self.primary_key else list(range(len(self.columns)))

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "TableSchema":
        return msgspec.convert(data, TableSchema)


class DatabaseSchema(msgspec.Struct, frozen=True):
    dialect: str
    tables: list[TableSchema]
    #: objects of the database that are not tables (PostgreSQL: functions, views), each a
    #: dict with ``kind``, ``name`` and ``ddl`` (see trade_stream/postgres/catalog.py)
    objects: list[dict[str, Any]] = msgspec.field(default_factory=list)

    def table(self, name: str) -> TableSchema:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)

    def schema_hash(self) -> str:
        return hashlib.sha256(msgspec.json.encode(self)).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "DatabaseSchema":
        return msgspec.convert(data, DatabaseSchema)


def family_of(declared: str) -> str:
    """Neutral family of a declared SQL type (SQLite's affinity rules, refined by name)."""
    t = declared.upper()
    if not t:
        return "blob"
    if t.startswith(("NUMERIC", "DECIMAL")):  # DECIMAL_BLOB(p,s): exact decimals, see type_mapping
        return "numeric"
    for needle, family in (
        ("BOOL", "boolean"),
        ("TIMESTAMP", "datetime"),
        ("DATETIME", "datetime"),
        ("DATE", "date"),
        ("TIME", "time"),
        ("INTERVAL", "interval"),
        ("UUID", "uuid"),
        ("JSON", "json"),
        ("INT", "integer"),
        ("CHAR", "text"),
        ("CLOB", "text"),
        ("TEXT", "text"),
        ("BLOB", "blob"),
        ("BYTEA", "blob"),
        ("REAL", "float"),
        ("FLOA", "float"),
        ("DOUB", "float"),
        ("NUMERIC", "numeric"),
        ("DECIMAL", "numeric"),
    ):
        if needle in t:
            return family
    return "numeric" if "NUM" in t else "other"


def sqlite_affinity(declared: str) -> str:
    """SQLite's column affinity of a declared type (its documented rules, in order)."""
    t = declared.upper()
    if "INT" in t:
        return "INTEGER"
    if any(needle in t for needle in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in t or not t:
        return "BLOB"
    if any(needle in t for needle in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def quote_ident(name: str) -> str:
    """A SQL identifier, quoted for SQLite and PostgreSQL alike."""
    return '"' + name.replace('"', '""') + '"'
