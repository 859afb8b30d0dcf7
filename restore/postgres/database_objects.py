"""The objects of a restored PostgreSQL database that are not tables, recorded by the
source (trade_stream/postgres/catalog.py): functions (aggregates among them), text search
dictionaries and configurations, operators, casts, partitioned tables, views, materialized views, and the
tables' triggers and foreign keys.

Functions are created first, in the restore's private schema (a default or a check may
call one), with function bodies left unchecked as pg_restore does (a body may name tables
that do not exist yet); ``publish`` moves them into the source's schema (``public``, or
the one it recorded: ``home_schema``) with the tables.
Partitioned tables (their partitions are restored as tables, then attached), views,
materialized views (then refreshed) and triggers are created in the publishing
transaction, once the tables they name are in that schema: a view is created once what it
reads exists, so views on views come out in a working order whatever order they were
recorded in.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterable

from restore.postgres.apply import (
    add_foreign_keys,
    create_extension,
    create_triggers,
    finish_published,
    index_in_schema,
)
from trade_stream.errors import IntegrityError
from trade_stream.postgres.catalog import home_schema, partitioned_names
from trade_stream.schema import TableSchema, quote_ident

if TYPE_CHECKING:
    import psycopg

# the source's schema, which pg_get_functiondef names before the function's name
_QUALIFIED_FUNCTION = re.compile(r'^CREATE OR REPLACE (FUNCTION|PROCEDURE) (?:"(?:[^"]|"")+"|[^\s."(]+)\.')


def create_extensions(conn: "psycopg.Connection", objects: Iterable[dict[str, Any]]) -> None:
    """The source's extensions, in their own schemas, before anything that may use them."""
    for extension in objects:
        if extension["kind"] == "extension":
            create_extension(conn, extension["ddl"])


def create_sequences(conn: "psycopg.Connection", objects: Iterable[dict[str, Any]],
                     positions: dict[str, list[Any]]) -> None:
    """The sequences no column owns (a default may call one), in the private schema, at the
    position recorded with the backup."""
    for sequence in objects:
        if sequence["kind"] != "sequence":
            continue
        conn.execute(sequence["ddl"])
        position = positions.get(sequence["name"])
        if position is not None:
            conn.execute("SELECT setval(%s, %s, %s)", (quote_ident(sequence["name"]), position[0], position[1]))


def function_types(objects: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """The type definitions the functions' signatures need, and those of the types no
    table uses (``free_types``), once each, in order."""
    definitions: list[dict[str, str]] = []
    for entry in objects:
        if entry["kind"] in ("function", "type"):
            definitions += [d for d in entry.get("types", []) if d not in definitions]
    return definitions


class _Later(Exception):
    """A function to create once the tables are published (see create_functions)."""


def create_functions(conn: "psycopg.Connection", objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The source's functions, in the connection's current schema (the private one), after
    the types their signatures need (``function_types``). One whose signature names a
    table's row type cannot exist before that table: it is returned, for
    ``after_publish``. So is one whose signature found that type in the home schema instead
    (the old table of a ``--force`` restore over the database): publishing drops that table
    and, with it, the function (found: every view calling one then failed the restore)."""
    import psycopg

    functions = [o for o in objects if o["kind"] == "function"]
    if not functions:
        return []
    conn.execute("SET LOCAL check_function_bodies = off")
    home = home_schema(objects)
    later = []
    for function in functions:
        try:
            with conn.transaction():
                _create_function(conn, function)
                if _signature_in(conn, function["name"], home):
                    raise _Later()
        except (psycopg.errors.UndefinedObject, _Later):  # "type t does not exist"
            later.append(function)
    return later


def _signature_in(conn: "psycopg.Connection", name: str, schema: str) -> bool:
    """Whether a function ``name`` of the current schema has an argument or result type (or
    an array of one) of ``schema`` that no extension provides."""
    return bool(conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_proc p, unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])"
        " || p.prorettype) AS used(oid) JOIN pg_type t ON t.oid = used.oid"
        " JOIN pg_type base ON base.oid = CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE t.oid END"
        " WHERE p.pronamespace = quote_ident(current_schema())::regnamespace AND p.proname = %s"
        " AND base.typnamespace = to_regnamespace(quote_ident(%s)) AND NOT EXISTS (SELECT 1 FROM pg_depend d"
        "  WHERE d.classid = 'pg_type'::regclass AND d.objid = base.oid AND d.deptype = 'e'))",
        (name, schema),
    ).fetchone()[0])


def _create_function(conn: "psycopg.Connection", function: dict[str, Any]) -> None:
    # pg_get_functiondef names the schema in the statement's first words only (functions
    # are recorded from the source's schema alone)
    conn.execute(_QUALIFIED_FUNCTION.sub(r"CREATE OR REPLACE \1 ", function["ddl"], count=1))
    if function.get("comment") is not None:
        conn.execute(f"COMMENT ON ROUTINE {function['signature']} IS {_literal(function['comment'])}")


def create_text_search(conn: "psycopg.Connection", objects: Iterable[dict[str, Any]]) -> None:
    """The source's text search dictionaries, then configurations (mapped to those), in the
    private schema: a table's generated column or an index may use one. ``publish`` moves
    them into the home schema with the tables."""
    for kind in ("text search dictionary", "text search configuration"):
        for entry in objects:
            if entry["kind"] == kind:
                _create_recorded(conn, entry, f"{kind.upper()} {quote_ident(entry['name'])}")


def create_operators_and_casts(conn: "psycopg.Connection", objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The source's operators and casts, in the private schema (an index or an exclusion
    constraint may use an operator); ``publish`` moves the operators into the home schema
    with the functions they call. One that cannot be created yet (a cast of a type no table
    or signature uses, created with the views) is returned, for ``after_publish``."""
    import psycopg

    later = []
    for entry in objects:
        if entry["kind"] in ("operator", "cast"):
            try:
                with conn.transaction():
                    _create_operator_or_cast(conn, entry)
            except psycopg.errors.UndefinedObject:
                later.append(entry)
    return later


def _create_operator_or_cast(conn: "psycopg.Connection", entry: dict[str, Any]) -> None:
    # (their recorded names are what COMMENT ON takes: "~=(numeric, numeric)", "(int AS side)")
    _create_recorded(conn, entry, f"{entry['kind'].upper()} {entry['name']}")


def _create_recorded(conn: "psycopg.Connection", entry: dict[str, Any], commented: str) -> None:
    """An object recorded as its CREATE statement (``ddl``) and those that finish it
    (``statements``: a configuration's mappings, an event trigger's firing state), then its
    comment, on ``commented`` (``PUBLICATION "feed"``, say)."""
    for statement in [entry["ddl"], *entry.get("statements", [])]:
        conn.execute(statement)
    if entry.get("comment") is not None:
        conn.execute(f"COMMENT ON {commented} IS {_literal(entry['comment'])}")


def after_publish(conn: "psycopg.Connection", objects: list[dict[str, Any]], tables: Iterable[TableSchema],
                  partial: bool = False, functions: Iterable[dict[str, Any]] = ()) -> list[str]:
    """In the publishing transaction, with the tables in their schema: the comment of that
    schema when the source recorded it (``home_schema``), the ``functions`` that
    waited for them (``create_functions``), partitioned tables, views and materialized
    views (refreshed, with their indexes), then the tables' triggers. ``partial``: a
    restore of some tables, where a view that reads one left out is not created but noted
    (returned); so is a function that still cannot be created."""
    import psycopg

    tables = list(tables)
    notes = []
    home = home_schema(objects)
    for schema in objects:
        if schema["kind"] == "schema" and schema.get("comment") is not None:
            conn.execute(f"COMMENT ON SCHEMA {quote_ident(schema['name'])} IS {_literal(schema['comment'])}")
    if functions:
        conn.execute("SET LOCAL check_function_bodies = off")
    for function in functions:
        try:
            with conn.transaction():
                if function["kind"] == "function":
                    _create_function(conn, function)
                else:  # an operator or a cast (create_operators_and_casts)
                    _create_operator_or_cast(conn, function)
        except psycopg.Error as exc:
            name = function.get("signature", function["name"])
            notes.append(f"{function['kind']} {name} not created: {str(exc).splitlines()[0]}")
    restored = {t.name for t in tables}
    created, parts = partitioned_tables(conn, objects, restored, partial)
    notes += parts
    recorded = partitioned_names(objects)
    if recorded:  # the foreign keys into them (the others are in place)
        notes += add_foreign_keys(conn, tables, restored | created if partial else None,
                                  referencing=lambda parent: parent in recorded)
    pending = [o for o in objects if o["kind"] in ("view", "materialized view")]
    while pending:
        left, missing = [], {}
        for view in pending:
            try:
                with conn.transaction():
                    conn.execute(view["ddl"])
            except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName) as exc:
                left.append(view)  # reads a view not created yet, or what is not in the backup
                missing[view["name"]] = exc
                continue
            _finish_view(conn, view, home)
        if len(left) == len(pending):
            notes += _views_not_created(left, missing, partial, home)
            break
        pending = left
    finish_published(conn, tables)
    notes += create_triggers(conn, tables)
    notes += create_publications(conn, objects, restored | created if partial else None)
    return notes + apply_privileges(conn, objects, restored | created if partial else None)


def create_event_triggers(conn: "psycopg.Connection", objects: Iterable[dict[str, Any]]) -> list[str]:
    """The source's event triggers, as the restore's very last statements (``Staging.publish``'s
    ``last``): they fire on DDL, and the application's function must not see the restore's
    own (it may write a row). Only a superuser may create one: a refusal is noted."""
    import psycopg

    notes = []
    for entry in objects:
        if entry["kind"] != "event trigger":
            continue
        try:
            with conn.transaction():
                _create_recorded(conn, entry, f"EVENT TRIGGER {quote_ident(entry['name'])}")
        except psycopg.Error as exc:
            notes.append(f"event trigger {entry['name']} not created: {str(exc).splitlines()[0]}")
    return notes


def create_publications(conn: "psycopg.Connection", objects: Iterable[dict[str, Any]],
                        restored: set[str] | None) -> list[str]:
    """The source's publications (trade_stream/postgres/catalog.publications), once the
    tables are in place; the notes of what is left out: a publication naming a table this
    restore of some tables (``restored``) leaves out, the tables of other schemas one
    named, and one the server refuses (a role without CREATE on the database, a server
    older than the syntax)."""
    import psycopg

    notes = []
    for entry in objects:
        if entry["kind"] != "publication":
            continue
        name = entry["name"]
        missing = sorted(set(entry["tables"]) - restored) if restored is not None else []
        if missing:
            notes.append(f"publication {name} not created: it names tables left out ({', '.join(missing)})")
            continue
        try:
            with conn.transaction():
                _create_recorded(conn, entry, f"PUBLICATION {quote_ident(name)}")
        except psycopg.Error as exc:
            notes.append(f"publication {name} not created: {str(exc).splitlines()[0]}")
            continue
        if entry.get("elsewhere"):
            notes.append(f"publication {name}: its tables of other schemas are not backed up "
                         f"({', '.join(entry['elsewhere'])})")
    return notes


# per kind of a privileges entry's ``lookup``: whether the object it names is missing
_LOOKUPS = {
    **{function: f"SELECT {function}(%s) IS NULL" for function in ("to_regclass", "to_regprocedure", "to_regtype")},
    "publication": "SELECT NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = %s)",
}


def apply_privileges(conn: "psycopg.Connection", objects: list[dict[str, Any]], restored: set[str] | None,
                     ) -> list[str]:
    """Owners and privileges as the backup recorded them (trade_stream/postgres/privileges.py),
    each statement on its own: one naming a role the target lacks, or that the restoring
    role may not run (only a superuser or a member of the new owner may hand an object to
    it), is noted and the others still run. ``restored``: a restore of some tables, whose
    other tables' statements are left out."""
    import psycopg

    notes = []
    for entry in objects:
        if entry["kind"] != "privileges" or (restored is not None and entry.get("table") not in (None, *restored)):
            continue
        lookup = entry.get("lookup")
        if lookup and lookup[0] in _LOOKUPS and conn.execute(_LOOKUPS[lookup[0]], (lookup[1],)).fetchone()[0]:
            continue  # not created (a view left out, a function that failed): noted already
        failed = []
        for statement in entry["statements"]:
            try:
                with conn.transaction():
                    conn.execute(statement)
            except psycopg.Error as exc:
                failed.append(f"{statement}: {str(exc).splitlines()[0]}")
        if failed:
            notes.append(f"{entry['name']}: {len(failed)} of its owner and privilege statement(s) not run"
                         f" (first: {failed[0]})")
    return notes


def partitioned_tables(conn: "psycopg.Connection", objects: list[dict[str, Any]], restored: set[str],
                       partial: bool) -> tuple[set[str], list[str]]:
    """The partitioned tables over their restored partitions (see
    trade_stream/postgres/catalog.partitioned_table): every one created first (one may be
    a partition of another), then attached from the last recorded (sub-partitions come after
    their parents) so that a partition is complete when it is attached. In a restore of
    some tables, one whose partitions were not all restored is left out, noted. Returns the
    names of those created, and the notes."""
    recorded = [o for o in objects if o["kind"] == "partitioned table"]
    notes, kept, present = [], [], set(restored)
    for table in reversed(recorded):  # a partitioned partition is decided before its parent
        missing = sorted(child for child in table["partitions"] if child not in present)
        if missing and partial:
            notes.append(f"partitioned table {table['name']} not created: partitions left out "
                         f"({', '.join(missing)})")
            continue
        kept.insert(0, table)
        present.add(table["name"])
    for table in kept:
        conn.execute(table["ddl"])
        if table.get("comment") is not None:
            conn.execute(f"COMMENT ON TABLE {quote_ident(table['name'])} IS {_literal(table['comment'])}")
    for table in reversed(kept):
        for statement in table["attach"]:
            conn.execute(statement)
    return {table["name"] for table in kept}, notes


def _views_not_created(left: list[dict[str, Any]], missing: dict[str, Exception], partial: bool,
                       schema: str) -> list[str]:
    """The notes of the views none of which could be created: one reading a foreign table
    or a table of another schema (neither is backed up), or a view among these, is noted; so
    is any in a restore of some tables (it reads one left out). Any other is a restore that
    went wrong."""
    names = {view["name"] for view in left}
    home = f"{schema}."  # the schema the views were recorded in, and published into
    notes = []
    for view in left:
        relation = _MISSING_RELATION.search(str(missing[view["name"]]))
        name = relation.group(1) if relation else ""
        foreign = view.get("foreign_tables", [])
        if foreign:
            why = f"it reads foreign table(s) {', '.join(foreign)}, which are not backed up"
        elif not relation:  # schema "x" does not exist: it calls a function of x, say
            why = f"{str(missing[view['name']]).splitlines()[0]} (only schema {home[:-1]} is backed up)"
        elif "." in name and not name.startswith(home):
            why = f"it reads {name}, of a schema that is not backed up"
        elif name.removeprefix(home) in names:
            why = f"it reads {name.removeprefix(home)}, not created"
        elif partial:
            why = "what it reads was left out"
        else:
            raise IntegrityError(f"view {view['name']!r} could not be restored: "
                                 f"{str(missing[view['name']]).splitlines()[0]}")
        notes.append(f"{view['kind']} {view['name']} not created: {why}")
    return notes


_MISSING_RELATION = re.compile(r'relation "([^"]+)" does not exist')


def _finish_view(conn: "psycopg.Connection", view: dict[str, Any], home: str) -> None:
    name = quote_ident(view["name"])
    for trigger in view.get("triggers", []):
        conn.execute(trigger)
    if view["kind"] == "materialized view":
        for statement in view.get("indexes", []):
            conn.execute(index_in_schema(statement, home))
        conn.execute(f"REFRESH MATERIALIZED VIEW {name}")
    if view.get("comment") is not None:
        conn.execute(f"COMMENT ON {view['kind'].upper()} {name} IS {_literal(view['comment'])}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
