"""PostgresDatabase: the door to a PostgreSQL trading database (source or restore target).
Importing this module does not import psycopg.

SQLAlchemy parses the URL (``postgresql+psycopg://user:pw@host:port/db``; the driver part
is ignored); rows travel through psycopg 3 directly, with tradevault's exact loaders
(``types.adapters``) and a fixed session: UTC, ISO dates, ``postgres`` interval
style, shortest-exact floats. One schema is protected, ``public`` unless ``[database]
schema`` names another: every session resolves names in it (``search_path``), and the
catalog is read through ``current_schema()``, so the recorded definitions name its objects
unqualified wherever they name ``public``'s today.

For PostgreSQL, ``TableSchema.ddl`` holds a JSON object with what a restore re-creates
after loading the rows: ``indexes`` (CREATE INDEX statements of secondary indexes),
``defaults`` (column -> default expression, sequence defaults excluded), ``identity``
(column -> "a" always / "d" by default) and ``serial`` (column -> sequence name, for
``nextval`` defaults). The restore re-creates sequences set past the restored maximum.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable

from trade_stream.database_url import parse_url
from trade_stream.errors import BadInputError
from trade_stream.schema import Column, DatabaseSchema, TableSchema, quote_ident
from trade_stream.table_selection import Selection, select_tables

if TYPE_CHECKING:
    import psycopg

# The text of values as the decoders read it (dates, intervals, floats, bytea in hex) and
# of the DDL a restore replays (backslashes as written), whatever the server's or the
# database's defaults; names resolved in the schema backed up (``search_path``, added by
# ``conninfo``); and no statement or idle-in-transaction timeout (a DBA's guard against
# runaway queries: a full backup's COPY or a restore's index build outlasts it, and a full
# backup's snapshot transaction waits between its steps; pg_dump and pg_restore turn both
# off too). lock_timeout stays the DBA's: a backup that cannot get its ACCESS SHARE lock
# in time fails and is retried, rather than queue the bot's statements behind it.
# (tests/postgres/test_server_settings.py)
SESSION_OPTIONS = ("-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=1"
                   " -c statement_timeout=0 -c idle_in_transaction_session_timeout=0"
                   " -c bytea_output=hex -c standard_conforming_strings=on")

# idle_session_timeout ends a session idle that long: an incremental's main connection waits
# idle while another reads the stream, a replication connection holds an exported snapshot
# through a full backup. transaction_timeout bounds a whole transaction (a full backup's
# snapshot transaction, a restore's), as pg_dump 17 knows. (name, first server version)
VERSIONED_TIMEOUTS = (("idle_session_timeout", 140000), ("transaction_timeout", 170000))


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, url: str, include: list[str] | None = None, exclude: list[str] | None = None,
                 schema: str = "public"):
        self.url_text = url
        self.url = parse_url(url)
        if self.url.get_backend_name() != "postgresql":
            raise BadInputError(f"not a PostgreSQL URL: {url!r}")
        if not self.url.database:
            raise BadInputError(f"{url!r}: a database name is required (postgresql+psycopg://user@host/db)")
        self.include = list(include or [])
        self.exclude = list(exclude or [])
        #: the schema backed up (the source's), or whose names a target resolves first
        self.schema = schema or "public"
        # Timeouts newer servers add (VERSIONED_TIMEOUTS), turned off too; a server older
        # than one refuses its name in connection options, so they go there once a first
        # connection has told the version (and that connection sets them itself).
        self._versioned_timeouts: list[str] | None = None

    @property
    def name(self) -> str:
        return self.url.database or "postgres"

    def conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo

        params: dict[str, Any] = {"dbname": self.url.database}
        if self.url.host:
            params["host"] = self.url.host
        if self.url.port:
            params["port"] = self.url.port
        if self.url.username:
            params["user"] = self.url.username
        if self.url.password is not None:
            params["password"] = self.url.password
        for key, value in self.url.query.items():
            params[key] = value if isinstance(value, str) else value[-1]
        session = (SESSION_OPTIONS + f" -c search_path={_option_value(quote_ident(self.schema))}"
                   + "".join(f" -c {name}=0" for name in self._versioned_timeouts or ()))
        params["options"] = (params.get("options", "") + " " + session).strip()
        # text in UTF-8 whatever the database's encoding (the server converts): wal2json's
        # JSON is parsed as UTF-8, and a SQL_ASCII database's client encoding is ASCII
        params["client_encoding"] = "UTF8"
        params.setdefault("application_name", "tradevault")
        return make_conninfo(**params)

    def connect(self, *, autocommit: bool = True, replication: bool = False) -> "psycopg.Connection":
        import psycopg

        from trade_stream.postgres.types import shared_adapters

        kwargs: dict[str, Any] = {"autocommit": autocommit, "context": shared_adapters()}
        if replication:
            kwargs["replication"] = "database"
        try:
            conn = psycopg.connect(self.conninfo(), **kwargs)
        except psycopg.OperationalError as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BadInputError(f"cannot connect to {self.safe_url()}: {message}") from None
        if not replication:
            # as pg_dump: a role that row security would filter gets an error, never a
            # backup (or a digest) of the rows its policies let it see
            conn.execute("SET row_security = off")
            if self._versioned_timeouts is None:
                names = [name for name, since in VERSIONED_TIMEOUTS if conn.info.server_version >= since]
                for name in names:
                    conn.execute(f"SET {name} = 0")
                self._versioned_timeouts = names
            if not autocommit:
                conn.commit()
        return conn

    def require_schema(self, conn: "psycopg.Connection") -> None:
        """Bad input when the schema backed up does not exist: every catalog query would
        find nothing in it, and a backup of no table looks like a success."""
        if conn.execute("SELECT current_schema()").fetchone()[0] is None:
            raise BadInputError(f"{self.safe_url()} has no schema {self.schema!r} ([database] schema names the "
                                "schema whose tables are backed up)")

    def safe_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def exists(self) -> bool:
        try:
            self.connect().close()
            return True
        except BadInputError:
            return False

    def require_exists(self) -> None:
        self.connect().close()

    # -- reflection --------------------------------------------------------------------------
    @staticmethod
    def user_tables(conn: "psycopg.Connection") -> dict[str, bool]:
        """The tables of the schema backed up whose rows can be captured: a partitioned table's
        partitions, not the partitioned table itself (it holds none, and COPY cannot read
        it); not an unlogged table (``unlogged``)."""
        rows = conn.execute(
            "SELECT c.relname, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relpersistence = 'p' ORDER BY c.relname"
        ).fetchall()
        return {name: bool(pk) for name, pk in rows}

    @staticmethod
    def relation_ids(conn: "psycopg.Connection", tables: Iterable[str]) -> dict[str, int]:
        """Each table's oid: a table dropped or renamed away and created again under the
        same name has a new one, which no row change in the stream shows (DDL is not
        decoded)."""
        return dict(conn.execute(
            "SELECT c.relname, c.oid::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relname = ANY(%s)", (list(tables),)
        ).fetchall())

    @staticmethod
    def column_numbers(conn: "psycopg.Connection", tables: Iterable[str]) -> dict[str, dict[str, int]]:
        """Each table's columns' numbers (``attnum``): a column renamed keeps its number, so
        a change written after ``RENAME COLUMN`` can be read against the known columns."""
        numbers: dict[str, dict[str, int]] = {}
        for table, column, number in conn.execute(
            "SELECT c.relname, a.attname, a.attnum FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relname = ANY(%s)"
            " AND a.attnum > 0 AND NOT a.attisdropped", (list(tables),)
        ).fetchall():
            numbers.setdefault(table, {})[column] = number
        return numbers

    @staticmethod
    def schema_tables(conn: "psycopg.Connection", schema: str) -> list[str]:
        """Every table of ``schema``, partitioned ones included (which a restore target
        must not have, or has replaced with ``--force``)."""
        return [name for (name,) in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname", (schema,)
        ).fetchall()]

    @staticmethod
    def out_of_reach(conn: "psycopg.Connection") -> list[str]:
        """Tables no configuration protects, as ``schema.table``: those of a schema other than
        the one backed up (an extension's own tables aside). Status lists them with the unprotected
        ones and a full backup warns: a backup that silently skips a schema looks complete."""
        return [name for (name,) in conn.execute(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname <> current_schema()"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
            " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
            "  AND d.objid = c.oid AND d.deptype = 'e')"
            " ORDER BY 1"
        ).fetchall()]

    @staticmethod
    def unlogged(conn: "psycopg.Connection") -> list[str]:
        """The unlogged tables of the schema backed up: their changes never reach the WAL, so logical
        decoding cannot see them. A full backup of one would be restored stale without a
        word: they are left out, the full backup warns and status lists them."""
        return [name for (name,) in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relpersistence = 'u' ORDER BY 1"
        ).fetchall()]

    @staticmethod
    def foreign_tables(conn: "psycopg.Connection") -> list[str]:
        """The foreign tables of the schema backed up: their rows live on another server and
        never reach this one's WAL. Neither they nor their definitions are backed up: the full
        backup warns and status lists them."""
        return [name for (name,) in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'f' ORDER BY 1"
        ).fetchall()]

    @staticmethod
    def reach_warnings(conn: "psycopg.Connection", tables: Iterable[str]) -> list[str]:
        """What a full backup of ``tables`` says of what it cannot protect, or not as it is:
        other schemas' tables (``out_of_reach``), unlogged ones, foreign ones, large objects
        (their writes are not logically decoded: pg_dump has them, a restore would not),
        event triggers calling a function of another schema, operator classes (not kept yet),
        and inheritance (each table is backed up with its own rows, ``ONLY``, and restored
        without ``INHERITS``)."""
        warnings = []
        outside = PostgresDatabase.out_of_reach(conn)
        if outside:
            shown = ", ".join(outside[:5]) + (f" and {len(outside) - 5} more" if len(outside) > 5 else "")
            home = conn.execute("SELECT current_schema()").fetchone()[0]
            warnings.append(f"only schema {home} is backed up: {len(outside)} table(s) of other schemas are not "
                            f"({shown}; [database] schema chooses the schema)")
        warnings += [f"table {name!r} is UNLOGGED: its changes never reach the WAL, so it is not backed up "
                     f"(ALTER TABLE {quote_ident(name)} SET LOGGED to protect it)"
                     for name in PostgresDatabase.unlogged(conn)]
        warnings += [f"table {name!r} is a FOREIGN TABLE: its rows live on another server, and neither they nor "
                     "its definition (nor its server and user mappings) are backed up; a restore lacks it, and "
                     "the views that read it"
                     for name in PostgresDatabase.foreign_tables(conn)]
        events = [name for (name,) in conn.execute(
            "SELECT e.evtname FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid"
            " WHERE p.pronamespace <> quote_ident(current_schema())::regnamespace ORDER BY 1")]
        if events:
            warnings.append(f"event trigger(s) {', '.join(events)} are not backed up: their functions are of"
                            " another schema (pg_dump --schema-only has their CREATE EVENT TRIGGER)")
        classes = [name for (name,) in conn.execute(
            "SELECT format('%s (%s)', c.opcname, a.amname) FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod"
            " WHERE c.opcnamespace = quote_ident(current_schema())::regnamespace AND NOT EXISTS (SELECT 1"
            "  FROM pg_depend d WHERE d.classid = 'pg_opclass'::regclass AND d.objid = c.oid AND d.deptype = 'e')"
            " ORDER BY 1")]
        if classes:
            warnings.append(f"operator class(es) {', '.join(classes)} are not backed up: a restore lacks them, "
                            "and an index using one fails it")
        objects = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0]
        if objects:
            warnings.append(f"the database holds {objects:,} large object(s) (lo_create, lo_import): they are not "
                            "backed up, logical decoding does not carry them (pg_dump does; a bytea column would "
                            "be backed up)")
        warnings += [f"table {child!r} inherits from {parent!r}: each is backed up with its own rows and "
                     "restored without INHERITS"
                     for child, parent in conn.execute(
                         "SELECT c.relname, p.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                         " JOIN pg_class p ON p.oid = i.inhparent WHERE c.relname = ANY(%s) AND NOT c.relispartition"
                         " AND c.relnamespace = quote_ident(current_schema())::regnamespace ORDER BY 1, 2",
                         (list(tables),),
                     ).fetchall()]
        return warnings

    def select(self, conn: "psycopg.Connection") -> Selection:
        """Every incremental selects (the agent's, every second): the unlogged tables are
        looked up only for an include list to check."""
        unlogged = set(self.unlogged(conn)) if self.include else set()
        for name in self.include:
            if name in unlogged:
                raise BadInputError(f"[database] include names table {name!r}, which is UNLOGGED: its changes never "
                                    f"reach the WAL, so they cannot be captured (ALTER TABLE {quote_ident(name)} "
                                    "SET LOGGED)")
        tables = self.user_tables(conn)
        if not tables:
            self.require_schema(conn)
        return select_tables(tables, self.include, self.exclude)

    @staticmethod
    def check_row_security(conn: "psycopg.Connection", tables: Iterable[str]) -> None:
        """Refuse, before anything changes, tables whose row security applies to this role:
        it could read only the rows its policies let it see (``connect`` turns row
        security off, so reading them would fail anyway, midway)."""
        hidden = [name for (name,) in conn.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = quote_ident(current_schema())::regnamespace"
            " AND c.relname = ANY(%s) AND row_security_active(c.oid) ORDER BY 1", (list(tables),),
        ).fetchall()]
        if hidden:
            raise BadInputError(f"row-level security of table(s) {', '.join(map(repr, hidden))} applies to this role, "
                                "which could back up only the rows its policies show: back up as the owner, a "
                                "superuser or a role with BYPASSRLS")

    @staticmethod
    def identify_keyless(conn: "psycopg.Connection", tables: Iterable[str]) -> list[str]:
        """Give every table a replica identity under which its updates and deletes name
        their row. A table without a primary key that still has the default (which, without
        a key, logs no old row) gets FULL: its changes then carry the whole old row. A
        DEFERRABLE primary key counts as none: PostgreSQL does not use it as the replica
        identity, so the default logs no old key either (wal2json then drops the table's
        deletes, and an update that changes the key looks like one that does not). NOTHING
        is set back (DEFAULT with a key, else FULL): under it a table's deletes leave no
        trace. Returns the tables set back from NOTHING, whose changes since the last backup
        cannot be trusted; a role that may not alter a table is bad input naming the
        statement to run."""
        import psycopg

        found = conn.execute(
            "SELECT c.relname, c.relreplident, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid"
            "   AND i.indisprimary AND i.indimmediate)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relname = ANY(%s) AND c.relreplident IN ('d', 'n')",
            (list(tables),),
        ).fetchall()
        repaired = []
        for table, identity, keyed in sorted(found):
            if identity == "d" and keyed:
                continue  # the key names the row
            statement = f"ALTER TABLE {quote_ident(table)} REPLICA IDENTITY {'DEFAULT' if keyed else 'FULL'}"
            why = "has REPLICA IDENTITY NOTHING (its deletes leave no trace in the change stream)" \
                if identity == "n" else "has no primary key"
            try:
                conn.execute(statement)
            except psycopg.errors.InsufficientPrivilege:
                raise BadInputError(f"table {table!r} {why} and this role may not set its replica identity: run"
                                    f" `{statement}` as its owner, or exclude the table") from None
            if identity == "n":
                repaired.append(table)
        return repaired

    @staticmethod
    def table_schema(conn: "psycopg.Connection", table: str, *, require_identity: bool = True) -> TableSchema:
        """The table's description; ``require_identity``: a table without a primary key
        must have REPLICA IDENTITY FULL (``identify_keyless`` sets it)."""
        from trade_stream.postgres.catalog import sequence_options, table_definitions
        from trade_stream.postgres.type_definitions import collation_definitions, type_definitions
        from trade_stream.postgres.types import pg_family, travels_as_text

        oid_row = conn.execute(
            "SELECT c.oid, c.relreplident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relname = %s",
            (table,),
        ).fetchone()
        if oid_row is None:
            raise BadInputError(f"table {table!r} does not exist")
        relid, replident = oid_row
        if replident == "n":
            raise BadInputError(
                f"table {table!r} has REPLICA IDENTITY NOTHING: deletes would carry no key "
                f"(ALTER TABLE {quote_ident(table)} REPLICA IDENTITY DEFAULT)"
            )
        has_pk = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = %s AND indisprimary"
                              " AND indimmediate)", (relid,)).fetchone()[0]  # a DEFERRABLE one logs no old key
        if require_identity and not has_pk and replident != "f":
            # the default was set to FULL already (identify_keyless); an index chosen as the
            # identity is the user's choice, which tradevault does not overrule
            chosen = "its REPLICA IDENTITY is an index, and " if replident == "i" else ""
            raise BadInputError(
                f"table {table!r} has no primary key: {chosen}its updates and deletes need the whole old row "
                f"(ALTER TABLE {quote_ident(table)} REPLICA IDENTITY FULL)"
            )
        attrs = conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atttypid,"
            " a.attgenerated, a.attidentity, pg_get_expr(d.adbin, d.adrelid)"
            " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
            " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (relid,),
        ).fetchall()
        columns, defaults, identity, serial, user_types, computed = [], {}, {}, {}, [], []
        for position, (name, declared, notnull, type_oid, generated, ident, default) in enumerate(attrs):
            if travels_as_text(declared):
                user_types.append((name, type_oid))
            if generated:  # the server computes it: not in the rows, rebuilt with its expression
                computed.append({"name": name, "declared": declared, "expr": default, "not_null": bool(notnull),
                                 "position": position, "kind": "VIRTUAL" if generated == "v" else "STORED"})
                continue
            columns.append(Column(name=name, declared=declared, family=pg_family(declared), nullable=not notnull))
            if ident:
                identity[name] = ident
            elif default is not None and default.startswith("nextval("):
                seq = conn.execute(  # a sequence the column owns (serial); else a shared one
                    "SELECT s.relname FROM pg_depend dp JOIN pg_class s ON s.oid = dp.objid"
                    " WHERE dp.refobjid = %s AND dp.refobjsubid = (SELECT attnum FROM pg_attribute"
                    "  WHERE attrelid = %s AND attname = %s) AND s.relkind = 'S'",
                    (relid, relid, name),
                ).fetchone()
                if seq:
                    serial[name] = seq[0]
                else:
                    defaults[name] = default
            elif default is not None:
                defaults[name] = default
        pk = [r[0] for r in conn.execute(
            "SELECT a.attname FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, pos)"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            " WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.pos",
            (relid,),
        ).fetchall()]
        extra = {"defaults": defaults, "identity": identity, "serial": serial, **table_definitions(conn, relid)}
        if computed:  # only when there are: descriptions of tables without them stay as they were
            extra["generated"] = computed
        sequences = {}
        for column in [*identity, *serial]:
            name = conn.execute("SELECT pg_get_serial_sequence(%s, %s)", (quote_ident(table), column)).fetchone()[0]
            if name:
                sequence = name.split(".", 1)[-1].strip('"')
                sequences[column] = {"name": sequence, **sequence_options(conn, sequence)}
        if sequences:
            extra["sequences"] = sequences
        types = collation_definitions(conn, relid, table) + type_definitions(conn, user_types, table)
        if types:  # only when there are: descriptions of tables without them stay as they were
            extra["types"] = types
        return TableSchema(name=table, columns=columns, primary_key=pk, dialect="postgresql",
                           ddl=json.dumps(extra, sort_keys=True))

    def reflect(self, conn: "psycopg.Connection", tables: Iterable[str], *,
                require_identity: bool = True) -> DatabaseSchema:
        return DatabaseSchema(dialect="postgresql", tables=[
            self.table_schema(conn, t, require_identity=require_identity) for t in tables])

    @staticmethod
    def row_counts(conn: "psycopg.Connection", tables: Iterable[str]) -> dict[str, int]:
        # ONLY: a table others inherit from counts its own rows, as COPY reads them
        return {t: conn.execute(f"SELECT count(*) FROM ONLY {quote_ident(t)}").fetchone()[0] for t in tables}

    def is_empty(self, schema: str = "public") -> bool:
        """True when the target database has no tables in ``schema`` (where a restore
        puts them)."""
        conn = self.connect()
        try:
            return not self.schema_tables(conn, schema)
        finally:
            conn.close()


def post_load(table: TableSchema) -> dict[str, Any]:
    """The JSON ``ddl`` of a PostgreSQL table description (empty for other dialects)."""
    if table.dialect != "postgresql" or not table.ddl:
        return {"indexes": [], "defaults": {}, "identity": {}, "serial": {}}
    return json.loads(table.ddl)


#: the parts of a description that the stream and the replay use before a table is
#: finished: a change of any of them needs the table's rows read again (``same_rows``)
ROW_KEYS = ("generated", "replica_identity", "pk_def", "pk_name", "column_settings")


def same_rows(a: TableSchema, b: TableSchema) -> bool:
    """Same columns (names, types, NOT NULL), key, and ``ROW_KEYS``: the stored rows and
    changes of one read the same under the other, which may differ only in what a restore
    builds after the data (indexes, constraints, defaults, comments, types' labels...)."""
    extra_a, extra_b = post_load(a), post_load(b)
    return (
        [(c.name, c.declared, c.nullable) for c in a.columns] == [(c.name, c.declared, c.nullable) for c in b.columns]
        and a.primary_key == b.primary_key
        and all(extra_a.get(key) == extra_b.get(key) for key in ROW_KEYS)
        and _same_values(extra_a.get("types", []), extra_b.get("types", []))
    )


def _same_values(before: list[dict[str, str]], after: list[dict[str, str]]) -> bool:
    """Whether values of the types ``before`` read the same under ``after``: an enum that
    only gained labels, a domain whose checks changed (a restore handles those: see
    restore.relaxed); not an enum label renamed (``RENAME VALUE`` relabels every row
    without a change in the stream), nor a composite or range type redefined."""
    from trade_stream.postgres.type_definitions import enum_labels

    now = {(d["kind"], d["name"]): d["ddl"] for d in after}
    for definition in before:
        ddl = now.get((definition["kind"], definition["name"]))
        if ddl is None or ddl == definition["ddl"] or definition["kind"] == "domain":
            continue  # gone: the columns using it changed type, which same_rows sees
        if definition["kind"] != "enum" or not set(enum_labels(definition["ddl"])) <= set(enum_labels(ddl)):
            return False
    return True


def same_description(a: TableSchema, b: TableSchema) -> bool:
    """``same_rows``, and the same definitions besides (constraints, indexes, defaults,
    types' labels...): a table whose description changed records it with the next
    incremental, so a restore builds what the source had at that point."""
    return same_rows(a, b) and post_load(a) == post_load(b)


def _option_value(text: str) -> str:
    """``text`` as one value of libpq's ``options`` (spaces and backslashes escaped)."""
    return text.replace("\\", "\\\\").replace(" ", "\\ ")
