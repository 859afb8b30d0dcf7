"""What a PostgreSQL restore must rebuild besides the rows, read from the catalog: per table
its constraints (primary key name, unique, exclusion, check, foreign keys with their
actions, deferrability and validity), secondary indexes, triggers, comments, replica
identity, storage parameters, row security and its policies, columns' collations,
statistics targets and storage, the index it is clustered on, extended statistics, rules,
comments on its indexes and constraints, and the definitions of its sequences; per
database its functions, views, materialized views and partitioned tables. Each as the
server prints it (``pg_get_constraintdef``, ``pg_get_indexdef``, ``pg_get_triggerdef``,
``pg_get_functiondef``, ``pg_get_viewdef``), so the restore gives back the same
definitions ``pg_dump --schema-only`` shows.

Read in the snapshot the full backup reads its rows in (and again by every incremental,
which resynchronises a table whose definition changed).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterable

from trade_stream.postgres.privileges import privileges
from trade_stream.postgres.type_definitions import FIRST_USER_OID, free_types, signature_types
from trade_stream.schema import quote_ident

if TYPE_CHECKING:
    import psycopg

# our own objects: never part of what is restored
OWN_PREFIX = "_tradevault_"


def table_definitions(conn: "psycopg.Connection", relid: int) -> dict[str, Any]:
    """The rebuild-after-data part of one table's description (see the module doc)."""
    out: dict[str, Any] = {}
    constraints = conn.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid), convalidated, conindid FROM pg_constraint c"
        " WHERE conrelid = %s AND contype IN ('p', 'u', 'x', 'c', 'f')"
        # a foreign key into a partitioned table has one more per partition, which the
        # server makes itself along with it
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint p WHERE p.oid = c.conparentid AND p.conrelid = c.conrelid)"
        " ORDER BY conname",
        (relid,),
    ).fetchall()
    backing = {index for _, kind, _, _, index in constraints if kind in ("p", "u", "x") and index}
    # the storage parameters of a key's or unique constraint's index, which their definitions
    # leave out (an exclusion constraint's has them)
    keyed = [index for _, kind, _, _, index in constraints if kind in ("p", "u") and index]
    options = dict(conn.execute(
        "SELECT oid, array_to_string(reloptions, ', ') FROM pg_class WHERE oid = ANY(%s) AND reloptions IS NOT NULL",
        (keyed,)).fetchall()) if keyed else {}
    for name, kind, definition, _validated, index in constraints:
        if kind in ("p", "u") and index in options:  # before DEFERRABLE, where the grammar has it
            at = re.search(r" (NOT )?DEFERRABLE\b| INITIALLY ", definition)
            cut = at.start() if at else len(definition)
            definition = f"{definition[:cut]} WITH ({options[index]}){definition[cut:]}"
        if kind == "p":
            out["pk_name"] = name
            if definition[definition.index(")") + 1:].strip():  # DEFERRABLE, INCLUDE (...), WITH (...)
                out["pk_def"] = definition
        elif kind == "f":
            out.setdefault("foreign_keys", []).append({"name": name, "def": definition})
        elif kind == "c":
            out.setdefault("checks", []).append({"name": name, "def": definition})
        else:  # unique, exclusion: built with the keys after the data
            out.setdefault("constraints", []).append({"name": name, "def": definition})
    out["indexes"] = [definition for index, definition in conn.execute(
        "SELECT i.indexrelid, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid = %s AND NOT i.indisprimary ORDER BY i.indexrelid", (relid,),
    ).fetchall() if index not in backing]
    comments = {}
    table_comment = conn.execute("SELECT obj_description(%s, 'pg_class')", (relid,)).fetchone()[0]
    if table_comment is not None:
        comments[""] = table_comment
    for column, comment in conn.execute(
        "SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a"
        " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped"
        " AND col_description(a.attrelid, a.attnum) IS NOT NULL ORDER BY a.attnum", (relid,),
    ).fetchall():
        comments[column] = comment
    if comments:
        out["comments"] = comments
    replident, options, row_security, forced = conn.execute(
        "SELECT relreplident, reloptions, relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s", (relid,),
    ).fetchone()
    if replident != "d":
        out["replica_identity"] = replident
    if options:
        out["options"] = list(options)
    if row_security or forced:
        out["row_security"] = [flag for flag, on in (("enable", row_security), ("force", forced)) if on]
    policies = [_policy(name, *rest) for name, *rest in conn.execute(
        "SELECT p.polname, p.polcmd, p.polpermissive,"
        " ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END"
        "  FROM unnest(p.polroles) r), pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)"
        " FROM pg_policy p WHERE p.polrelid = %s ORDER BY p.polname", (relid,),
    ).fetchall()]
    if policies:
        out["policies"] = policies
    columns = {}
    for column, collation, statistics, storage in conn.execute(
        "SELECT a.attname,"
        " CASE WHEN a.attcollation <> t.typcollation"
        "  THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END,"
        " CASE WHEN a.attstattarget >= 0 THEN a.attstattarget END,"
        " CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage END"
        " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " LEFT JOIN pg_collation co ON co.oid = a.attcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace"
        " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (relid,),
    ).fetchall():
        settings = {"collation": collation, "statistics": statistics, "storage": _STORAGE.get(storage)}
        settings = {k: v for k, v in settings.items() if v is not None}
        if settings:
            columns[column] = settings
    if columns:
        out["column_settings"] = columns
    described = [{"kind": kind, "name": name, "comment": comment} for kind, name, comment in conn.execute(
        "SELECT 'index', c.relname, obj_description(c.oid, 'pg_class') FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s"
        " AND obj_description(c.oid, 'pg_class') IS NOT NULL"
        " UNION ALL SELECT 'constraint', conname, obj_description(oid, 'pg_constraint') FROM pg_constraint"
        " WHERE conrelid = %s AND obj_description(oid, 'pg_constraint') IS NOT NULL ORDER BY 1, 2", (relid, relid),
    ).fetchall()]
    if described:
        out["object_comments"] = described
    clustered = conn.execute("SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                             " WHERE i.indrelid = %s AND i.indisclustered", (relid,)).fetchone()
    if clustered:
        out["cluster_on"] = clustered[0]
    for key, sql in _STATEMENTS.items():
        statements = [r[0] for r in conn.execute(sql, (relid,)).fetchall()]
        if statements:  # only when there are: descriptions of tables without them stay as they were
            out[key] = statements
    return out


# the foreign tables a view reads: bare in the schema backed up, else qualified
_FOREIGN_READ = (
    "SELECT DISTINCT CASE WHEN n.nspname = current_schema() THEN c.relname"
    " ELSE format('%%I.%%I', n.nspname, c.relname) END FROM pg_rewrite r"
    " JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid"
    " AND d.refclassid = 'pg_class'::regclass"
    " JOIN pg_class c ON c.oid = d.refobjid JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE r.ev_class = %s AND c.relkind = 'f' ORDER BY 1"
)

# a relation's objects that each come back as the one statement the server prints for it
_STATEMENTS = {
    "triggers": "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = %s AND NOT tgisinternal"
                " ORDER BY tgname",
    "statistics": "SELECT pg_get_statisticsobjdef(oid) FROM pg_statistic_ext WHERE stxrelid = %s ORDER BY stxname",
    "rules": "SELECT pg_get_ruledef(oid) FROM pg_rewrite WHERE ev_class = %s AND rulename <> '_RETURN'"
             " ORDER BY rulename",
}


_STORAGE = {"p": "PLAIN", "e": "EXTERNAL", "m": "MAIN", "x": "EXTENDED"}
_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}


def _policy(name: str, command: str, permissive: bool, roles: list[str], using: str | None,
            check: str | None) -> str:
    """A row-security policy as ``CREATE POLICY`` (``ON {table}`` left to fill in)."""
    return (f"CREATE POLICY {quote_ident(name)} ON {{table}}" + ("" if permissive else " AS RESTRICTIVE")
            + f" FOR {_COMMANDS[command]} TO {', '.join(roles)}"
            + (f" USING ({using})" if using is not None else "")
            + (f" WITH CHECK ({check})" if check is not None else ""))


def sequence_options(conn: "psycopg.Connection", sequence: str) -> dict[str, Any]:
    """How a sequence of the schema backed up counts (type, start, step, bounds, cache, cycle)."""
    row = conn.execute(
        "SELECT format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,"
        " s.seqcycle FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relname = %s",
        (sequence,),
    ).fetchone()
    if row is None:
        return {}
    kind, start, step, low, high, cache, cycle = row
    return {"as": kind, "start": start, "increment": step, "min": low, "max": high, "cache": cache,
            "cycle": bool(cycle)}


def sequence_clause(options: dict[str, Any], with_type: bool = True) -> str:
    """The options of CREATE SEQUENCE, or (without the type, which is the column's) of an
    identity column's ``(...)``."""
    if not options:
        return ""
    return ((f"AS {options['as']} " if with_type else "")
            + f"INCREMENT BY {options['increment']} MINVALUE {options['min']} "
            f"MAXVALUE {options['max']} START WITH {options['start']} CACHE {options['cache']}"
            + (" CYCLE" if options["cycle"] else " NO CYCLE"))


def sequence_positions(conn: "psycopg.Connection") -> dict[str, list[Any]]:
    """Where every sequence of the schema backed up stands: [last_value, is_called]. Not part of any
    snapshot (sequences are not transactional): read next to it, never behind it."""
    positions = {}
    for name, schema in conn.execute(
        "SELECT c.relname, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind = 'S' ORDER BY c.relname"
    ).fetchall():
        if name.startswith(OWN_PREFIX):
            continue
        last, called = conn.execute(
            f"SELECT last_value, is_called FROM {quote_ident(schema)}.{quote_ident(name)}").fetchone()
        positions[name] = [last, called]
    return positions


def database_objects(conn: "psycopg.Connection") -> list[dict[str, str]]:
    """Extensions (an operator class or a function of one may be used by an index or a
    constraint), functions, views and materialized views of the schema backed up (not an
    extension's, not those a type creates for itself), each with its CREATE statement and
    comment, in an order that creates what another uses first (oid order, then
    dependencies: see the restore). First, when it is not ``public``, that schema itself
    (``home_schema``: where a restore puts the tables)."""
    objects: list[dict[str, str]] = []
    oid, home = conn.execute("SELECT oid, nspname FROM pg_namespace WHERE nspname = current_schema()").fetchone()
    if home != "public":  # descriptions of a public database stay as they were
        objects.append(_with_comment(conn, {"kind": "schema", "name": home,
                                            "ddl": f"CREATE SCHEMA IF NOT EXISTS {quote_ident(home)}"},
                                     oid, "pg_namespace"))
    for name, schema in conn.execute(
        "SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname <> 'plpgsql' ORDER BY e.oid"
    ).fetchall():
        objects.append({"kind": "extension", "name": name,
                        "ddl": f"CREATE EXTENSION IF NOT EXISTS {quote_ident(name)} WITH SCHEMA {quote_ident(schema)}"})
    for (name,) in conn.execute(  # sequences no column owns (a default's nextval may use one)
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind = 'S' AND NOT EXISTS (SELECT 1 FROM pg_depend d"
        "   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))"
        " ORDER BY c.oid"
    ).fetchall():
        if not name.startswith(OWN_PREFIX):
            options = sequence_clause(sequence_options(conn, name))
            objects.append({"kind": "sequence", "name": name, "ddl": f"CREATE SEQUENCE {quote_ident(name)} {options}"})
    for oid, name, aggregate in conn.execute(  # functions, procedures and aggregates: "function" entries
        "SELECT p.oid, p.proname, p.prokind = 'a' FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = current_schema() AND p.prokind IN ('f', 'p', 'a')"
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid"
        "   AND d.deptype IN ('e', 'i')) ORDER BY p.oid"  # (an aggregate comes after its functions)
    ).fetchall():
        definition = aggregate_definition(conn, oid, name) if aggregate else \
            conn.execute("SELECT pg_get_functiondef(%s)", (oid,)).fetchone()[0]
        entry = {"kind": "function", "name": name, "ddl": definition,
                 "signature": conn.execute("SELECT %s::regprocedure::text", (oid,)).fetchone()[0]}
        types = signature_types(conn, oid, name)
        if types:
            entry["types"] = types
        objects.append(_with_comment(conn, entry, oid, "pg_proc"))
    objects += [{"kind": "type", "name": name, "types": definitions}  # (a view's, a cast's)
                for name, definitions in free_types(conn, OWN_PREFIX)]
    objects += text_search_objects(conn) + operators(conn) + casts(conn)
    for oid, name, relkind in conn.execute(
        "SELECT c.oid, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind IN ('v', 'm') ORDER BY c.oid"
    ).fetchall():
        query = conn.execute("SELECT pg_get_viewdef(%s)", (oid,)).fetchone()[0].rstrip().rstrip(";")
        kind = "view" if relkind == "v" else "materialized view"
        ddl = f"CREATE {kind.upper()} {quote_ident(name)} AS\n{query}" + (" WITH NO DATA" if relkind == "m" else "")
        entry: dict[str, Any] = {"kind": kind, "name": name, "ddl": ddl}
        triggers = [r[0] for r in conn.execute(_STATEMENTS["triggers"], (oid,)).fetchall()]  # INSTEAD OF ones
        if triggers:
            entry["triggers"] = triggers
        foreign = [r[0] for r in conn.execute(_FOREIGN_READ, (oid,)).fetchall()]
        if foreign:  # not backed up (their rows live on another server): the view cannot come back
            entry["foreign_tables"] = foreign
        if relkind == "m":
            entry["indexes"] = [r[0] for r in conn.execute(
                "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s ORDER BY indexrelid",
                (oid,)).fetchall()]
        objects.append(_with_comment(conn, entry, oid, "pg_class"))
    for oid, name in conn.execute(
        "SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind = 'p' ORDER BY c.oid"
    ).fetchall():
        objects.append(_with_comment(conn, partitioned_table(conn, oid, name), oid, "pg_class"))
    return objects + publications(conn) + event_triggers(conn) + privileges(conn)  # last: run once all exist


# a name of another schema than the one backed up (and pg_catalog) comes qualified
_QUALIFIED = ("CASE WHEN {ns}.nspname IN ('pg_catalog', current_schema()) THEN quote_ident({name})"
              " ELSE quote_ident({ns}.nspname) || '.' || quote_ident({name}) END")
_NOT_AN_EXTENSION_MEMBER = ("NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = '{catalog}'::regclass"
                            " AND dep.objid = {oid} AND dep.deptype = 'e')")


def text_search_objects(conn: "psycopg.Connection") -> list[dict[str, Any]]:
    """The schema's own text search dictionaries and configurations (an extension's come
    back with it), as CREATE statements, dictionaries first: an index or a generated
    column of ``to_tsvector('bot_english', ...)`` cannot be built without them."""
    objects: list[dict[str, Any]] = []
    for oid, name, template, options in conn.execute(
        f"SELECT d.oid, d.dictname, {_QUALIFIED.format(ns='tn', name='t.tmplname')}, d.dictinitoption"
        " FROM pg_ts_dict d JOIN pg_ts_template t ON t.oid = d.dicttemplate"
        " JOIN pg_namespace tn ON tn.oid = t.tmplnamespace"
        " WHERE d.dictnamespace = quote_ident(current_schema())::regnamespace"
        f" AND {_NOT_AN_EXTENSION_MEMBER.format(catalog='pg_ts_dict', oid='d.oid')} ORDER BY d.oid"
    ).fetchall():
        ddl = f"CREATE TEXT SEARCH DICTIONARY {quote_ident(name)} (TEMPLATE = {template}" + (
            f", {options})" if options else ")")
        objects.append(_with_comment(conn, {"kind": "text search dictionary", "name": name, "ddl": ddl},
                                     oid, "pg_ts_dict"))
    for oid, name, parser, parser_oid in conn.execute(
        f"SELECT c.oid, c.cfgname, {_QUALIFIED.format(ns='pn', name='p.prsname')}, p.oid FROM pg_ts_config c"
        " JOIN pg_ts_parser p ON p.oid = c.cfgparser JOIN pg_namespace pn ON pn.oid = p.prsnamespace"
        " WHERE c.cfgnamespace = quote_ident(current_schema())::regnamespace"
        f" AND {_NOT_AN_EXTENSION_MEMBER.format(catalog='pg_ts_config', oid='c.oid')} ORDER BY c.oid"
    ).fetchall():
        config = quote_ident(name)
        mappings = [f"ALTER TEXT SEARCH CONFIGURATION {config} ADD MAPPING FOR {quote_ident(alias)} WITH {dicts}"
                    for alias, dicts in conn.execute(
                        "SELECT t.alias, string_agg(m.mapdict::regdictionary::text, ', ' ORDER BY m.mapseqno)"
                        " FROM pg_ts_config_map m JOIN ts_token_type(%s::oid) t ON t.tokid = m.maptokentype"
                        " WHERE m.mapcfg = %s GROUP BY t.tokid, t.alias ORDER BY t.tokid", (parser_oid, oid),
                    ).fetchall()]
        objects.append(_with_comment(conn, {
            "kind": "text search configuration", "name": name,
            "ddl": f"CREATE TEXT SEARCH CONFIGURATION {config} (PARSER = {parser})", "statements": mappings,
        }, oid, "pg_ts_config"))
    return objects


# (in a query run without parameters: its % signs go to the server as they are)
_OPERATOR_NAME = ("CASE WHEN {o}.oprnamespace = quote_ident(current_schema())::regnamespace THEN {o}.oprname"
                  " ELSE format('OPERATOR(%s.%s)', quote_ident({n}.nspname), {o}.oprname) END")


def operators(conn: "psycopg.Connection") -> list[dict[str, Any]]:
    """The schema's own operators, as CREATE OPERATOR (a view, an index or an exclusion
    constraint may use one). Names of the schema backed up stay bare, like the functions
    and the operator itself: the restore creates them side by side in its private schema."""
    objects = []
    for oid, name, left, right, function, commutator, negator, restrict, join, merges, hashes in conn.execute(
        "SELECT o.oid, o.oprname, CASE WHEN o.oprleft <> 0 THEN format_type(o.oprleft, NULL) END,"
        " format_type(o.oprright, NULL), o.oprcode::text,"
        f" (SELECT {_OPERATOR_NAME.format(o='c', n='cn')} FROM pg_operator c"
        "  JOIN pg_namespace cn ON cn.oid = c.oprnamespace WHERE c.oid = o.oprcom),"
        f" (SELECT {_OPERATOR_NAME.format(o='g', n='gn')} FROM pg_operator g"
        "  JOIN pg_namespace gn ON gn.oid = g.oprnamespace WHERE g.oid = o.oprnegate),"
        " CASE WHEN o.oprrest <> 0 THEN o.oprrest::text END, CASE WHEN o.oprjoin <> 0 THEN o.oprjoin::text END,"
        " o.oprcanmerge, o.oprcanhash FROM pg_operator o"
        " WHERE o.oprnamespace = quote_ident(current_schema())::regnamespace AND o.oprcode <> 0"
        f" AND {_NOT_AN_EXTENSION_MEMBER.format(catalog='pg_operator', oid='o.oid')} ORDER BY o.oid"
    ).fetchall():
        options = [f"FUNCTION = {function}"] + [f"LEFTARG = {left}"] * (left is not None) + [f"RIGHTARG = {right}"]
        options += [f"{option} = {value}" for option, value in (
            ("COMMUTATOR", commutator), ("NEGATOR", negator), ("RESTRICT", restrict), ("JOIN", join))
            if value is not None]
        options += ["MERGES"] * merges + ["HASHES"] * hashes
        arguments = f"{left or 'NONE'}, {right}"
        objects.append(_with_comment(conn, {
            "kind": "operator", "name": f"{name}({arguments})", "operator": name, "arguments": arguments,
            "ddl": f"CREATE OPERATOR {name} ({', '.join(options)})"}, oid, "pg_operator"))
    return objects


def publications(conn: "psycopg.Connection") -> list[dict[str, Any]]:
    """The database's publications, for their subscribers (pg_dump keeps them), limited to
    what a restore gives back: the tables of the schema backed up, each with its column
    list and row filter (PostgreSQL 15+), ``TABLES IN SCHEMA`` of that schema, or ``FOR ALL
    TABLES``; with their publish options. ``tables`` lists the tables named, for a restore
    of some tables; ``elsewhere`` those of other schemas, not backed up."""
    modern = conn.execute("SELECT current_setting('server_version_num')::int >= 150000").fetchone()[0]
    objects = []
    for oid, name, everything, insert, update, delete, truncate, via_root in conn.execute(
        "SELECT oid, pubname, puballtables, pubinsert, pubupdate, pubdelete, pubtruncate, pubviaroot"
        " FROM pg_publication ORDER BY oid"
    ).fetchall():
        actions = [a for a, on in (("insert", insert), ("update", update), ("delete", delete),
                                   ("truncate", truncate)) if on]
        options = f" WITH (publish = '{', '.join(actions)}', publish_via_partition_root = {str(via_root).lower()})"
        entry: dict[str, Any] = {"kind": "publication", "name": name, "tables": []}
        targets = []
        if not everything:
            extra = ("pg_get_expr(r.prqual, r.prrelid), ARRAY(SELECT attname FROM pg_attribute"
                     " WHERE attrelid = r.prrelid AND attnum = ANY(r.prattrs) ORDER BY attnum)") if modern \
                else "NULL, NULL"
            for table, home, where, columns in conn.execute(
                f"SELECT c.relname, c.relnamespace = quote_ident(current_schema())::regnamespace, {extra}"
                " FROM pg_publication_rel r JOIN pg_class c ON c.oid = r.prrelid WHERE r.prpubid = %s"
                " ORDER BY c.relname", (oid,),
            ).fetchall():
                if not home:
                    entry.setdefault("elsewhere", []).append(table)
                    continue
                entry["tables"].append(table)
                listed = f" ({', '.join(map(quote_ident, columns))})" if columns else ""
                targets.append(f"TABLE {quote_ident(table)}{listed}" + (f" WHERE ({where})" if where else ""))
            if modern and conn.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_publication_namespace WHERE pnpubid = %s"
                " AND pnnspid = quote_ident(current_schema())::regnamespace)", (oid,)).fetchone()[0]:
                targets.append(f"TABLES IN SCHEMA {quote_ident(conn.execute('SELECT current_schema()').fetchone()[0])}")
        if not modern and targets:  # before 15: FOR TABLE a, b (and no lists or filters)
            targets = [f"TABLE {', '.join(quote_ident(t) for t in entry['tables'])}"]
        what = " FOR ALL TABLES" if everything else (f" FOR {', '.join(targets)}" if targets else "")
        entry["ddl"] = f"CREATE PUBLICATION {quote_ident(name)}{what}{options}"
        objects.append(_with_comment(conn, entry, oid, "pg_publication"))
    return objects


def event_triggers(conn: "psycopg.Connection") -> list[dict[str, Any]]:
    """The database's event triggers whose function is of the schema backed up (the others
    cannot come back: the full backup names them), with their WHEN TAG list and their
    firing state (``ALTER EVENT TRIGGER ... ENABLE REPLICA``, say)."""
    objects = []
    for oid, name, event, function, tags, enabled in conn.execute(
        "SELECT e.oid, e.evtname, e.evtevent, quote_ident(p.proname), e.evttags, e.evtenabled"
        " FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid"
        " WHERE p.pronamespace = quote_ident(current_schema())::regnamespace ORDER BY e.oid"
    ).fetchall():
        when = " WHEN TAG IN (" + ", ".join("'" + tag.replace("'", "''") + "'" for tag in tags) + ")" if tags else ""
        statements = [f"CREATE EVENT TRIGGER {quote_ident(name)} ON {event}{when} EXECUTE FUNCTION {function}()"]
        state = {"D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}.get(enabled)
        if state:
            statements.append(f"ALTER EVENT TRIGGER {quote_ident(name)} {state}")
        objects.append(_with_comment(conn, {"kind": "event trigger", "name": name, "ddl": statements[0],
                                            "statements": statements[1:]}, oid, "pg_event_trigger"))
    return objects


def casts(conn: "psycopg.Connection") -> list[dict[str, Any]]:
    """The casts from or to a type of the schema backed up (pg_dump's rule), as CREATE CAST:
    they have no schema, and come back with the types and functions they name."""
    objects = []
    for oid, source, target, function, method, context in conn.execute(
        "SELECT c.oid, format_type(c.castsource, NULL), format_type(c.casttarget, NULL),"
        " CASE WHEN c.castfunc <> 0 THEN c.castfunc::regprocedure::text END, c.castmethod, c.castcontext"
        f" FROM pg_cast c WHERE c.oid >= {FIRST_USER_OID} AND EXISTS (SELECT 1 FROM pg_type t WHERE t.oid IN"
        "  (c.castsource, c.casttarget) AND t.typnamespace = quote_ident(current_schema())::regnamespace)"
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_cast'::regclass AND d.objid = c.oid"
        "  AND d.deptype IN ('e', 'i')) ORDER BY c.oid"  # (a range type's cast to its multirange is its own)
    ).fetchall():
        how = {"f": f"WITH FUNCTION {function}", "i": "WITH INOUT", "b": "WITHOUT FUNCTION"}[method]
        when = {"a": " AS ASSIGNMENT", "i": " AS IMPLICIT"}.get(context, "")
        objects.append(_with_comment(conn, {"kind": "cast", "name": f"({source} AS {target})",
                                            "ddl": f"CREATE CAST ({source} AS {target}) {how}{when}"}, oid, "pg_cast"))
    return objects


_AGGREGATE = (
    "SELECT coalesce(nullif(pg_get_function_arguments(a.aggfnoid), ''), '*'), a.aggkind,"
    " a.aggtransfn::text, format_type(a.aggtranstype, NULL), a.aggtransspace,"
    " CASE WHEN a.aggfinalfn <> 0 THEN a.aggfinalfn::text END, a.aggfinalextra, a.aggfinalmodify,"
    " CASE WHEN a.aggcombinefn <> 0 THEN a.aggcombinefn::text END,"
    " CASE WHEN a.aggserialfn <> 0 THEN a.aggserialfn::text END,"
    " CASE WHEN a.aggdeserialfn <> 0 THEN a.aggdeserialfn::text END, quote_literal(a.agginitval),"
    " CASE WHEN a.aggmtransfn <> 0 THEN a.aggmtransfn::text END,"
    " CASE WHEN a.aggminvtransfn <> 0 THEN a.aggminvtransfn::text END,"
    " CASE WHEN a.aggmtranstype <> 0 THEN format_type(a.aggmtranstype, NULL) END, a.aggmtransspace,"
    " CASE WHEN a.aggmfinalfn <> 0 THEN a.aggmfinalfn::text END, a.aggmfinalextra, a.aggmfinalmodify,"
    " quote_literal(a.aggminitval),"
    " (SELECT format('OPERATOR(%%s.%%s)', quote_ident(n.nspname), o.oprname) FROM pg_operator o"
    "  JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE o.oid = a.aggsortop), p.proparallel"
    " FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid WHERE a.aggfnoid = %s"
)
_MODIFY = {"r": "READ_ONLY", "s": "SHAREABLE", "w": "READ_WRITE"}
_PARALLEL = {"s": "SAFE", "r": "RESTRICTED", "u": "UNSAFE"}


def aggregate_definition(conn: "psycopg.Connection", oid: int, name: str) -> str:
    """CREATE AGGREGATE for an aggregate of the schema backed up, from pg_aggregate (the
    server prints no definition of one; a view that calls one cannot be restored without it),
    unqualified like the functions it names: the restore creates it beside them."""
    (arguments, kind, sfunc, stype, sspace, ffunc, fextra, fmodify, combine, serial, deserial, init,
     msfunc, minvfunc, mstype, msspace, mffunc, mfextra, mfmodify, minit, sortop, parallel,
     ) = conn.execute(_AGGREGATE, (oid,)).fetchone()
    options = [f"SFUNC = {sfunc}", f"STYPE = {stype}"] + [f"SSPACE = {sspace}"] * bool(sspace)
    if ffunc:
        options += [f"FINALFUNC = {ffunc}"] + ["FINALFUNC_EXTRA"] * fextra + [f"FINALFUNC_MODIFY = {_MODIFY[fmodify]}"]
    options += [f"{option} = {value}" for option, value in (
        ("COMBINEFUNC", combine), ("SERIALFUNC", serial), ("DESERIALFUNC", deserial), ("INITCOND", init),
        ("MSFUNC", msfunc), ("MINVFUNC", minvfunc), ("MSTYPE", mstype)) if value is not None]
    options += [f"MSSPACE = {msspace}"] * bool(msspace)
    if mffunc:
        options += [f"MFINALFUNC = {mffunc}"] + ["MFINALFUNC_EXTRA"] * mfextra + [
            f"MFINALFUNC_MODIFY = {_MODIFY[mfmodify]}"]
    options += [f"MINITCOND = {minit}"] * (minit is not None) + [f"SORTOP = {sortop}"] * (sortop is not None)
    options += ["HYPOTHETICAL"] * (kind == "h") + [f"PARALLEL = {_PARALLEL[parallel]}"]
    return f"CREATE AGGREGATE {quote_ident(name)}({arguments}) (\n    " + ",\n    ".join(options) + "\n)"


def partitioned_table(conn: "psycopg.Connection", oid: int, name: str) -> dict[str, Any]:
    """A partitioned table, which holds no rows: its partitions are backed up as tables
    (``PostgresDatabase.user_tables``) and it is rebuilt over them as pg_dump does it: the
    ``ddl`` creates it with its columns and CHECKs, ``attach`` then attaches each partition
    with its bound, adds the table's keys and indexes ``ON ONLY`` it and attaches the
    partitions' own (restored with them) to those, and adds its foreign keys;
    ``partitions`` names them."""
    table = quote_ident(name)
    columns = [
        f"{quote_ident(column)} {declared}"
        + (f" GENERATED ALWAYS AS ({default}) STORED" if generated else
           f" DEFAULT {default}" if default is not None else "")
        + (" NOT NULL" if notnull else "")
        for column, declared, notnull, default, generated in conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid),"
            " a.attgenerated <> ''"
            " FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (oid,),
        ).fetchall()
    ]
    constraints = conn.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid), conindid FROM pg_constraint"
        " WHERE conrelid = %s AND contype IN ('p', 'u', 'x', 'c', 'f') ORDER BY conname", (oid,),
    ).fetchall()
    columns += [f"CONSTRAINT {quote_ident(c)} {definition}" for c, kind, definition, _ in constraints if kind == "c"]
    key = conn.execute("SELECT pg_get_partkeydef(%s)", (oid,)).fetchone()[0]
    ddl = f"CREATE TABLE {table} (\n    " + ",\n    ".join(columns) + f"\n) PARTITION BY {key}"
    bounds = conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s ORDER BY c.relname", (oid,),
    ).fetchall()
    attach = [f"ALTER TABLE ONLY {table} ATTACH PARTITION {quote_ident(child)} {bound}" for child, bound in bounds]
    backing = set()
    for constraint, kind, definition, index in constraints:
        if kind in ("p", "u", "x"):
            attach.append(f"ALTER TABLE ONLY {table} ADD CONSTRAINT {quote_ident(constraint)} {definition}")
            attach += _attach_indexes(conn, index)
            backing.add(index)
    for index, definition in conn.execute(
        "SELECT indexrelid, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s ORDER BY indexrelid",
        (oid,),
    ).fetchall():
        if index not in backing:
            attach.append(definition)
            attach += _attach_indexes(conn, index)
    attach += [f"ALTER TABLE {table} ADD CONSTRAINT {quote_ident(c)} {definition}"
               for c, kind, definition, _ in constraints if kind == "f"]
    return {"kind": "partitioned table", "name": name, "ddl": ddl, "attach": attach,
            "partitions": [child for child, _ in bounds]}


def partitioned_names(objects: Iterable[dict[str, Any]]) -> set[str]:
    """The partitioned tables among a database's recorded ``objects``: no rows of their own,
    rebuilt over their partitions (a key into one waits for it; SQLite has none)."""
    return {o["name"] for o in objects if o.get("kind") == "partitioned table"}


def _attach_indexes(conn: "psycopg.Connection", index: int) -> list[str]:
    """``ALTER INDEX parent ATTACH PARTITION child`` for each partition's index of ``index``."""
    return [f"ALTER INDEX {quote_ident(parent)} ATTACH PARTITION {quote_ident(child)}"
            for parent, child in conn.execute(
                "SELECT p.relname, c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhparent = %s ORDER BY c.relname", (index,),
            ).fetchall()]


def _with_comment(conn: "psycopg.Connection", entry: dict[str, Any], oid: int, catalog: str) -> dict[str, Any]:
    comment = conn.execute("SELECT obj_description(%s, %s)", (oid, catalog)).fetchone()[0]
    if comment is not None:
        entry["comment"] = comment
    return entry


# the table a foreign key's definition references: REFERENCES [schema.]table(columns)
_REFERENCES = re.compile(r'\bREFERENCES ((?:"(?:[^"]|"")+"|[^\s."(]+)\.)?("(?:[^"]|"")+"|[^\s."(]+)')


def referenced_table(definition: str) -> str | None:
    match = _REFERENCES.search(definition)
    if match is None:
        return None
    return _unquoted(match.group(2))


def referenced_schema(definition: str) -> str | None:
    """The schema a foreign key's definition names for its parent (None: none named, the
    parent is in the schema backed up, which the definition was printed relative to): a
    parent of another schema is not in the backup."""
    match = _REFERENCES.search(definition)
    if match is None or match.group(1) is None:
        return None
    return _unquoted(match.group(1)[:-1])


def home_schema(objects: Iterable[dict[str, Any]]) -> str:
    """The schema a database's recorded ``objects`` were backed up from, where a restore
    puts its tables: ``public`` unless a ``schema`` object names another."""
    return next((o["name"] for o in objects if o.get("kind") == "schema"), "public")


def _unquoted(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name
