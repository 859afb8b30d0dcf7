"""The definitions of the types a table uses, read from the catalog, so a restore can
create them before the table: enums, domains (with their checks), composite and range
types (multiranges come with their range), and the extensions that provide types such as
citext or hstore. Each definition names its type unqualified, so a restore creates it
where it builds the tables (a private schema, moved into the source's at the end).

In dependency order: a domain over an enum comes after the enum, a composite after its
attributes' types. A type that cannot be recreated from SQL (a base type written in C that
no extension provides, a pseudo-type, a type of another schema) is bad input naming it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable

from trade_stream.errors import BadInputError
from trade_stream.schema import quote_ident

if TYPE_CHECKING:
    import psycopg

FIRST_USER_OID = 16384  # FirstNormalObjectId: below it, the types every database has


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Reader:
    def __init__(self, conn: "psycopg.Connection", where: str) -> None:
        self.conn = conn
        self.where = where  # "table 'x' column 'y'", for errors
        self.done: set[int] = set()
        self.out: list[dict[str, str]] = []

    def one(self, sql: str, params: tuple) -> Any:
        return self.conn.execute(sql, params).fetchone()

    def visit(self, oid: int) -> None:
        if oid < FIRST_USER_OID or oid in self.done:
            return
        self.done.add(oid)
        row = self.one(
            "SELECT t.typname, n.nspname, n.nspname = current_schema(), t.typtype, t.typelem, t.typbasetype,"
            " t.typtypmod, t.typnotnull,"
            " t.typdefault, t.typrelid, t.typcategory, coalesce(c.relkind, ''),"
            " (SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid"
            "   WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'"
            "   AND d.refclassid = 'pg_extension'::regclass),"
            " (SELECT en.nspname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid"
            "   JOIN pg_namespace en ON en.oid = e.extnamespace"
            "   WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'"
            "   AND d.refclassid = 'pg_extension'::regclass)"
            " FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
            " LEFT JOIN pg_class c ON c.oid = t.typrelid WHERE t.oid = %s",
            (oid,),
        )
        (name, schema, home, kind, elem, base, typmod, notnull, default, relid, category, relkind,
         extension, ext_schema) = row
        if extension:
            self._add(extension, "extension",
                      f"CREATE EXTENSION IF NOT EXISTS {quote_ident(extension)} WITH SCHEMA {quote_ident(ext_schema)}")
            return
        if category == "A" and elem:  # an array type: what matters is its element
            self.visit(elem)
            return
        if not home:
            raise BadInputError(f"{self.where} has type {schema}.{name}, of schema {schema!r}: only types of "
                                "the schema backed up and of extensions are backed up; exclude the table")
        if kind == "e":
            labels = [r[0] for r in self.conn.execute(
                "SELECT enumlabel FROM pg_enum WHERE enumtypid = %s ORDER BY enumsortorder", (oid,)).fetchall()]
            self._add(name, "enum", f"CREATE TYPE {quote_ident(name)} AS ENUM ({', '.join(map(_literal, labels))})")
        elif kind == "d":
            self.visit(base)
            declared = self.one("SELECT format_type(%s, %s)", (base, typmod))[0]
            parts = [f"CREATE DOMAIN {quote_ident(name)} AS {declared}"]
            if default is not None:
                parts.append(f"DEFAULT {default}")
            if notnull:
                parts.append("NOT NULL")
            for cname, definition in self.conn.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contypid = %s ORDER BY conname",
                (oid,),
            ).fetchall():
                parts.append(f"CONSTRAINT {quote_ident(cname)} {definition}")
            self._add(name, "domain", " ".join(parts))
        elif kind == "c" and relkind == "c":
            attributes = self.conn.execute(
                "SELECT attname, atttypid, format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (relid,),
            ).fetchall()
            for _, attribute_type, _ in attributes:
                self.visit(attribute_type)
            body = ", ".join(f"{quote_ident(a)} {t}" for a, _, t in attributes)
            self._add(name, "composite", f"CREATE TYPE {quote_ident(name)} AS ({body})")
        elif kind in ("r", "m"):
            self._range(oid if kind == "r" else self.one(
                "SELECT rngtypid FROM pg_range WHERE rngmultitypid = %s", (oid,))[0])
        elif kind == "c":
            raise BadInputError(f"{self.where} has the row type of table {name!r}: tradevault cannot recreate it "
                                "apart from that table; exclude the table")
        else:
            raise BadInputError(f"{self.where} has type {name!r}, a base type implemented in C that no extension "
                                "provides: tradevault cannot recreate it; exclude the table")

    def _range(self, oid: int) -> None:
        self.done.add(oid)
        (name, subtype, collation, opclass, default_opclass, canonical, diff, multirange) = self.one(
            "SELECT t.typname, r.rngsubtype, coalesce(c.collname, ''), oc.opcname, oc.opcdefault,"
            " r.rngcanonical::oid, r.rngsubdiff::regproc::text, mt.typname"
            " FROM pg_range r JOIN pg_type t ON t.oid = r.rngtypid JOIN pg_opclass oc ON oc.oid = r.rngsubopc"
            " LEFT JOIN pg_collation c ON c.oid = r.rngcollation AND r.rngcollation <> 0"
            " LEFT JOIN pg_type mt ON mt.oid = r.rngmultitypid WHERE r.rngtypid = %s",
            (oid,),
        )
        if any(n == name for n in (d["name"] for d in self.out)):
            return
        self.visit(subtype)
        if canonical:
            raise BadInputError(f"{self.where} has range type {name!r} with a canonical function: tradevault "
                                "cannot recreate it; exclude the table")
        declared = self.one("SELECT format_type(%s, NULL)", (subtype,))[0]
        options = [f"SUBTYPE = {declared}"]
        if not default_opclass:
            options.append(f"SUBTYPE_OPCLASS = {quote_ident(opclass)}")
        if collation and collation != "default":
            options.append(f"COLLATION = {quote_ident(collation)}")
        if diff and diff != "-":
            options.append(f"SUBTYPE_DIFF = {diff}")
        if multirange:
            options.append(f"MULTIRANGE_TYPE_NAME = {quote_ident(multirange)}")
        self._add(name, "range", f"CREATE TYPE {quote_ident(name)} AS RANGE ({', '.join(options)})")

    def _add(self, name: str, kind: str, ddl: str) -> None:
        if not any(d["name"] == name and d["kind"] == kind for d in self.out):
            self.out.append({"name": name, "kind": kind, "ddl": ddl})


def type_definitions(conn: "psycopg.Connection", columns: Iterable[tuple[str, int]],
                     table: str) -> list[dict[str, str]]:
    """The definitions (name, kind, CREATE statement) of every user type the columns
    ((name, type oid) pairs of ``table``) use, in the order to create them."""
    definitions: list[dict[str, str]] = []
    for column, oid in columns:
        reader = _Reader(conn, f"table {table!r} column {column!r}")
        reader.visit(oid)
        for definition in reader.out:
            if definition not in definitions:
                definitions.append(definition)
    return definitions


def collation_definitions(conn: "psycopg.Connection", relid: int, table: str) -> list[dict[str, str]]:
    """The definitions (kind ``collation``) of the user collations the table's columns use
    (a case-insensitive ICU one, say), created like types before the table. One of another
    schema is bad input naming it, as a type of another schema is."""
    definitions = []
    for column, name, schema, home, found in conn.execute(
        "SELECT a.attname, c.collname, n.nspname, n.nspname = current_schema(), to_jsonb(c)::text"
        " FROM pg_attribute a"
        " JOIN pg_collation c ON c.oid = a.attcollation JOIN pg_namespace n ON n.oid = c.collnamespace"
        " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped AND c.oid >= %s ORDER BY a.attnum",
        (relid, FIRST_USER_OID),
    ).fetchall():
        if not home:
            raise BadInputError(f"table {table!r} column {column!r} has collation {schema}.{name}, of schema "
                                f"{schema!r}: only the schema of the tables is backed up; exclude the table")
        definition = {"name": name, "kind": "collation", "ddl": _collation_ddl(name, json.loads(found))}
        if definition not in definitions:
            definitions.append(definition)
    return definitions


def _collation_ddl(name: str, found: dict[str, Any]) -> str:
    """``CREATE COLLATION`` from its catalog row (``to_jsonb``: the columns differ between
    PostgreSQL versions, colliculocale became colllocale)."""
    provider = {"i": "icu", "c": "libc", "b": "builtin"}.get(found.get("collprovider") or "c", "libc")
    options = [f"provider = {provider}"]
    locale = found.get("colllocale") or found.get("colliculocale")
    if provider != "libc" and locale:
        options.append(f"locale = {_literal(locale)}")
    else:
        options += [f"lc_collate = {_literal(found.get('collcollate') or 'C')}",
                    f"lc_ctype = {_literal(found.get('collctype') or 'C')}"]
    if found.get("collicurules"):
        options.append(f"rules = {_literal(found['collicurules'])}")
    if found.get("collisdeterministic") is False:
        options.append("deterministic = false")
    return f"CREATE COLLATION {quote_ident(name)} ({', '.join(options)})"


def signature_types(conn: "psycopg.Connection", function: int, name: str) -> list[dict[str, str]]:
    """The definitions of the user types a function's arguments and result use that no
    table's column may (a composite made for a result, say), in the order to create them.
    A table's row type comes with its table; a type that cannot be recreated is left to
    the restore, which notes the function if it cannot create it."""
    definitions: list[dict[str, str]] = []
    for (oid,) in conn.execute(
        "SELECT DISTINCT t FROM pg_proc p, unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])"
        " || p.prorettype) t WHERE p.oid = %s ORDER BY 1", (function,),
    ).fetchall():
        reader = _Reader(conn, f"function {name!r}")
        try:
            reader.visit(oid)
        except BadInputError:  # a row type, another schema's type...: see the docstring
            continue
        definitions += [d for d in reader.out if d not in definitions]
    return definitions


def free_types(conn: "psycopg.Connection", skip: str) -> list[tuple[str, list[dict[str, str]]]]:
    """The schema's own types no table of it uses (tables bring theirs): a view, a cast, a
    function's body may use one, and a restore without it failed whole ('type "side" does
    not exist'). Per type (names starting with ``skip`` left out), its definitions in the
    order to create them; one that cannot be recreated is left out (see signature_types)."""
    found = []
    for oid, name in conn.execute(
        "SELECT t.oid, t.typname FROM pg_type t WHERE t.typnamespace = quote_ident(current_schema())::regnamespace"
        " AND (t.typtype IN ('e', 'd', 'r')"
        "  OR t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')"
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid"
        "  AND d.deptype = 'e')"
        " AND NOT EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        "  WHERE c.relnamespace = t.typnamespace AND c.relkind IN ('r', 'p') AND a.attnum > 0"
        "  AND NOT a.attisdropped AND a.atttypid IN (t.oid, t.typarray))"
        " ORDER BY t.oid"
    ).fetchall():
        if name.startswith(skip):
            continue
        reader = _Reader(conn, f"type {name!r}")
        try:
            reader.visit(oid)
        except BadInputError:
            continue
        found.append((name, reader.out))
    return found


def enum_labels(ddl: str) -> list[str]:
    """The labels of a ``CREATE TYPE ... AS ENUM (...)`` statement written above."""
    body = ddl[ddl.index("AS ENUM (") + len("AS ENUM ("):-1]
    labels, current, quoted, i = [], "", False, 0
    while i < len(body):
        ch = body[i]
        if ch == "'":
            if quoted and i + 1 < len(body) and body[i + 1] == "'":
                current += "'"
                i += 2
                continue
            quoted = not quoted
            if not quoted:
                labels.append(current)
                current = ""
        elif quoted:
            current += ch
        i += 1
    return labels
