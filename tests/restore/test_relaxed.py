"""The pure part of replaying tables and domains whose constraints change within a plan
(restore.relaxed): which ones change, and the recorded statements taken apart."""

from __future__ import annotations

import json

from restore.relaxed import (
    CHECKS_AFTER,
    NOT_NULL_AFTER,
    changing_constraints,
    changing_domains,
    final_constraints,
    relaxed,
    relaxed_until_final,
    split_domain,
)
from trade_stream.postgres.database import post_load
from trade_stream.schema import Column, TableSchema


def _table(nullable: bool, check: str, domain: str = "CREATE DOMAIN d AS text") -> TableSchema:
    extra = {"checks": [{"name": "ck", "def": check}], "types": [{"name": "d", "kind": "domain", "ddl": domain}]}
    return TableSchema(name="t", columns=[Column("id", "integer", "integer", False),
                                          Column("v", "numeric", "numeric", nullable)],
                       primary_key=["id"], dialect="postgresql", ddl=json.dumps(extra))


def test_only_tables_whose_not_null_or_checks_differ_are_relaxed():
    strict = _table(False, "CHECK (v > 0)")
    assert changing_constraints([[strict], [strict]]) == set()
    assert changing_constraints([[strict], [_table(True, "CHECK (v > 0)")]]) == {"t"}
    assert changing_constraints([[strict], [strict], [_table(False, "CHECK (v >= 0)")]]) == {"t"}


def test_a_relaxed_table_keeps_its_key_and_what_it_adds_afterwards():
    table = relaxed(_table(False, "CHECK (v > 0)"))
    assert [(c.name, c.nullable) for c in table.columns] == [("id", False), ("v", True)]
    extra = post_load(table)
    assert (extra["checks"], extra[CHECKS_AFTER], extra[NOT_NULL_AFTER]) == (
        [], [{"name": "ck", "def": "CHECK (v > 0)"}], ["v"])


def test_a_table_a_schema_event_recreates_stays_relaxed_until_its_last_description():
    """Into SQLite (no NOT NULL added afterwards): the events after a description were made
    under the later ones, so only the plan's last description is created strict."""
    strict, loose = _table(False, "CHECK (v > 0)"), _table(True, "CHECK (v > 0)")
    sources = [[loose], [strict], [loose]]
    relax, finals = changing_constraints(sources), final_constraints(sources)
    assert post_load(relaxed_until_final(strict, relax, finals))[NOT_NULL_AFTER] == ["v"]
    assert relaxed_until_final(loose, relax, finals) is loose
    assert relaxed_until_final(strict, set(), finals) is strict  # constraints that never change


def test_a_domain_comes_apart_outside_quotes_only():
    ddl = ("CREATE DOMAIN price AS numeric(20,8) DEFAULT 0 NOT NULL CONSTRAINT pos CHECK ((VALUE > (0)::numeric))"
           " CONSTRAINT \"a CONSTRAINT b\" CHECK ((VALUE <> 'it''s CONSTRAINT x'::numeric))")
    assert split_domain(ddl) == ("CREATE DOMAIN price AS numeric(20,8) DEFAULT 0", [
        "SET NOT NULL", "ADD CONSTRAINT pos CHECK ((VALUE > (0)::numeric))",
        "ADD CONSTRAINT \"a CONSTRAINT b\" CHECK ((VALUE <> 'it''s CONSTRAINT x'::numeric))"])
    quoted = "CREATE DOMAIN d AS text DEFAULT 'NOT NULL'"
    assert split_domain(quoted) == (quoted, [])
    assert split_domain(ddl, default=True) == ("CREATE DOMAIN price AS numeric(20,8)", [
        "SET DEFAULT 0", "SET NOT NULL", "ADD CONSTRAINT pos CHECK ((VALUE > (0)::numeric))",
        "ADD CONSTRAINT \"a CONSTRAINT b\" CHECK ((VALUE <> 'it''s CONSTRAINT x'::numeric))"])
    assert split_domain(quoted, default=True) == ("CREATE DOMAIN d AS text", ["SET DEFAULT 'NOT NULL'"])
    odd = 'CREATE DOMAIN " DEFAULT " AS text'  # the words inside a quoted name are no DEFAULT
    assert split_domain(odd, default=True) == (odd, [])


def test_changing_domains_give_their_latest_definition():
    old, new = "CREATE DOMAIN d AS text CONSTRAINT c CHECK (a)", "CREATE DOMAIN d AS text CONSTRAINT c CHECK (b)"
    assert changing_domains([[_table(False, "x", old)], [_table(False, "x", old)]]) == {}
    assert changing_domains([[_table(False, "x", old)], [_table(False, "x", new)]]) == {"d": new}
