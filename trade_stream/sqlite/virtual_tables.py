"""SQLite virtual tables (FTS3/4/5 full-text indexes, R*Tree, ...): their module keeps their
rows in *shadow tables*, ordinary tables named after them (``docs_content``,
``docs_data``...). No trigger can watch a virtual table, and triggers on shadow tables are
not safe: with tradevault's capture triggers on two shadow tables of an FTS5 table
(``_data`` and ``_docsize``), SQLite 3.40.1 crashed the writing process (a segmentation
fault: the bot, not tradevault) on the next insert into the FTS table. So no shadow table is
ever given triggers, and:

* an FTS table with its own content keeps its rows in ``<name>_content``, an ordinary
  table the module only inserts into and deletes from: that one is captured, under its
  own name, and a restore rebuilds the index from it (the ``'rebuild'`` command);
* an FTS table over another table's content (``content='trades'``) has nothing of its own:
  a restore rebuilds it from that table;
* any other (R*Tree, a contentless FTS table, other modules) holds rows no trigger can
  see: bad input naming it, unless ``[database] exclude`` leaves it out.

``describe`` is pure; the rest reads or writes a connection.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from trade_stream.schema import quote_ident

# a sqlite_master row of a virtual table (its statement; SQLite's LIKE ignores case)
VIRTUAL = "coalesce(sql, '') LIKE 'CREATE VIRTUAL TABLE%'"

FULL_TEXT = ("fts3", "fts4", "fts5")
# the shadow tables the built-in modules make, by suffix (PRAGMA table_list names those of
# any module that declares them, from SQLite 3.37 on)
SHADOW_SUFFIXES = {
    "fts3": ("content", "segments", "segdir", "docsize", "stat"),
    "fts4": ("content", "segments", "segdir", "docsize", "stat"),
    "fts5": ("data", "idx", "content", "docsize", "config"),
    "rtree": ("node", "rowid", "parent"),
    "rtree_i32": ("node", "rowid", "parent"),
    "geopoly": ("node", "rowid", "parent"),
}

_USING = re.compile(r"\bUSING\s+[\"'`\[]?(\w+)[\"'`\]]?\s*(?:\((.*)\))?\s*;?\s*$", re.IGNORECASE | re.DOTALL)
_CONTENT = re.compile(r"^\s*content\s*=\s*(.*?)\s*$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class VirtualTable:
    name: str
    module: str
    ddl: str
    #: the shadow table holding its rows, captured in its place (an FTS table's own content)
    content: str | None
    #: a full-text index a restore rebuilds from its content (its own, or another table's)
    rebuilt: bool

    @property
    def capturable(self) -> bool:
        return self.rebuilt

    def why_not(self) -> str:
        """Why its rows cannot be captured (for the error naming it)."""
        what = "a contentless full-text table" if self.module in FULL_TEXT else f"a virtual table ({self.module})"
        return (f"table {self.name!r} is {what}: SQLite lets no trigger watch its rows, so tradevault cannot "
                f"capture them; exclude it ([database] exclude = [\"{self.name}\"])")


def describe(name: str, ddl: str, tables: set[str]) -> VirtualTable:
    """The virtual table ``name`` created by ``ddl``; ``tables``: the database's tables (to
    find its content table). Pure."""
    match = _USING.search(ddl)
    module = match.group(1).lower() if match else "?"
    arguments = _split(match.group(2) or "") if match else []
    if module not in FULL_TEXT:
        return VirtualTable(name, module, ddl, None, False)
    # fts3 has no content option: its rows are always its own
    content = None if module == "fts3" else next(
        (_unquoted(m.group(1)) for m in map(_CONTENT.match, arguments) if m), None)
    if content is None:
        own = f"{name}_content"
        return VirtualTable(name, module, ddl, own if own in tables else None, own in tables)
    return VirtualTable(name, module, ddl, None, content != "")  # content='': contentless


def _split(arguments: str) -> list[str]:
    """Top-level, comma-separated arguments (quotes and parentheses kept together)."""
    parts, depth, quote, current = [], 0, "", []
    for ch in arguments:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"`[":
            quote = "]" if ch == "[" else ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] in "'\"`[" and value[-1] == ("]" if value[0] == "[" else value[0]):
        return value[1:-1].replace(value[0] * 2, value[0]) if value[0] != "[" else value[1:-1]
    return value


def virtual_tables(conn: sqlite3.Connection) -> dict[str, VirtualTable]:
    rows = conn.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'table' AND {VIRTUAL}").fetchall()
    if not rows:
        return {}
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {name: describe(name, sql, tables) for name, sql in rows}


def ordinary_tables(conn: sqlite3.Connection, virtual: dict[str, VirtualTable]) -> list[str]:
    """The tables that hold their own rows, by name: neither a virtual table (``virtual``:
    the database's, ``virtual_tables``) nor one of their shadow tables."""
    shadows = shadow_tables(conn, virtual)
    return [name for (name,) in conn.execute(f"SELECT name FROM sqlite_master WHERE type = 'table' AND NOT {VIRTUAL}"
                                             " ORDER BY name") if name not in shadows]


def shadow_tables(conn: sqlite3.Connection, virtual: dict[str, VirtualTable]) -> set[str]:
    """The tables virtual tables keep their rows in."""
    if not virtual:
        return set()
    shadows = {f"{v.name}_{suffix}" for v in virtual.values() for suffix in SHADOW_SUFFIXES.get(v.module, ())}
    try:
        shadows |= {row[1] for row in conn.execute("PRAGMA table_list") if row[2] == "shadow"}
    except sqlite3.Error:  # before 3.37: the built-in modules' suffixes
        pass
    return shadows


def rebuild(conn: sqlite3.Connection, table: VirtualTable) -> None:
    """Rebuild a full-text index from its content (its own shadow table, or another table)."""
    name = quote_ident(table.name)
    conn.execute(f"INSERT INTO {name}({name}) VALUES ('rebuild')")
