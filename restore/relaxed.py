"""Tables whose NOT NULL or CHECK constraints change within a restore's plan are replayed
without them, and get them after the replay.

The stream carries no DDL: an incremental in which the application relaxed a constraint
(``ALTER COLUMN ... DROP NOT NULL``, a CHECK replaced by a looser one) holds changes that
the new constraint allows and the old description forbids, applied before the table's
resynchronisation at the incremental's end. Replayed into the table as the old description
created it, they made every restore past the migration fail ("violates not-null
constraint"). So such a table is created without them (``relaxed``), and
``restore.postgres.apply.constrain`` adds the ones of the description the replay ends with. A restore point inside that
incremental (before its resynchronisation) may hold rows that the previous description's
constraints refuse: those constraints are then noted, a CHECK added ``NOT VALID``, not a
divergence. Tables whose constraints never change keep them inline, checked as rows
arrive (as pg_restore does). A domain whose definition changes (``changing_domains``) is
created without its NOT NULL and CHECKs the same way (``split_domain``), and gets its
latest ones after the replay.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

import msgspec

from trade_stream.postgres.database import post_load
from trade_stream.schema import TableSchema

NOT_NULL_AFTER = "not_null_after"
CHECKS_AFTER = "checks_after"


def _constraints(table: TableSchema) -> tuple[Any, ...]:
    checks = sorted((c["name"], c["def"]) for c in post_load(table).get("checks", []))
    return tuple((c.name, c.nullable) for c in table.columns), tuple(checks)


def changing_constraints(sources: Iterable[Iterable[TableSchema]]) -> set[str]:
    """The tables whose NOT NULL or CHECK constraints differ between two descriptions
    (the full backup's, and each incremental's end)."""
    seen: dict[str, set[tuple[Any, ...]]] = {}
    for tables in sources:
        for table in tables:
            seen.setdefault(table.name, set()).add(_constraints(table))
    return {name for name, shapes in seen.items() if len(shapes) > 1}


def final_constraints(sources: Iterable[Iterable[TableSchema]]) -> dict[str, tuple[Any, ...]]:
    """Each table's NOT NULL and CHECKs as the last description of the plan (``sources``:
    the full backup's tables, then each incremental's end) has them."""
    return {table.name: _constraints(table) for tables in sources for table in tables}


def relaxed_until_final(table: TableSchema, relax: set[str], finals: dict[str, tuple[Any, ...]]) -> TableSchema:
    """A table recreated by a SCHEMA event into a target that cannot add NOT NULL afterwards
    (SQLite): ``relaxed`` when its constraints change within the plan (``relax``) and this
    description's are not the last ones (``finals``): the events that follow it were made
    under later descriptions, which may let NULLs in (a column dropped, a NOT NULL
    dropped)."""
    if table.name in relax and _constraints(table) != finals.get(table.name):
        return relaxed(table)
    return table


def relaxed(table: TableSchema) -> TableSchema:
    """``table`` without NOT NULL (its key's columns aside) and valid CHECKs, which its
    description keeps to add after the replay."""
    extra = post_load(table)
    checks = extra.get("checks", [])
    extra["checks"] = [c for c in checks if c["def"].endswith("NOT VALID")]
    extra[CHECKS_AFTER] = [c for c in checks if not c["def"].endswith("NOT VALID")]
    extra[NOT_NULL_AFTER] = [c.name for c in table.columns if not c.nullable and c.name not in table.primary_key]
    columns = [c if c.nullable or c.name in table.primary_key else msgspec.structs.replace(c, nullable=True)
               for c in table.columns]
    return msgspec.structs.replace(table, columns=columns, ddl=json.dumps(extra, sort_keys=True))


def changing_domains(sources: Iterable[Iterable[TableSchema]]) -> dict[str, str]:
    """The domains whose definition differs between the descriptions (a CHECK replaced, NOT
    NULL dropped: the same window as a table's), with their latest definition."""
    seen: dict[str, set[str]] = {}
    latest: dict[str, str] = {}
    for tables in sources:
        for table in tables:
            for definition in post_load(table).get("types", []):
                if definition["kind"] == "domain":
                    seen.setdefault(definition["name"], set()).add(definition["ddl"])
                    latest[definition["name"]] = definition["ddl"]
    return {name: latest[name] for name, ddls in seen.items() if len(ddls) > 1}


def split_domain(ddl: str, *, default: bool = False) -> tuple[str, list[str]]:
    """A recorded ``CREATE DOMAIN name AS type [DEFAULT ...] [NOT NULL] [CONSTRAINT c
    CHECK (...)]...`` (trade_stream.postgres.type_definitions) without its NOT NULL and
    constraints (and its DEFAULT, with ``default``), and those as ``ALTER DOMAIN`` actions
    (``SET DEFAULT ...``, ``SET NOT NULL``, ``ADD CONSTRAINT ...``). Quote-aware: a literal
    or a quoted name may hold the words."""
    cuts, quote, i, default_at = [], "", 0, -1
    while i < len(ddl):
        ch = ddl[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ddl.startswith(" CONSTRAINT ", i):
            cuts.append(i)
        elif default_at < 0 and not cuts and ddl.startswith(" DEFAULT ", i):
            default_at = i
        i += 1
    head = ddl[:cuts[0]] if cuts else ddl
    actions = []
    if head.endswith(" NOT NULL"):
        head = head[:-len(" NOT NULL")]
        actions.append("SET NOT NULL")
    if default and default_at >= 0:
        head, actions = head[:default_at], [f"SET{head[default_at:]}", *actions]
    bounds = cuts + [len(ddl)]
    actions += ["ADD" + ddl[start:end] for start, end in zip(bounds, bounds[1:])]
    return head, actions
