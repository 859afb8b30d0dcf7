"""Owners and privileges: who owns each object of the schema backed up (``public``, or
the one ``[database] schema`` names) and who may do what with it.

An application often runs as a role of its own that owns its tables (its migrations made
them) or was granted its rights; a reporting role may read some tables only. A restore
made by another role (the administrator's) without them gives back tables the
application may not write to ("permission denied for table trades"). pg_dump keeps them
(``ALTER ... OWNER TO``, ``REVOKE``/``GRANT``); so does tradevault, as the same statements,
recorded with the database's other objects (kind ``privileges``, one entry per object,
``table`` naming the table it belongs to, for partial restores) and run by the restore
once the objects exist.

Covered: the schema itself (``GRANT CREATE ON SCHEMA public TO app``: an
application whose migrations create tables needs it), tables (column privileges
included), sequences, views, materialized views, functions (procedures and aggregates
too), types, text search dictionaries and configurations, operators and publications (an
owner only), extended statistics (their owner: changing a table's does not change theirs),
and default privileges (``ALTER DEFAULT PRIVILEGES``, which tables the application creates
later follow). Not kept: the grantor of a privilege (the restoring role grants in the owner's
name), and anything of other schemas (not backed up).

``statements`` builds the statements from catalog rows and is pure: an ACL as
``aclexplode`` lists it, turned into pg_dump's sequence (revoke the defaults, then grant
what the ACL holds). An object whose ACL is NULL has its type's default privileges: only
its owner is set.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable

from trade_stream.schema import quote_ident

if TYPE_CHECKING:
    import psycopg

OWN_PREFIX = "_tradevault_"

# (privilege name in aclexplode, in the statements)
_ORDER = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "USAGE", "CREATE",
          "EXECUTE", "CONNECT", "TEMPORARY"]


def role_sql(role: str) -> str:
    return "PUBLIC" if role == "" else quote_ident(role)


def acl_statements(target: str, owner: str, acl: list[tuple[str, str, bool]] | None,
                   columns: dict[str, list[tuple[str, str, bool]]] | None = None) -> list[str]:
    """The REVOKEs and GRANTs that turn the default privileges of ``target`` (e.g. ``TABLE
    "trades"``) into ``acl``: (grantee, or "" for PUBLIC; privilege; grantable) rows as
    ``aclexplode`` gives them; None: the defaults, nothing to do. ``columns``: column
    privileges by column name. Pure."""
    out: list[str] = []
    if acl is not None:
        out += [f"REVOKE ALL ON {target} FROM PUBLIC", f"REVOKE ALL ON {target} FROM {role_sql(owner)}"]
        out += _grants(target, acl, None)
    for column, rows in sorted((columns or {}).items()):
        out += _grants(target, rows, column)
    return out


def _grants(target: str, acl: Iterable[tuple[str, str, bool]], column: str | None) -> list[str]:
    by_grantee: dict[tuple[str, bool], list[str]] = {}
    for grantee, privilege, grantable in acl:
        by_grantee.setdefault((grantee, grantable), []).append(privilege)
    out = []
    for (grantee, grantable), privileges in sorted(by_grantee.items()):
        ordered = sorted(set(privileges), key=lambda p: _ORDER.index(p) if p in _ORDER else len(_ORDER))
        listed = ", ".join(f"{p} ({quote_ident(column)})" if column else p for p in ordered)
        out.append(f"GRANT {listed} ON {target} TO {role_sql(grantee)}" + (" WITH GRANT OPTION" if grantable else ""))
    return out


def _acl_sql(acl: str) -> str:
    """SQL giving an ACL as a JSON list of [grantee ("" for PUBLIC), privilege, grantable],
    NULL for NULL (the defaults): read in the query that reads the object."""
    return (f"CASE WHEN {acl} IS NULL THEN NULL ELSE (SELECT coalesce(json_agg(json_build_array("
            f"CASE WHEN a.grantee = 0 THEN '' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type,"
            f" a.is_grantable)), '[]'::json) FROM aclexplode({acl}) a) END")


def _rows(acl: str | list[list[Any]] | None) -> list[tuple[str, str, bool]] | None:
    """``_acl_sql``'s value (JSON: tradevault's connections load json as its text)."""
    if isinstance(acl, str):
        acl = json.loads(acl)
    return None if acl is None else [(grantee, privilege, grantable) for grantee, privilege, grantable in acl]


def _columns(columns: str | dict[str, Any] | None) -> dict[str, Any]:
    return json.loads(columns) if isinstance(columns, str) else columns or {}


_RELATION_KINDS = {"r": "TABLE", "p": "TABLE", "S": "SEQUENCE", "v": "TABLE", "m": "TABLE"}


def privileges(conn: "psycopg.Connection") -> list[dict[str, Any]]:
    """One ``privileges`` entry per object of the schema backed up (the connection's
    current one) whose owner or ACL there is to give back, in the order the restore runs
    them."""
    out = []
    home, owner, acl = conn.execute(f"SELECT nspname, pg_get_userbyid(nspowner), {_acl_sql('nspacl')}"
                                    " FROM pg_namespace WHERE nspname = current_schema()").fetchone()
    schema = schema_sql(home)
    out.append(_entry(f"schema {home}", None, None, [f"ALTER SCHEMA {schema} OWNER TO {role_sql(owner)}"]
                      + acl_statements(f"SCHEMA {schema}", owner, _rows(acl))))
    for name, relkind, owner, acl, columns, owned_by in conn.execute(
        f"SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner), {_acl_sql('c.relacl')},"
        f" (SELECT json_object_agg(t.attname, {_acl_sql('t.attacl')}) FROM pg_attribute t WHERE t.attrelid = c.oid"
        "   AND t.attnum > 0 AND NOT t.attisdropped AND t.attacl IS NOT NULL),"
        " (SELECT t.relname FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid"
        "   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass"
        "   AND d.deptype IN ('a', 'i') LIMIT 1)"
        " FROM pg_class c WHERE c.relnamespace = quote_ident(current_schema())::regnamespace"
        " AND c.relkind IN ('r', 'p', 'S', 'v', 'm')"
        " AND c.relpersistence = 'p' ORDER BY c.oid"
    ).fetchall():
        if name.startswith(OWN_PREFIX) or (owned_by or "").startswith(OWN_PREFIX):
            continue
        target = f"{_RELATION_KINDS[relkind]} {quote_ident(name)}"
        # a sequence a column owns follows its table's owner (ALTER TABLE moves it along)
        statements = [] if relkind == "S" and owned_by else [f"ALTER {_alter_kind(relkind)} {quote_ident(name)} "
                                                             f"OWNER TO {role_sql(owner)}"]
        statements += acl_statements(target, owner, _rows(acl),
                                     {column: _rows(rows) or [] for column, rows in _columns(columns).items()})
        table = owned_by if relkind == "S" and owned_by else (name if relkind in ("r", "p") else None)
        out.append(_entry(f"{_alter_kind(relkind).lower()} {name}", table, ("to_regclass", quote_ident(name)),
                          statements))
    for signature, owner, acl in conn.execute(
        f"SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner), {_acl_sql('p.proacl')} FROM pg_proc p"
        " WHERE p.pronamespace = quote_ident(current_schema())::regnamespace AND p.prokind IN ('f', 'p', 'a')"
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid"
        "   AND d.deptype IN ('e', 'i')) ORDER BY p.oid"
    ).fetchall():
        target = f"ROUTINE {signature}"  # FUNCTION refuses a procedure ("is not a function")
        out.append(_entry(f"function {signature}", None, ("to_regprocedure", signature),
                          [f"ALTER {target} OWNER TO {role_sql(owner)}"] + acl_statements(target, owner, _rows(acl))))
    for name, owner, acl in conn.execute(
        f"SELECT t.typname, pg_get_userbyid(t.typowner), {_acl_sql('t.typacl')} FROM pg_type t"
        " WHERE t.typnamespace = quote_ident(current_schema())::regnamespace AND (t.typtype IN ('e', 'd', 'r', 'm')"
        "   OR t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')"
        " ORDER BY t.oid"
    ).fetchall():
        if name.startswith(OWN_PREFIX):
            continue
        target = f"TYPE {quote_ident(name)}"
        out.append(_entry(f"type {name}", None, ("to_regtype", quote_ident(name)),
                          [f"ALTER {target} OWNER TO {role_sql(owner)}"] + acl_statements(target, owner, _rows(acl))))
    for name, owner in conn.execute("SELECT pubname, pg_get_userbyid(pubowner) FROM pg_publication ORDER BY 1"):
        out.append(_entry(f"publication {name}", None, ("publication", name),  # (a restore may leave one out)
                          [f"ALTER PUBLICATION {quote_ident(name)} OWNER TO {role_sql(owner)}"]))
    for kind, name, owner in conn.execute(  # text search objects and operators: an owner, no ACL
        "SELECT 'TEXT SEARCH DICTIONARY', quote_ident(dictname), pg_get_userbyid(dictowner) FROM pg_ts_dict"
        " WHERE dictnamespace = quote_ident(current_schema())::regnamespace"
        " UNION ALL SELECT 'TEXT SEARCH CONFIGURATION', quote_ident(cfgname), pg_get_userbyid(cfgowner)"
        " FROM pg_ts_config WHERE cfgnamespace = quote_ident(current_schema())::regnamespace"
        " UNION ALL SELECT 'OPERATOR', format('%s(%s, %s)', oprname, CASE WHEN oprleft = 0 THEN 'NONE'"
        "  ELSE format_type(oprleft, NULL) END, format_type(oprright, NULL)), pg_get_userbyid(oprowner)"
        " FROM pg_operator WHERE oprnamespace = quote_ident(current_schema())::regnamespace AND oprcode <> 0"
        " ORDER BY 1, 2"
    ).fetchall():
        out.append(_entry(f"{kind.lower()} {name}", None, None, [f"ALTER {kind} {name} OWNER TO {role_sql(owner)}"]))
    for name, owner, table in conn.execute(  # extended statistics: an owner, no ACL
        "SELECT s.stxname, pg_get_userbyid(s.stxowner), c.relname FROM pg_statistic_ext s"
        " JOIN pg_class c ON c.oid = s.stxrelid WHERE s.stxnamespace = quote_ident(current_schema())::regnamespace"
        " ORDER BY s.oid"
    ).fetchall():
        out.append(_entry(f"statistics {name}", table, None,
                          [f"ALTER STATISTICS {quote_ident(name)} OWNER TO {role_sql(owner)}"]))
    for role, kind, acl, in_home in conn.execute(
        f"SELECT pg_get_userbyid(defaclrole), defaclobjtype, {_acl_sql('defaclacl')}, defaclnamespace <> 0"
        " FROM pg_default_acl WHERE defaclnamespace IN (0, quote_ident(current_schema())::regnamespace) ORDER BY oid"
    ).fetchall():
        out.append(_entry(f"default privileges of {role}", None, None,
                          default_privileges(role, kind, _rows(acl) or [], schema if in_home else None)))
    return [entry for entry in out if entry["statements"]]


_DEFAULT_KINDS = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"}


def schema_sql(name: str) -> str:
    """A schema's name in the statements: ``public`` as descriptions have always had it."""
    return name if name == "public" else quote_ident(name)


def default_privileges(role: str, kind: str, acl: list[tuple[str, str, bool]], in_schema: str | None) -> list[str]:
    """``ALTER DEFAULT PRIVILEGES`` giving ``acl`` on the objects of ``kind`` the role
    creates (in schema ``in_schema``, as SQL, or anywhere: None). The defaults it replaces
    are revoked first, as pg_dump does. Pure."""
    prefix = f"ALTER DEFAULT PRIVILEGES FOR ROLE {role_sql(role)}" + (f" IN SCHEMA {in_schema}" if in_schema else "")
    objects = _DEFAULT_KINDS.get(kind)
    if objects is None:
        return []
    out = [] if in_schema else [f"{prefix} REVOKE ALL ON {objects} FROM PUBLIC",
                                f"{prefix} REVOKE ALL ON {objects} FROM {role_sql(role)}"]
    for grant in _grants(objects, acl, None):
        out.append(f"{prefix} {grant}")
    return out


def _alter_kind(relkind: str) -> str:
    return {"r": "TABLE", "p": "TABLE", "S": "SEQUENCE", "v": "VIEW", "m": "MATERIALIZED VIEW"}[relkind]


def _entry(name: str, table: str | None, lookup: tuple[str, str] | None, statements: list[str]) -> dict[str, Any]:
    """``lookup``: how the restore finds out whether the object exists (a ``to_regclass``,
    ``to_regprocedure`` or ``to_regtype`` of the name): one it did not create is noted
    elsewhere already, and its statements are not run."""
    entry: dict[str, Any] = {"kind": "privileges", "name": name, "table": table, "ddl": ";\n".join(statements),
                             "statements": statements}
    if lookup is not None:
        entry["lookup"] = list(lookup)
    return entry
