"""DatabaseService: the one door to a trading database (source or restore target).

SQLAlchemy parses URLs (but plain SQLite file URLs) and reflects; SQLite rows travel through the sqlite3 driver
directly, because any type conversion on the way (SQLAlchemy's Numeric goes through
float) would break exactness and cost speed.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Iterable

from trade_stream.database_url import parse_url
from trade_stream.errors import BadInputError, DatabaseBusy, TradeStreamError
from trade_stream.schema import Column, DatabaseSchema, TableSchema, family_of, quote_ident
from trade_stream.sqlite.virtual_tables import VIRTUAL, VirtualTable, ordinary_tables, virtual_tables
from trade_stream.table_selection import Selection, select_tables

HEADER_PRAGMAS = ("user_version", "application_id")

# a COLLATE clause and its name (quoted or not)
_COLLATE = re.compile(r'\bCOLLATE\s+(?:"((?:[^"]|"")+)"|([A-Za-z_][\w$]*))', re.IGNORECASE)
_STRING = re.compile(r"'(?:[^']|'')*'")

LOCK_WAIT = 30.0  # seconds a connection waits for a lock another one holds


class DatabaseService:
    def __init__(self, url: str, include: list[str] | None = None, exclude: list[str] | None = None):
        self.url_text = url
        self.url = parse_url(url)
        self.dialect = self.url.get_backend_name()
        self.include = list(include or [])
        self.exclude = list(exclude or [])
        if self.dialect != "sqlite":
            raise BadInputError(f"{self.dialect} databases are not supported by this version yet")

    # -- SQLite ----------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return Path(self.url.database or "")

    @property
    def name(self) -> str:
        return self.path.stem

    def exists(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0

    def require_exists(self, timeout: float = LOCK_WAIT) -> None:
        if not self.path.exists():
            raise BadInputError(f"database not found: {self.path}")
        if not self.path.is_file():
            raise BadInputError(f"not a database file: {self.path}")
        try:
            conn = self.connect(readonly=True, timeout=timeout)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            conn.close()
        except sqlite3.DatabaseError as exc:
            raise self._unreadable(exc, timeout) from None

    def _unreadable(self, exc: sqlite3.DatabaseError, timeout: float) -> TradeStreamError:
        """Why the file could not be read: locked (``locked``/``busy``: for as long as we
        waited) is not "not a database", which it used to be reported as."""
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return DatabaseBusy(
                f"{self.path}: {text}: another connection held it for the {timeout:g} s tradevault waited"
                " (a bot that sets PRAGMA locking_mode = EXCLUSIVE keeps every other process out for as long"
                " as it runs; a long write transaction ends on its own: try again)")
        return BadInputError(f"{self.path}: not a SQLite database ({text})")

    def connect(self, *, readonly: bool = False, timeout: float = LOCK_WAIT) -> sqlite3.Connection:
        """Autocommit connection (explicit BEGIN where a transaction is needed)."""
        if readonly:
            uri = f"file:{self.path.absolute()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout)
        else:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=timeout)
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        return conn

    def connect_untouched(self) -> sqlite3.Connection:
        """A read-only look that creates no file (``restore`` and ``verify`` change nothing
        where the bot lives): immutable while the database has no -wal (nothing waits
        there to be checkpointed; a commit racing the read can only make it older), else
        read-only as usual (its -wal and -shm exist already)."""
        if Path(f"{self.path}-wal").exists():
            return self.connect(readonly=True)
        uri = f"file:{self.path.absolute()}?mode=ro&immutable=1"
        return sqlite3.connect(uri, uri=True, isolation_level=None)

    def user_tables(self, conn: sqlite3.Connection,
                    virtual: dict[str, VirtualTable] | None = None) -> dict[str, bool]:
        """Every ordinary table and whether it has a primary key: not a virtual table nor
        one of the shadow tables its module keeps its rows in (``virtual_tables``: what
        ``select`` captures of them; ``virtual``: those already read)."""
        result = {}
        for name in ordinary_tables(conn, virtual_tables(conn) if virtual is None else virtual):
            info = conn.execute(f"PRAGMA table_info({quote_ident(name)})").fetchall()
            result[name] = any(row[5] for row in info)
        return result

    def select(self, conn: sqlite3.Connection) -> Selection:
        """The tables to capture: ``include``/``exclude`` choose among the ordinary tables
        and the virtual ones by their names; a virtual table chosen is captured through its
        content table, or needs none (an index over another table), or cannot be (bad
        input naming it)."""
        virtual = virtual_tables(conn)
        selection = select_tables([*self.user_tables(conn, virtual), *virtual], self.include, self.exclude)
        tables = []
        for name in selection.tables:
            table = virtual.get(name)
            if table is None:
                tables.append(name)
            elif not table.capturable:
                raise BadInputError(table.why_not())
            elif table.content is not None:
                tables.append(table.content)
        selection.tables = sorted(tables)
        self.require_collations(conn, selection.tables)
        return selection

    @staticmethod
    def require_collations(conn: sqlite3.Connection, tables: Iterable[str]) -> None:
        """Bad input when a table or one of its indexes orders by a collation this process
        does not have: one the application registers itself (``create_collation``). Counting
        the rows through such an index fails, and a restore could not put replayed rows
        into the index in the application's order; said before capture is installed,
        rather than as "no such collation sequence" once it is."""
        names = list(tables)
        if not names:
            return
        marks = ", ".join("?" * len(names))
        texts = conn.execute(f"SELECT tbl_name, sql FROM sqlite_master WHERE type IN ('table', 'index')"
                             f" AND tbl_name IN ({marks}) AND sql LIKE '%COLLATE%'", names).fetchall()
        for table, sql in texts:
            bare = _STRING.sub("''", sql)  # a literal may spell COLLATE too
            for collation in dict.fromkeys(m.group(2) or m.group(1).replace('""', '"')
                                           for m in _COLLATE.finditer(bare)):
                try:
                    conn.execute(f"SELECT 'a' < 'b' COLLATE {quote_ident(collation)}").fetchone()
                except sqlite3.OperationalError:
                    raise BadInputError(
                        f"table {table!r} orders by collation {collation!r}, which the application defines itself "
                        "(create_collation): tradevault cannot keep its rows in that order when it restores "
                        f"them; exclude it ([database] exclude = [\"{table}\"]) or declare it without") from None

    @staticmethod
    def table_schema(conn: sqlite3.Connection, table: str) -> TableSchema:
        info = conn.execute(f"PRAGMA table_info({quote_ident(table)})").fetchall()
        columns = [Column(name=r[1], declared=r[2] or "", family=family_of(r[2] or ""), nullable=not r[3])
                   for r in info]
        pk = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
        ddl = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()[0]
        indexes = [r[0] for r in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL"
            " AND substr(name, 1, 12) != '_tradevault_' ORDER BY name", (table,))]
        return TableSchema(name=table, columns=columns, primary_key=pk, dialect="sqlite", ddl=ddl, indexes=indexes)

    def reflect(self, conn: sqlite3.Connection, tables: Iterable[str]) -> DatabaseSchema:
        return DatabaseSchema(dialect="sqlite", tables=[self.table_schema(conn, t) for t in tables])

    def is_empty(self) -> bool:
        """True when the target has no tables at all (a fresh restore target)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return True
        conn = self.connect(readonly=True)
        try:
            row = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
        except sqlite3.DatabaseError as exc:
            failure = self._unreadable(exc, LOCK_WAIT)
            if isinstance(failure, DatabaseBusy):
                raise failure from None
            raise BadInputError(f"restore target {self.path} is not a SQLite database: {exc}") from None
        finally:
            conn.close()
        return row[0] == 0

    @staticmethod
    def unique_besides_key(conn: sqlite3.Connection, table: str) -> bool:
        """Whether a UNIQUE index other than the primary key ties the table's rows together
        (then an UPDATE OR REPLACE can delete a row without a delete of its own)."""
        return any(unique and origin != "pk"
                   for _, _, unique, origin, _ in conn.execute(f"PRAGMA index_list({quote_ident(table)})"))

    @staticmethod
    def database_objects(conn: sqlite3.Connection) -> list[dict[str, str]]:
        """The application's views, triggers and virtual tables, in the order they were
        created (a view may use another): each ``kind`` (``view``, ``trigger``, ``virtual
        table``), ``name``, ``table`` and ``ddl``. Not in the change stream: recorded with
        every incremental, so a restore builds them as they were."""
        return [{"kind": "virtual table" if kind == "table" else kind, "name": name, "table": table, "ddl": sql}
                for kind, name, table, sql in conn.execute(
                    f"SELECT type, name, tbl_name, sql FROM sqlite_master WHERE (type IN ('view', 'trigger')"
                    f" OR type = 'table' AND {VIRTUAL})"
                    " AND sql IS NOT NULL AND substr(name, 1, 12) != '_tradevault_' ORDER BY rowid")]

    @staticmethod
    def autoincrement_counters(conn: sqlite3.Connection) -> dict[str, list[int | bool]]:
        """Where each AUTOINCREMENT table's counter stands (``sqlite_sequence``: the largest id
        ever handed out, which deleting rows does not lower), as [value, True] like a
        PostgreSQL sequence's position. Not part of the change stream: recorded next to it."""
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone() is None:
            return {}
        return {name: [seq, True] for name, seq in conn.execute("SELECT name, seq FROM sqlite_sequence ORDER BY name")
                if not name.startswith("_tradevault_")}

    @staticmethod
    def header_pragmas(conn: sqlite3.Connection) -> dict[str, int]:
        """The numbers an application keeps in the file's header: ``user_version`` (the
        schema version of many an application's migrations) and ``application_id``. Not
        part of the change stream: recorded next to it, as the counters are. A restore that
        gave back the new schema with the old version would have the application migrate
        it again ("duplicate column")."""
        return {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in HEADER_PRAGMAS}

    @staticmethod
    def row_counts(conn: sqlite3.Connection, tables: Iterable[str]) -> dict[str, int]:
        return {t: conn.execute(f"SELECT count(*) FROM {quote_ident(t)}").fetchone()[0] for t in tables}

