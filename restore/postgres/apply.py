"""Loading rows and applying change events into a PostgreSQL target (restore), fast and
checked.

* Tables are created without their primary key; rows are bulk-loaded with COPY
  (restore.postgres.replay, sqlite_load); then ``finish_table`` adds the primary key,
  secondary indexes, defaults and sequences, which is much faster than maintaining them
  row by row. A table whose key the replay needs early gets its primary key alone; its
  unique constraints and indexes still come after the replay (``unfinished``), so a
  transaction that moved a unique value between rows in steps replays, and a violation
  left at the end is a divergence.
* Events are applied like on SQLite, batched: consecutive events of one table and
  operation become multi-row statements (INSERT ... VALUES (..), (..); UPDATE ... FROM
  (VALUES ..); DELETE ... USING (VALUES ..)) of up to 500 rows with distinct keys, so their
  order inside a batch cannot matter (an update that changes its key runs alone); every
  parameter carries an explicit cast to the column's type; every update and delete must
  hit exactly one row each, and an insert that collides is a divergence too: replay stops
  with an IntegrityError.
* Runs of at least ``COPY_ROWS`` events with distinct keys and no key change (what
  folding hands out, see net_effect) go through COPY instead: inserts straight into the
  table; updates and deletes into a scratch table joined with the target through its
  primary key in one statement, whose row count must equal the run's length (in binary
  COPY format where copy_rows says every column allows it). On a table
  whose key is not built yet, update and delete runs are gathered and applied together
  (gathered_changes): one scan of the table deletes the old rows, the new ones are inserted.
* A SCHEMA event recreates its table empty (with its key); the SNAPSHOT events after it
  refill it.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Iterator

from restore.descriptions import described
from restore.moved_keys import apply_in_stretches, moves_keys
from restore.postgres.copy_rows import (
    as_text,
    binary_copy_types,
    copy_rows,
    create_scratch,
    run_columns,
    scratch_columns,
    text_columns,
)
from restore.postgres.gathered_changes import GatheredChanges
from restore.relaxed import CHECKS_AFTER, NOT_NULL_AFTER, relaxed, split_domain
from trade_stream.errors import IntegrityError
from trade_stream.events import DELETE, INSERT, SCHEMA, SNAPSHOT, UPDATE, ChangeEvent, runs
from trade_stream.postgres.catalog import referenced_schema, referenced_table, sequence_clause
from trade_stream.postgres.database import post_load
from trade_stream.postgres.type_definitions import enum_labels
from trade_stream.postgres.types import base_name
from trade_stream.schema import DatabaseSchema, TableSchema, quote_ident

if TYPE_CHECKING:
    import psycopg

Prepared = list[tuple[str, str, list[Any], bool]]  # (table, op, parameter rows, through COPY)
BATCH_ROWS = 500
COPY_ROWS = 2000  # runs at least this long are applied through COPY


def cast_type(declared: str) -> str:
    """The declared type without typmods (a cast must never round or truncate); ``character``
    and ``bit`` without a length would mean a length of 1, so they are cast to ``bpchar``
    and ``bit varying`` (the column's own type then checks the length)."""
    name, is_array = base_name(declared)
    if name == "character":
        name = "bpchar"
    elif name == "bit":
        name = "bit varying"
    return name + ("[]" if is_array else "")


def create_table(conn: "psycopg.Connection", table: TableSchema, *, with_key: bool,
                 autovacuum: bool = True) -> list[str]:
    """The table with its columns and valid CHECK constraints (checked as rows arrive, as
    pg_restore does); with ``with_key`` its primary key too (else ``build_keys`` adds it
    after the data). In a savepoint: when a CHECK calls a function of a schema that is not
    in the restore, the table is created without its CHECKs, they are added one by one
    (``unless_elsewhere``) and the notes of those left out are returned. (A released
    savepoint hands its table to the transaction around it, so COPY ... FREEZE still
    takes it.)"""
    import psycopg

    cols = []
    extra = post_load(table)
    settings = extra.get("column_settings", {})
    notes = []
    for c in table.columns:
        collation = settings.get(c.name, {}).get("collation")
        qualified = _QUALIFIED.match(collation or "")
        if qualified and qualified.group(1) != "pg_catalog":  # the source's: created beside the table
            collation = qualified.group(2)
            if not _has_collation(conn, collation, quoted=True):
                notes.append(f"{table.name}.{c.name}: collation {collation} not kept (a backup taken before "
                             "tradevault recorded collations' definitions)")
                collation = None
        cols.append(f"{quote_ident(c.name)} {c.declared}{f' COLLATE {collation}' if collation else ''}"
                    f"{'' if c.nullable else ' NOT NULL'}")
    plain = list(cols)
    for column in extra.get("generated", []):  # in their places: the table's column order is the source's
        definition = generated_column(column)
        refused = column.get("tried") and _refused(conn, plain, definition)
        if refused:  # another dialect's expression: a plain column, filled after the load (restore.postgres.generated)
            definition = f"{quote_ident(column['name'])} {column['declared']}"
            notes.append(f"{table.name}.{column['name']}: generated column kept as a plain column holding the "
                         f"source's values: PostgreSQL refuses its expression ({refused})")
        cols.insert(column["position"], definition)
    checks = {check["name"]: f"CONSTRAINT {quote_ident(check['name'])} {check['def']}"
              for check in extra.get("checks", []) if not check["def"].endswith("NOT VALID")}
    if with_key and table.primary_key:
        cols.append(_primary_key(table))
    options = "" if autovacuum else " WITH (autovacuum_enabled = false)"
    create = f"CREATE TABLE {quote_ident(table.name)} ({{}}){options}"
    try:
        with conn.transaction():
            conn.execute(create.format(", ".join(cols + list(checks.values()))))
        return notes
    except (psycopg.errors.InvalidSchemaName, psycopg.errors.UndefinedFunction):
        conn.execute(create.format(", ".join(cols)))
    return notes + [note for name, check in checks.items()
                    for note in unless_elsewhere(conn, f"ALTER TABLE {quote_ident(table.name)} ADD {check}",
                                                 f"{table.name}: check {name}")]


# a name qualified with its schema, as quote_ident writes both
_QUALIFIED = re.compile(r'^("(?:[^"]|"")+"|[^."]+)\.(.+)$')


def _has_collation(conn: "psycopg.Connection", name: str, *, quoted: bool = False) -> bool:
    """Whether the connection's current schema has the collation ``name`` (``quoted``: as
    the server's quote_ident writes it, the form a column's recorded collation takes)."""
    match = "quote_ident(collname)" if quoted else "collname"
    return conn.execute("SELECT 1 FROM pg_collation WHERE collnamespace = quote_ident(current_schema())::regnamespace"
                        f" AND {match} = %s", (name,)).fetchone() is not None


def _refused(conn: "psycopg.Connection", columns: list[str], generated: str) -> str | None:
    """Why PostgreSQL refuses a generated column among ``columns`` (tried on a temporary
    table, rolled back), or None."""
    import psycopg

    try:
        with conn.transaction(force_rollback=True):
            conn.execute(f"CREATE TEMP TABLE tradevault_probe ({', '.join([*columns, generated])})")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


def generated_column(column: dict[str, Any]) -> str:
    """A generated column's definition, as the source's catalog recorded it: the server
    computes its values, so no row carries them (``COPY`` and every statement name the
    other columns)."""
    return (f"{quote_ident(column['name'])} {column['declared']} GENERATED ALWAYS AS ({column['expr']})"
            f" {column['kind']}{' NOT NULL' if column['not_null'] else ''}")


def deferrable(table: TableSchema) -> bool:
    """Whether one of the table's keys or constraints is DEFERRABLE."""
    extra = post_load(table)
    definitions = [extra.get("pk_def", "")] + [c["def"] for c in extra.get("constraints", [])]
    return any(" DEFERRABLE" in d and "NOT DEFERRABLE" not in d for d in definitions)


def _primary_key(table: TableSchema) -> str:
    """The primary key as the source defined it: its name, and what follows its columns
    (DEFERRABLE, INCLUDE, storage parameters) when there is more."""
    extra = post_load(table)
    name = extra.get("pk_name")
    keys = ", ".join(quote_ident(k) for k in table.primary_key)
    return (f"CONSTRAINT {quote_ident(name)} " if name else "") + extra.get("pk_def", f"PRIMARY KEY ({keys})")


def type_definitions_of(tables: Iterable[TableSchema]) -> list[dict[str, str]]:
    """The definitions of the types the tables use (recorded by the source), once each, in
    the order to create them."""
    seen: list[dict[str, str]] = []
    for table in tables:
        for definition in post_load(table).get("types", []):
            if definition not in seen:
                seen.append(definition)
    return seen


def create_types(conn: "psycopg.Connection", tables: Iterable[TableSchema],
                 domains: dict[str, str] | None = None, deferred: list[str] | None = None) -> bool:
    """Create the types the tables use in the connection's current schema (extensions in
    theirs), before the tables. An enum that exists already gets the labels it lacks, in
    their place: an incremental carries ``ALTER TYPE ... ADD VALUE`` that way. Returns
    True when labels were added: they are usable only once committed. ``domains``: the
    statements to create those domains with instead (restore.relaxed.split_domain).
    ``deferred``: where each domain leaves its DEFAULT, NOT NULL and CHECKs, as ALTER
    DOMAIN statements to run once the functions exist (they come after the types their
    signatures use): one may call a function of the application, which must be the
    restore's own, not a same-named one a ``--force`` restore is about to drop with what
    uses it."""
    return create_type_definitions(conn, type_definitions_of(tables), domains, deferred)


def create_type_definitions(conn: "psycopg.Connection", definitions: Iterable[dict[str, str]],
                            domains: dict[str, str] | None = None, deferred: list[str] | None = None) -> bool:
    """``create_types`` of recorded definitions (a table's, or a function's signature's)."""
    added = False
    for definition in definitions:
        kind, name, ddl = definition["kind"], definition["name"], definition["ddl"]
        if kind == "domain" and domains and name in domains:
            ddl = domains[name]
        if kind == "extension":
            create_extension(conn, ddl)
            continue
        if kind == "collation":
            if not _has_collation(conn, name):
                conn.execute(ddl)
            continue
        exists = conn.execute(
            "SELECT t.oid FROM pg_type t WHERE t.typname = %s"
            " AND t.typnamespace = quote_ident(current_schema())::regnamespace",
            (name,),
        ).fetchone()
        if exists is None and kind == "domain" and deferred is not None:
            head, actions = split_domain(ddl, default=True)
            conn.execute(head)
            deferred += [f"ALTER DOMAIN {quote_ident(name)} {action}" for action in actions]
        elif exists is None:
            conn.execute(ddl)
        elif kind == "enum":
            have = [r[0] for r in conn.execute(
                "SELECT enumlabel FROM pg_enum WHERE enumtypid = %s ORDER BY enumsortorder", (exists[0],)).fetchall()]
            labels = enum_labels(ddl)
            for i, label in enumerate(labels):
                if label in have:
                    continue
                place = f" AFTER {_literal(labels[i - 1])}" if i else (f" BEFORE {_literal(have[0])}" if have else "")
                conn.execute(f"ALTER TYPE {quote_ident(name)} ADD VALUE {_literal(label)}{place}")
                have.insert(have.index(labels[i - 1]) + 1 if i else 0, label)
                added = True
    return added


def surplus_labels(conn: "psycopg.Connection", tables: Iterable[TableSchema]) -> list[str]:
    """Notes of the enum labels the restore holds beyond the latest definitions (those of
    ``tables``): a label renamed within the plan (``ALTER TYPE ... RENAME VALUE``) is
    created under both names, as the rows before the rename carry the old one, and
    PostgreSQL cannot drop a label. The rows hold the new one from the resynchronisation on."""
    notes = []
    for definition in type_definitions_of(tables):
        if definition["kind"] != "enum":
            continue
        wanted = set(enum_labels(definition["ddl"]))
        have = [r[0] for r in conn.execute(
            "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typname = %s"
            " AND t.typnamespace = quote_ident(current_schema())::regnamespace ORDER BY e.enumsortorder",
            (definition["name"],))]
        notes += [f"enum {definition['name']}: label {label!r} kept, though the source renamed or dropped it"
                  " within the restored span (PostgreSQL cannot drop an enum label)"
                  for label in have if label not in wanted]
    return notes


# the schema a recorded CREATE EXTENSION names
_EXTENSION_SCHEMA = re.compile(r'WITH SCHEMA ("(?:[^"]|"")+"|\S+)\s*$')


def create_extension(conn: "psycopg.Connection", ddl: str) -> None:
    """A recorded ``CREATE EXTENSION IF NOT EXISTS ... WITH SCHEMA s``, its schema created
    first when it is not ``public`` (many a database keeps its extensions in a schema of
    their own, ``extensions`` say: the restore failed, 'schema "extensions" does not exist')."""
    match = _EXTENSION_SCHEMA.search(ddl)
    if match is not None and match.group(1) not in ("public", '"public"'):
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {match.group(1)}")
    conn.execute(ddl)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def add_primary_key(conn: "psycopg.Connection", table: TableSchema) -> None:
    if table.primary_key:
        conn.execute(f"ALTER TABLE {quote_ident(table.name)} ADD {_primary_key(table)}")


# pg_get_indexdef's statement: CREATE [UNIQUE] INDEX name ON [ONLY] schema.table USING ...
_INDEX_TABLE = re.compile(r'(CREATE (?:UNIQUE )?INDEX (?:"(?:[^"]|"")+"|[^\s"]+) ON (?:ONLY )?)'
                          r'(?:"(?:[^"]|"")+"|[^\s."]+)\.')


def index_in_schema(statement: str, schema: str) -> str:
    """An index definition recorded by the source (its table qualified with the source's
    schema) aimed at the table of the same name in ``schema``."""
    match = _INDEX_TABLE.match(statement)
    if match is None:
        raise IntegrityError(f"unexpected index definition in the backup: {statement!r}")
    return match.group(1) + quote_ident(schema) + "." + statement[match.end():]


def finish_table(conn: "psycopg.Connection", table: TableSchema) -> list[str]:
    """What the source recorded to rebuild after the data: unique and exclusion
    constraints, NOT VALID checks, indexes, defaults, identity and serial columns with their
    sequences' options, comments, replica identity. Foreign keys (other tables) and
    triggers (nothing may fire while replaying) come later, and so does ``GENERATED
    ALWAYS`` (``identities_always``): the replay's own INSERTs and UPDATEs write the
    identity column, which only a BY DEFAULT one accepts. Indexes go to the table of the
    connection's current schema (``public``, or a restore's private schema: see
    restore.postgres.staging). Returns the notes: a default or an index that calls a
    function of a schema that is not backed up cannot be kept (``unless_elsewhere``)."""
    extra = post_load(table)
    name = quote_ident(table.name)
    notes = constrain(conn, table)
    for constraint in extra.get("constraints", []):
        conn.execute(f"ALTER TABLE {name} ADD CONSTRAINT {quote_ident(constraint['name'])} {constraint['def']}")
    for check in extra.get("checks", []):
        if check["def"].endswith("NOT VALID"):
            conn.execute(f"ALTER TABLE {name} ADD CONSTRAINT {quote_ident(check['name'])} {check['def']}")
    indexes = extra.get("indexes", [])
    if indexes:
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        for statement in indexes:
            notes += unless_elsewhere(conn, index_in_schema(statement, schema), f"{table.name}: index {statement}")
    for column, expr in extra.get("defaults", {}).items():
        notes += unless_elsewhere(conn, f"ALTER TABLE {name} ALTER COLUMN {quote_ident(column)} SET DEFAULT {expr}",
                                  f"{table.name}.{column}: default {expr}")
    sequences = extra.get("sequences", {})
    for column in extra.get("identity", {}):
        sequence = sequences.get(column)
        options = (f" (SEQUENCE NAME {quote_ident(sequence['name'])} {sequence_clause(sequence, with_type=False)})"
                   if sequence else "")
        conn.execute(f"ALTER TABLE {name} ALTER COLUMN {quote_ident(column)} ADD GENERATED BY DEFAULT AS IDENTITY"
                     f"{options}")
    for column, seq in extra.get("serial", {}).items():
        options = sequence_clause(sequences.get(column, {}))
        conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {quote_ident(seq)} {options} "
                     f"OWNED BY {name}.{quote_ident(column)}")
        conn.execute(f"ALTER TABLE {name} ALTER COLUMN {quote_ident(column)} "
                     f"SET DEFAULT nextval('{quote_ident(seq)}'::regclass)")
    for column, comment in extra.get("comments", {}).items():
        target = f"TABLE {name}" if not column else f"COLUMN {name}.{quote_ident(column)}"
        conn.execute(f"COMMENT ON {target} IS {_literal(comment)}")
    if extra.get("replica_identity") == "f":
        conn.execute(f"ALTER TABLE {name} REPLICA IDENTITY FULL")
    for column, settings in extra.get("column_settings", {}).items():
        alter = f"ALTER TABLE {name} ALTER COLUMN {quote_ident(column)}"
        if "statistics" in settings:
            conn.execute(f"{alter} SET STATISTICS {int(settings['statistics'])}")
        if "storage" in settings:
            conn.execute(f"{alter} SET STORAGE {settings['storage']}")
    return notes


def finish_published(conn: "psycopg.Connection", tables: Iterable[TableSchema]) -> None:
    """Once the tables are published (and every one exists): what would change how the
    restore itself reads and writes them, their storage parameters (a restore loads a table
    with autovacuum off and resets it when publishing), row security and its policies (a
    forced one filters even the owner's statements) and rules (they would act on the
    replay's statements); and what names other objects: the index a table is clustered
    on, extended statistics, comments on indexes and constraints (foreign keys included)."""
    for table in tables:
        extra = post_load(table)
        name = quote_ident(table.name)
        if extra.get("options"):
            conn.execute(f"ALTER TABLE {name} SET ({', '.join(_option(o) for o in extra['options'])})")
        for flag in extra.get("row_security", []):
            conn.execute(f"ALTER TABLE {name} {flag.upper()} ROW LEVEL SECURITY")
        for policy in extra.get("policies", []):
            conn.execute(policy.replace("{table}", name, 1))
        if extra.get("cluster_on"):
            conn.execute(f"ALTER TABLE {name} CLUSTER ON {quote_ident(extra['cluster_on'])}")
        for statement in extra.get("statistics", []) + extra.get("rules", []):
            conn.execute(statement)
        for commented in extra.get("object_comments", []):
            target = (f"INDEX {quote_ident(commented['name'])}" if commented["kind"] == "index"
                      else f"CONSTRAINT {quote_ident(commented['name'])} ON {name}")
            conn.execute(f"COMMENT ON {target} IS {_literal(commented['comment'])}")


def _option(option: str) -> str:
    """``reloptions``' ``name=value`` as ``SET (...)`` takes it (the value quoted)."""
    key, _, value = option.partition("=")
    return f"{key} = {_literal(value)}"


def identities_always(conn: "psycopg.Connection", tables: Iterable[TableSchema]) -> None:
    """The source's ``GENERATED ALWAYS`` identity columns, once the replay is over (see
    finish_table): a catalog change, no rewrite."""
    for table in tables:
        for column, kind in post_load(table).get("identity", {}).items():
            if kind == "a":
                conn.execute(f"ALTER TABLE {quote_ident(table.name)} ALTER COLUMN {quote_ident(column)}"
                             " SET GENERATED ALWAYS")


def add_foreign_keys(conn: "psycopg.Connection", tables: Iterable[TableSchema],
                     restored: Collection[str] | None = None,
                     referencing: Callable[[str | None], bool] = lambda parent: True) -> list[str]:
    """Foreign keys once every table has its keys (their definitions name other tables);
    each is validated as it is added: a row without its parent is a divergence (exit 3).
    A key of another dialect's source marked ``unenforced`` (SQLite checks keys only when
    the application turns them on) is added NOT VALID instead, and one PostgreSQL cannot
    add at all is left out; both are noted (returned). ``restored``: the tables of a
    restore of some tables; a key into any other cannot exist, so it is left out, noted.
    ``referencing``: which keys to add, by the table they reference (one into a partitioned
    table waits for it: see database_objects.partitioned_tables)."""
    import psycopg

    notes = []
    for table in tables:
        for key in post_load(table).get("foreign_keys", []):
            parent = referenced_table(key["def"])
            if not referencing(parent):
                continue
            schema = referenced_schema(key["def"])
            if schema is not None:
                notes.append(f"{table.name}: foreign key {key['name']} to {schema}.{parent} not created "
                             f"(schema {schema} is not backed up)")
                continue
            if restored is not None and parent is not None and parent not in restored:
                notes.append(f"{table.name}: foreign key to left-out table {parent} not created")
                continue
            statement = f"ALTER TABLE {quote_ident(table.name)} ADD CONSTRAINT {quote_ident(key['name'])} {key['def']}"
            try:
                with conn.transaction():
                    conn.execute(statement)
            except psycopg.errors.ForeignKeyViolation as exc:
                if not key.get("unenforced"):
                    raise IntegrityError(f"restored table {table.name!r} breaks its foreign key {key['name']!r}: "
                                         f"{str(exc).splitlines()[0]}") from None
                conn.execute(statement + " NOT VALID")
                notes.append(f"{table.name}: foreign key {key['name']} added NOT VALID: "
                             f"{str(exc).splitlines()[0]}")
            except psycopg.Error as exc:
                if not key.get("unenforced"):
                    raise
                notes.append(f"{table.name}: foreign key {key['name']} not kept: {str(exc).splitlines()[0]}")
    return notes


def try_indexes(conn: "psycopg.Connection", tables: Iterable[TableSchema]) -> list[str]:
    """The indexes translated from another dialect (``tried_indexes``), after the data: one
    PostgreSQL cannot build is left out and noted; a duplicate under a unique one is a
    divergence (exit 3)."""
    import psycopg

    notes = []
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    for table in tables:
        for statement in post_load(table).get("tried_indexes", []):
            try:
                with conn.transaction():
                    conn.execute(index_in_schema(statement, schema))
            except psycopg.errors.UniqueViolation as exc:
                raise IntegrityError(f"replay diverged from the source on table {table.name!r}: "
                                     f"{str(exc).splitlines()[0]}") from None
            except psycopg.Error as exc:
                notes.append(f"{table.name}: index not kept ({str(exc).splitlines()[0]}): {statement}")
    return notes


def create_triggers(conn: "psycopg.Connection", tables: Iterable[TableSchema]) -> list[str]:
    """The tables' own triggers, last: none may fire while the backups are replayed (the
    events already hold what they did). Returns the notes (``unless_elsewhere``): an audit
    trigger's function often lives in a schema of its own."""
    notes = []
    for table in tables:
        for statement in post_load(table).get("triggers", []):
            notes += unless_elsewhere(conn, statement, f"{table.name}: trigger {statement}")
    return notes


def constrain(conn: "psycopg.Connection", table: TableSchema) -> list[str]:
    """The NOT NULL and CHECK constraints a ``relaxed`` table was replayed without
    (``unless_broken``): see restore.relaxed."""
    extra = post_load(table)
    name = quote_ident(table.name)
    notes = []
    for column in extra.get(NOT_NULL_AFTER, []):
        notes += unless_broken(conn, f"ALTER TABLE {name} ALTER COLUMN {quote_ident(column)} SET NOT NULL",
                               f"{table.name}.{column}: NOT NULL", check=False)
    for constraint in extra.get(CHECKS_AFTER, []):
        statement = f"ALTER TABLE {name} ADD CONSTRAINT {quote_ident(constraint['name'])} {constraint['def']}"
        notes += unless_broken(conn, statement, f"{table.name}: check {constraint['name']}", check=True)
    return notes


def constrain_domains(conn: "psycopg.Connection", actions: dict[str, list[str]]) -> list[str]:
    """The NOT NULL and CHECKs of the domains created without them (``split_domain``'s
    actions, by domain), after the replay (``unless_broken``): see restore.relaxed."""
    return [note for name, domain_actions in actions.items() for action in domain_actions
            for note in unless_broken(conn, f"ALTER DOMAIN {quote_ident(name)} {action}", f"domain {name}: {action}",
                                      check=action.startswith("ADD"))]


def unless_broken(conn: "psycopg.Connection", statement: str, what: str, *, check: bool) -> list[str]:
    """A constraint a relaxed table or domain was replayed without, added after the replay
    (``unless_elsewhere``). When the rows at the restore point break it (its definition
    changed within the incremental that holds the point), a ``check`` is added NOT VALID
    and a NOT NULL left out, and the note says so: not a divergence."""
    import psycopg

    try:
        return unless_elsewhere(conn, statement, what)
    except (psycopg.errors.CheckViolation, psycopg.errors.NotNullViolation):
        if not check:
            return [f"{what} left out, as rows at this point break it (it changed within the incremental that"
                    " holds the point)"]
        return unless_elsewhere(conn, statement + " NOT VALID", what) + [
            f"{what} added NOT VALID, as rows at this point break it (it changed within the incremental that"
            " holds the point)"]


def unless_elsewhere(conn: "psycopg.Connection", statement: str, what: str) -> list[str]:
    """Run ``statement`` in a savepoint. One that names a schema or a function that is not
    in the restore (only schema ``public`` is backed up, and extensions) is left out, and
    its note (``what``, why) returned: it cannot come back, and it must not stop the
    restore of the rest. Any other failure is raised."""
    import psycopg

    try:
        with conn.transaction():
            conn.execute(statement)
    except (psycopg.errors.InvalidSchemaName, psycopg.errors.UndefinedFunction) as exc:
        return [f"{what} not kept: {str(exc).splitlines()[0]}"]
    return []


@contextlib.contextmanager
def _diverged_unless_valid(conn: "psycopg.Connection", table: TableSchema) -> Iterator[None]:
    """A savepoint (an error leaves the rest intact) in which a key or constraint the
    replayed rows break means that the replay diverged from the source."""
    import psycopg

    try:
        with conn.transaction():
            yield
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError(f"replay diverged from the source on table {table.name!r}: "
                             f"{str(exc).splitlines()[0]}") from None


def build_keys(conn: "psycopg.Connection", table: TableSchema, *, finish: bool = True) -> list[str]:
    """Primary key of a table loaded without it, and with ``finish`` its indexes,
    constraints, defaults and identity (``finish_table``, whose notes are returned)."""
    with _diverged_unless_valid(conn, table):
        add_primary_key(conn, table)
        return finish_table(conn, table) if finish else []


def finish_keyed(conn: "psycopg.Connection", table: TableSchema) -> list[str]:
    """``finish_table`` of a table whose primary key was built for the replay."""
    with _diverged_unless_valid(conn, table):
        return finish_table(conn, table)


def set_sequences(conn: "psycopg.Connection", table: TableSchema,
                  positions: dict[str, list[Any]] | None = None) -> None:
    """Sequences are not part of the change stream: each one of the table's columns is set
    so that its next value is the source's next one as last recorded (``positions``:
    sequence -> [last_value, is_called], read next to the backup), and past the restored
    maximum in any case."""
    extra = post_load(table)
    name = quote_ident(table.name)
    sequences = extra.get("sequences", {})
    for column in list(extra.get("identity", {})) + list(extra.get("serial", {})):
        col = quote_ident(column)
        sequence = sequences.get(column) or {}
        recorded = (positions or {}).get(sequence.get("name") or extra.get("serial", {}).get(column, ""))
        step = sequence.get("increment", 1)
        following = (recorded[0] + step if recorded[1] else recorded[0]) if recorded else 1
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, %s), greatest(coalesce(max({col}), 0) + 1, %s), false)"
            f" FROM {name}",
            (quote_ident(table.name), column, following),
        )


class PostgresApplier:
    """Applies a PostgreSQL source's events in order; the caller owns the transaction. (A
    SQLite source's events are replayed by the SQLite restore: restore.postgres.from_sqlite.)"""

    def __init__(self, conn: "psycopg.Connection", schema: DatabaseSchema,
                 keys_pending: set[str] | None = None, relax: Collection[str] = (),
                 latest: dict[str, TableSchema] | None = None) -> None:
        """``keys_pending``: tables just bulk-loaded whose primary key and indexes are not built
        yet. Runs through COPY apply to them as they are (updates and deletes join the heap
        by hashing, no index is maintained row by row); anything else builds the table's key
        first. ``build_keys`` finishes a table; a duplicate key found then is a divergence.
        ``relax``: tables a SCHEMA event creates ``relaxed`` (as the caller created ``schema``'s);
        ``latest``: the descriptions a SCHEMA event's table is finished with when its rows
        read the same (restore.descriptions), as the caller did for ``schema``."""
        self.conn = conn
        self.relax = frozenset(relax)
        self.latest = latest or {}
        self.keys_pending = set(keys_pending or ())
        #: tables with their primary key and without the rest (``finish_table``, after the
        #: replay): the key built for small batches, or a SCHEMA event's table. A unique
        #: constraint or index checked row by row during the replay would refuse what a
        #: transaction did in steps (two rows swapping values) or what folding reorders.
        self.unfinished: set[str] = set()
        self._gathered = GatheredChanges(conn, ready=lambda table: self.loaded())
        self.tables: dict[str, TableSchema] = {t.name: t for t in schema.tables}
        self._sql: dict[tuple[str, str], str] = {}
        self.applied = 0
        self.notes: list[str] = []  # of the tables it finished (finish_table)
        self._loads: Callable[[], None] | None = None

    def load_elsewhere(self, wait: Callable[[], None]) -> None:
        """The tables are being created and bulk-loaded by other connections; ``wait``
        returns once that is committed. Until then only what needs no table is done:
        update and delete runs for tables without their key are gathered
        (gathered_changes); anything else first waits (``loaded``)."""
        self._loads = wait

    def loaded(self) -> None:
        """Wait for the loads of ``load_elsewhere`` (once; their error is raised here)."""
        if self._loads is not None:
            wait, self._loads = self._loads, None
            wait()

    def _statement(self, table: str, op: str) -> str:
        cached = self._sql.get((table, op))
        if cached:
            return cached
        schema = self.tables.get(table)
        if schema is None:
            raise IntegrityError(f"replay: event for unknown table {table!r}")
        name = quote_ident(table)
        types = {c.name: cast_type(c.declared) for c in schema.columns}
        cols = [quote_ident(c) for c in schema.column_names]
        values = [f"%s::{types[c]}" for c in schema.column_names]
        if schema.primary_key:
            where = " AND ".join(f"{quote_ident(k)} = %s::{types[k]}" for k in schema.primary_key)
        else:  # a keyless table: one row equal to the old image, compared as text (exact, any type)
            equal = " AND ".join(f"t.{quote_ident(c)}::text IS NOT DISTINCT FROM (%s::{types[c]})::text"
                                 for c in schema.column_names)
            where = f"ctid = (SELECT ctid FROM {name} AS t WHERE {equal} LIMIT 1)"
        if op in (INSERT, SNAPSHOT):
            sql = f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join(values)})"
        elif op == UPDATE:
            sets = ", ".join(f"{c} = {v}" for c, v in zip(cols, values))
            sql = f"UPDATE {name} SET {sets} WHERE {where}"
        elif op == DELETE:
            sql = f"DELETE FROM {name} WHERE {where}"
        else:
            raise IntegrityError(f"replay: unknown operation {op!r}")
        self._sql[(table, op)] = sql
        return sql

    def fold_key(self, table: str) -> list[int] | None:
        """Positions of the key columns when rows of ``table`` may be replayed folded and
        in key order (see net_effect): any table with a primary key, as no other unique
        constraint or index exists during the replay (``unfinished``)."""
        schema = self.tables.get(table)
        if schema is None or not schema.primary_key:
            return None
        return schema.key_indexes()

    def _batch_statement(self, table: str, op: str, rows: int) -> str:
        """One statement for ``rows`` events: multi-row INSERT, UPDATE ... FROM (VALUES) or
        DELETE ... USING (VALUES): one round trip instead of ``rows``. Written with native
        ``$n`` placeholders (run by a RawCursor: no client-side query rewriting)."""
        cached = self._sql.get((table, f"{op}*{rows}"))
        if cached:
            return cached
        schema = self.tables[table]
        name = quote_ident(table)
        types = [cast_type(c.declared) for c in schema.columns]
        key_types = [types[i] for i in schema.key_indexes()]
        cols = [quote_ident(c) for c in schema.column_names]
        per_row = types if op in (INSERT, SNAPSHOT) else types + key_types if op == UPDATE else key_types
        width = len(per_row)
        values = ", ".join(
            "(" + ", ".join(f"${r * width + i + 1}::{t}" for i, t in enumerate(per_row)) + ")" for r in range(rows)
        )
        where = " AND ".join(f"t.{quote_ident(k)} = v.k{i}" for i, k in enumerate(schema.primary_key))
        if op in (INSERT, SNAPSHOT):
            sql = f"INSERT INTO {name} ({', '.join(cols)}) VALUES {values}"
        elif op == UPDATE:
            aliases = [f"c{i}" for i in range(len(types))] + [f"k{i}" for i in range(len(key_types))]
            sets = ", ".join(f"{c} = v.c{i}" for i, c in enumerate(cols))
            sql = f"UPDATE {name} AS t SET {sets} FROM (VALUES {values}) AS v({', '.join(aliases)}) WHERE {where}"
        else:
            aliases = [f"k{i}" for i in range(len(key_types))]
            sql = f"DELETE FROM {name} AS t USING (VALUES {values}) AS v({', '.join(aliases)}) WHERE {where}"
        self._sql[(table, f"{op}*{rows}")] = sql
        return sql

    def _groups(self, table: str, op: str, params: list[Any]) -> list[tuple[bool, list[Any]]]:
        """Consecutive events split into batches (distinct keys, no key change: their order
        inside a batch cannot matter) and singles, in stream order."""
        schema = self.tables[table]
        width = len(schema.columns) + len(schema.primary_key)
        limit = max(1, min(BATCH_ROWS, 60000 // max(width, 1)))
        if op in (INSERT, SNAPSHOT):
            return [(True, params[i : i + limit]) for i in range(0, len(params), limit)]
        if not schema.primary_key:  # each changes one of possibly equal rows: one statement each
            return [(False, [param]) for param in params]
        key_idx = schema.key_indexes()
        nkeys = len(schema.primary_key)
        groups: list[tuple[bool, list[Any]]] = []
        batch: list[Any] = []
        seen: set[Any] = set()
        for param in params:
            old_key = tuple(param[-nkeys:]) if op == UPDATE else tuple(param)
            if op == UPDATE and tuple(param[i] for i in key_idx) != old_key:
                if batch:
                    groups.append((True, batch))
                    batch, seen = [], set()
                groups.append((False, [param]))
                continue
            marker = repr(old_key)
            if marker in seen or len(batch) >= limit:
                groups.append((True, batch))
                batch, seen = [], set()
            batch.append(param)
            seen.add(marker)
        if batch:
            groups.append((True, batch))
        return groups

    def build_keys(self, table: str) -> None:
        """The primary key of a table loaded without it (the rest after the replay)."""
        self.loaded()
        self.keys_pending.discard(table)
        schema = self.tables[table]
        self._gathered.settle(schema)
        build_keys(self.conn, schema, finish=False)
        self.unfinished.add(table)

    def settle(self) -> None:
        """Apply every gathered run (gathered_changes): the tables are then as the events
        left them, their keys may be built on any connection."""
        self.loaded()
        for name in sorted(self.keys_pending):
            self._gathered.settle(self.tables[name])

    def _prepared_run(self, table: str, op: str, run: list[ChangeEvent]) -> tuple[list[Any], bool]:
        """A run's parameter rows, and whether it goes through COPY: runs of at least
        ``COPY_ROWS`` events with distinct keys and no key change (what folding hands out).
        Through COPY an update's parameters are its new rows; in batched statements they
        are (*new row, *old key)."""
        if op in (UPDATE, DELETE) and not self.tables[table].primary_key:
            return self._params(table, op, run), False  # keyless: row by row (see _groups)
        if len(run) < COPY_ROWS or op not in (UPDATE, DELETE):
            return self._params(table, op, run), len(run) >= COPY_ROWS
        if op == DELETE:
            params = self._params(table, op, run)
            return params, _distinct(self._keys(table, op, params))
        rows = [e.row or [] for e in run]
        old = [e.key or [] for e in run]
        keys = self._keys(table, DELETE, old)  # old keys, shaped as a delete's
        if self._keys(table, INSERT, rows) == keys and _distinct(keys):
            return self._scratch_rows(table, rows), True
        return [(*row, *key) for row, key in zip(rows, old)], False

    def _scratch_rows(self, table: str, rows: list[Any]) -> list[Any]:
        """An update run's new images as a scratch table takes them: its text columns as
        str when the COPY is binary (see copy_rows.text_columns)."""
        schema = self.tables[table]
        text = text_columns(schema, schema.column_names)
        if not text or self._scratch_types(table, UPDATE) is None:
            return rows
        return as_text(rows, [schema.column_names.index(c) for c in text])

    def _keys(self, table: str, op: str, params: list[Any]) -> list[Any]:
        """The key of each parameter row: of a delete's key, else of a row (an insert, an
        update through COPY); the value itself for a one-column key."""
        schema = self.tables[table]
        nkeys = len(schema.primary_key)
        if op == DELETE:
            return [p[0] for p in params] if nkeys == 1 else [tuple(p) for p in params]
        idx = schema.key_indexes()
        return [p[idx[0]] for p in params] if nkeys == 1 else [tuple(p[i] for i in idx) for p in params]

    def _gather(self, table: str, op: str, params: list[Any]) -> None:
        """An update or delete run (distinct keys, no key change) of a table whose key is
        not built yet, gathered with the others (gathered_changes)."""
        schema = self.tables[table]
        keys = set(self._keys(table, op, params))
        if self._gathered.overlaps(table, keys):
            self._gathered.settle(schema)
        self._gathered.add(schema, op, params, keys, self._scratch_types(table, op))

    def _binary(self, table: str, columns: list[str], text: Collection[str] = ()) -> list[int] | None:
        """Binary COPY types for rows of the table (see copy_rows.binary_copy_types)."""
        return binary_copy_types(self.tables[table], columns, text)

    def _scratch_types(self, table: str, op: str) -> list[int] | None:
        """Binary COPY types of a scratch table's rows for a run of ``op`` (see
        copy_rows.text_columns), or None for text."""
        schema = self.tables[table]
        columns = run_columns(schema, op)
        return self._binary(table, columns, text_columns(schema, columns))

    def _settle_before_insert(self, table: str, params: list[Any]) -> None:
        """Inserts go straight into the table: what is gathered for their keys first."""
        if not self._gathered.holds(table):
            return
        try:
            overlap = self._gathered.overlaps(table, self._keys(table, INSERT, params))
        except TypeError:  # unhashable key values: cannot tell
            overlap = True
        if overlap:
            self._gathered.settle(self.tables[table])

    def _flush_copy(self, cursor: Any, table: str, op: str, params: list[Any]) -> int:
        """COPY into the table (inserts) or into a scratch table joined with it through the
        primary key's index (updates, deletes); returns the rows the statement touched. On
        a table whose key is not built yet, updates and deletes are gathered instead (their
        rows are checked when they are settled)."""
        schema = self.tables[table]
        name = quote_ident(table)
        if op in (INSERT, SNAPSHOT):
            self._settle_before_insert(table, params)
            copy_rows(cursor, name, schema.column_names, params, self._binary(table, schema.column_names))
            return len(params)
        if table in self.keys_pending:
            self._gather(table, op, params)
            return len(params)
        columns = run_columns(schema, op)
        create_scratch(cursor, "_tradevault_apply", schema, columns)
        try:
            copy_rows(cursor, "_tradevault_apply", columns, params, self._scratch_types(table, op))
            where = " AND ".join(f"t.{quote_ident(k)} = v.{quote_ident(k)}" for k in schema.primary_key)
            if op == UPDATE:
                sets = ", ".join(f"{quote_ident(c)} = {value}"
                                 for c, value in zip(columns, scratch_columns(schema, columns, "v")))
                cursor.execute(f"UPDATE {name} AS t SET {sets} FROM _tradevault_apply AS v WHERE {where}")
            else:
                cursor.execute(f"DELETE FROM {name} AS t USING _tradevault_apply AS v WHERE {where}")
            return cursor.rowcount
        finally:
            cursor.execute("DROP TABLE _tradevault_apply")

    def _flush(self, table: str, op: str, params: list[Any], copyable: bool) -> None:
        if not params:
            return
        import psycopg

        if not (copyable and op in (UPDATE, DELETE) and table in self.keys_pending):  # not gathered
            self.loaded()
        if not copyable and table in self.keys_pending:
            self.build_keys(table)  # small batches find their rows through the key's index
        try:
            if not copyable and op == UPDATE and self._moved_together(table, params):
                return
            if copyable:
                with self.conn.cursor() as cursor:
                    rowcount = self._flush_copy(cursor, table, op, params)
                if rowcount != len(params):
                    raise IntegrityError(
                        f"replay diverged from the source: {op} of {len(params) - rowcount} "
                        f"missing row(s) in table {table!r}"
                    )
                self.applied += len(params)
                return
            with self.conn.cursor() as cursor, psycopg.RawCursor(self.conn) as raw:
                for batched, group in self._groups(table, op, params):
                    if batched and len(group) > 1:
                        flat = [v for param in group for v in param]
                        raw.execute(self._batch_statement(table, op, len(group)), flat)
                        rowcount = raw.rowcount
                    else:
                        cursor.execute(self._statement(table, op), group[0])
                        rowcount = cursor.rowcount
                    if op in (UPDATE, DELETE) and rowcount != len(group):
                        raise IntegrityError(
                            f"replay diverged from the source: {op} of {len(group) - rowcount} "
                            f"missing row(s) in table {table!r}"
                        )
        except psycopg.errors.IntegrityError as exc:
            raise IntegrityError(f"replay diverged from the source on table {table!r}: {exc}".strip()) from None
        except (psycopg.DataError, psycopg.ProgrammingError) as exc:
            raise IntegrityError(f"replay: malformed event for table {table!r}: {exc}".strip()) from None
        self.applied += len(params)

    def _moved_together(self, table: str, params: list[Any]) -> bool:
        """A run of updates that moves keys of a table whose key is DEFERRABLE, applied in
        stretches as a whole (restore.moved_keys); whether it was one."""
        schema = self.tables[table]
        key_idx, nkeys = schema.key_indexes(), len(schema.primary_key)
        # whether keys move first: most runs move none, and deferrable() parses the description
        if table in self.keys_pending or not moves_keys(params, key_idx, nkeys) or not deferrable(schema):
            return False
        apply_in_stretches(table, params, key_idx, nkeys, lambda stretch: self._move(table, stretch))
        self.applied += len(params)
        return True

    def _move(self, table: str, stretch: list[Any]) -> bool:
        """One stretch whole, in a savepoint: its old keys deleted, its new rows inserted;
        rolled back, False, when its old keys are not all there."""
        import psycopg

        nkeys = len(self.tables[table].primary_key)
        with self.conn.transaction(), psycopg.RawCursor(self.conn) as raw:
            for _, group in self._groups(table, DELETE, [list(p[-nkeys:]) for p in stretch]):
                raw.execute(self._batch_statement(table, DELETE, len(group)), [v for k in group for v in k])
                if raw.rowcount != len(group):
                    raise psycopg.Rollback()
            for _, group in self._groups(table, INSERT, [list(p[:-nkeys]) for p in stretch]):
                raw.execute(self._batch_statement(table, INSERT, len(group)), [v for r in group for v in r])
            return True
        return False

    def apply(self, events: list[ChangeEvent]) -> None:
        for table, op, run in runs(events):
            if op == SCHEMA:
                self._apply_schema(run[0])
            else:
                self._statement(table, op)  # unknown table / operation -> IntegrityError
                self._flush(table, op, *self._prepared_run(table, op, run))

    def prepare(self, events: list[ChangeEvent]) -> Prepared | None:
        """What ``apply`` would send for ``events``, worked out ahead (in any thread: see
        restore.read_ahead): per run its table, operation, parameter rows and whether it
        goes through COPY. None for events holding a SCHEMA change (it changes what the
        events after it mean): those are applied as they come."""
        prepared = []
        for table, op, run in runs(events):
            if op == SCHEMA:  # (a SCHEMA event is a run of its own)
                return None
            self._statement(table, op)  # unknown table / operation -> IntegrityError
            prepared.append((table, op, *self._prepared_run(table, op, run)))
        return prepared

    def apply_prepared(self, prepared: Prepared) -> None:
        for table, op, params, copyable in prepared:
            self._flush(table, op, params, copyable)

    def _params(self, table: str, op: str, run: list[ChangeEvent]) -> list[Any]:
        if op == UPDATE:
            return [(*(e.row or []), *(e.key or [])) for e in run]
        if op == DELETE:
            return [tuple(e.key or []) for e in run]
        return [tuple(e.row or []) for e in run]

    def _apply_schema(self, event: ChangeEvent) -> None:
        self.loaded()
        if event.table in self.tables:
            self._gathered.settle(self.tables[event.table])  # their checks still count
            # only a table the applier knows: an unqualified name it does not know could
            # resolve to a table of another schema (see restore.postgres.staging)
            self.conn.execute(f"DROP TABLE IF EXISTS {quote_ident(event.table)}")
        self.keys_pending.discard(event.table)  # recreated below with its key
        self._sql = {k: v for k, v in self._sql.items() if k[0] != event.table}
        if event.table_schema is None:
            self.tables.pop(event.table, None)
            self.unfinished.discard(event.table)
            return
        table = described(TableSchema.from_dict(event.table_schema), self.latest)
        if table.name in self.relax:
            table = relaxed(table)
        if create_types(self.conn, [table]):
            self.conn.commit()  # enum labels just added are usable only once committed
        self.notes += create_table(self.conn, table, with_key=True)
        self.tables[table.name] = table
        self.unfinished.add(table.name)


def _distinct(keys: list[Any]) -> bool:
    try:
        return len(set(keys)) == len(keys)
    except TypeError:  # unhashable key values
        return False

