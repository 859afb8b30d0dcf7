"""Unit tests of the cross-dialect schema mapping of a restore: declared limits SQLite does
not enforce (``restore.type_limits``), column types and values between the dialects
(``restore.type_mapping``), a PostgreSQL table as SQLite holds it
(``restore.schema_to_sqlite``), a SQLite table as PostgreSQL holds it
(``restore.schema_to_postgres``) and what a SQLite database says of its tables
(``restore.postgres.sqlite_catalog``).

Pure and fast: no database server, no network; SQLite databases live in memory.
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from typing import Any, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from restore.postgres.sqlite_catalog import generated_expressions, read_tables
from restore.schema_to_postgres import (
    SqliteForeignKey,
    SqliteIndex,
    SqliteTable,
    postgres_default,
    table_to_postgres,
    untyped_column,
)
from restore.schema_to_sqlite import (
    database_notes,
    sqlite_default,
    sqlite_index,
    strip_casts,
    table_to_sqlite,
)
from restore.type_limits import Limit, fits, judged_values_sql, limit_of, reals_fit, scan_sql
from restore.type_mapping import (
    exact_decimal,
    pg_column_to_sqlite,
    pg_value_converters,
    sqlite_table_to_pg,
    sqlite_type_to_pg,
    sqlite_value_converters,
)
from trade_stream.postgres.database import post_load
from trade_stream.schema import Column, TableSchema, family_of, sqlite_affinity
from trade_stream.sqlite.database import DatabaseService

# DatabaseService only parses its URL when built: the file is never opened or created.
_SERVICE = DatabaseService("sqlite:///never-opened.sqlite")


def describe(conn: sqlite3.Connection, table: str) -> TableSchema:
    return _SERVICE.table_schema(conn, table)


def memory_db(script: str) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(script)
    return conn


def pg_table(name: str, columns: list[Column], primary_key: list[str], **extra: Any) -> TableSchema:
    """A PostgreSQL table description as ``PostgresDatabase.table_schema`` writes it."""
    ddl = {"defaults": {}, "identity": {}, "serial": {}, "indexes": [], **extra}
    return TableSchema(name=name, columns=columns, primary_key=primary_key, dialect="postgresql",
                       ddl=json.dumps(ddl, sort_keys=True))


def sqlite_source(name: str, columns: list[Column], primary_key: list[str] | None = None) -> TableSchema:
    return TableSchema(name=name, columns=columns, primary_key=primary_key or [], dialect="sqlite")


def numeric_converter(declared: str = "numeric(38,18)"):
    table = TableSchema("t", [Column("v", declared, "numeric")], [], "postgresql")
    return sqlite_value_converters(table)[0]


# == restore.type_limits ==================================================================

def test_limit_of_reads_the_length_of_varchar_and_char() -> None:
    assert limit_of("character varying(25)") == Limit("length", 25, wider="text")
    assert limit_of("character(3)") == Limit("length", 3, wider="text")


def test_limit_of_reads_precision_and_scale_of_numeric() -> None:
    assert limit_of("numeric(18,8)") == Limit("numeric", 18, 8, wider="numeric")
    assert limit_of("numeric(10)") == Limit("numeric", 10, 0, wider="numeric")


def test_smallint_and_integer_have_a_range_that_widens_to_bigint() -> None:
    assert limit_of("smallint") == Limit("range", 1 << 15, wider="bigint")
    assert limit_of("integer") == Limit("range", 1 << 31, wider="bigint")


@pytest.mark.parametrize("pg_type", ["bigint", "text", "numeric", "double precision", "boolean",
                                     "integer[]", "character varying(5)[]", "numeric(10,2)[]",
                                     "timestamp(3) without time zone", "uuid"])
def test_types_without_a_checkable_limit_have_none(pg_type: str) -> None:
    assert limit_of(pg_type) is None


def test_a_varchar_value_longer_than_declared_breaks_the_limit() -> None:
    limit = limit_of("character varying(5)")
    assert limit is not None
    assert fits(limit, "abcde")
    assert not fits(limit, "abcdef")
    assert fits(limit, "ééééé")  # characters, not bytes
    assert fits(limit, None)


def test_trailing_spaces_past_the_length_break_the_limit_as_postgres_would_cut_them() -> None:
    limit = limit_of("character varying(3)")
    assert limit is not None
    assert not fits(limit, "abc  ")


def test_an_integer_outside_32_bits_breaks_the_integer_range() -> None:
    limit = limit_of("integer")
    assert limit is not None
    assert fits(limit, 2**31 - 1) and fits(limit, -(2**31))
    assert not fits(limit, 2**31)
    assert not fits(limit, -(2**31) - 1)
    assert not fits(limit, 2**40)


def test_a_smallint_range_ends_at_32767() -> None:
    limit = limit_of("smallint")
    assert limit is not None
    assert fits(limit, 32767) and fits(limit, -32768)
    assert not fits(limit, 32768) and not fits(limit, -32769)


@pytest.mark.parametrize("value, kept", [
    ("1.005", False),  # PostgreSQL would round it to 1.01
    ("-0.005", False),
    ("1.5", True),
    ("1.50", True),
    ("1.500", True),  # more digits, but only zeros
    ("1.000000", True),
])
def test_numeric_values_with_more_decimals_than_the_scale_break_the_limit(value: str, kept: bool) -> None:
    limit = limit_of("numeric(10,2)")
    assert limit is not None
    assert fits(limit, Decimal(value)) is kept


@pytest.mark.parametrize("value, kept", [
    ("99999999.99", True),
    ("-99999999.99", True),
    ("1E+7", True),
    ("100000000", False),
    ("1E+8", False),
    ("-100000000.00", False),
])
def test_numeric_values_with_more_integer_digits_than_precision_minus_scale_break_the_limit(
        value: str, kept: bool) -> None:
    limit = limit_of("numeric(10,2)")
    assert limit is not None
    assert fits(limit, Decimal(value)) is kept


def test_nan_fits_a_constrained_numeric_but_infinity_does_not() -> None:
    limit = limit_of("numeric(10,2)")
    assert limit is not None
    assert fits(limit, Decimal("NaN"))
    assert not fits(limit, Decimal("Infinity"))
    assert not fits(limit, Decimal("-Infinity"))


@pytest.mark.parametrize("zero", ["0", "-0", "0E-30", "0E+30"])
def test_zero_in_any_notation_fits_a_numeric(zero: str) -> None:
    limit = limit_of("numeric(3,1)")
    assert limit is not None
    assert fits(limit, Decimal(zero))


def scan_flags(rows: list[tuple[Any, Any, Any]]) -> tuple[int, int, int]:
    conn = memory_db('CREATE TABLE "t x" (s TEXT, n INTEGER, p DECIMAL_BLOB)')
    conn.executemany('INSERT INTO "t x" VALUES (?, ?, ?)', rows)
    limits = {"s": limit_of("character varying(5)"), "n": limit_of("integer"), "p": limit_of("numeric(10,2)")}
    return conn.execute(scan_sql("t x", limits)).fetchone()  # type: ignore[arg-type]


def test_scan_sql_reports_no_break_for_values_within_their_limits() -> None:
    flags = scan_flags([("abcde", 2**31 - 1, 1.5), (None, -(2**31), 12345678), ("", 0, 99999999.99)])
    assert flags == (0, 0, 2)  # the REALs left to reals_fit


def test_scan_sql_of_an_empty_table_reports_nothing() -> None:
    assert scan_flags([]) == (0, 0, 0)


@pytest.mark.parametrize("row, flags", [
    (("abcdef", 1, 1.5), (1, 0, 0)),  # too long
    (("a", 2**31, 1.5), (0, 1, 0)),  # above the range
    (("a", -(2**31) - 1, 1.5), (0, 1, 0)),  # below it
    (("a", 1, 1.005), (0, 0, 1)),  # a REAL with a third decimal
    (("a", 1, 100000000), (0, 0, 1)),  # an INTEGER with nine integer digits
    (("a", 1, 123456789.5), (0, 0, 1)),  # a REAL with nine integer digits
])
def test_scan_sql_sets_bit_one_for_the_column_whose_value_breaks_its_limit(
        row: tuple[Any, Any, Any], flags: tuple[int, int, int]) -> None:
    assert tuple(flag & 1 for flag in scan_flags([("ok", 7, 2.25), row])) == flags


def test_scan_sql_sets_bit_two_for_text_and_reals_in_a_numeric_column_which_judged_values_sql_lists() -> None:
    assert scan_flags([("a", 1, "1.234"), ("b", 2, 7), ("c", 3, "2.5")]) == (0, 0, 2)
    assert scan_flags([("a", 1, 7), ("b", 2, 1.5)]) == (0, 0, 2)
    assert scan_flags([("a", 1, 7), ("b", 2, None)]) == (0, 0, 0)  # integers are judged in SQL
    conn = memory_db('CREATE TABLE "t x" (p DECIMAL_BLOB)')
    conn.executemany('INSERT INTO "t x" VALUES (?)', [("1.234",), (1.5,), (7,), (None,), ("2.5",)])
    assert sorted(conn.execute(judged_values_sql("t x", "p")).fetchall(), key=str) == [("1.234",), ("2.5",), (1.5,)]


def test_a_real_that_sqlites_round_leaves_unchanged_still_breaks_the_scale() -> None:
    value = 18.670290520000002  # bulk_fill's stake_amount of trade 3015
    conn = memory_db("CREATE TABLE t (p NUMERIC(18,8))")
    assert conn.execute("SELECT round(?, 8) = ?", (value, value)).fetchone() == (1,)  # why SQL cannot judge it
    conn.execute("INSERT INTO t VALUES (?)", (value,))
    (table,) = read_tables(conn, [describe(conn, "t")])
    assert table.broken == {"p"}


@pytest.mark.parametrize("declared, values, kept", [
    ("numeric(18,8)", [1.5, 18.67029052, 0.1, -3.25], True),
    ("numeric(18,8)", [1.5, 18.670290520000002], False),
    ("numeric(10,0)", [5.0, -12.0], True),
    ("numeric(10,0)", [5.5], False),
    ("numeric(10,2)", [1e-05], False),  # an exponent form, judged by fits
    ("numeric(10,5)", [1e-05], True),
    ("numeric(10,2)", [float("inf")], False),
    ("numeric(10,2)", [], True),
])
def test_reals_fit_judges_each_real_as_fits_judges_its_shortest_decimal_form(
        declared: str, values: list[float], kept: bool) -> None:
    limit = limit_of(declared)
    assert limit is not None
    assert reals_fit(limit, values) is kept
    assert all(fits(limit, Decimal(repr(v))) for v in values) is kept


def test_scan_sql_quotes_table_and_column_names() -> None:
    conn = memory_db('CREATE TABLE "order" ("select" VARCHAR(2))')
    conn.execute("""INSERT INTO "order" VALUES ('abc')""")
    assert conn.execute(scan_sql("order", {"select": limit_of("character varying(2)")})).fetchone() == (1,)


@pytest.mark.parametrize("value", [1.005, 220689.0])
def test_a_real_value_with_few_decimals_does_not_break_a_numeric_with_a_wide_scale(value: float) -> None:
    limit = limit_of("numeric(36,18)")
    assert limit is not None
    assert fits(limit, numeric_converter("numeric(36,18)")(value))  # what the values path says
    conn = memory_db("CREATE TABLE t (p DECIMAL_BLOB(36,18))")
    conn.execute("INSERT INTO t VALUES (?)", (value,))
    assert conn.execute(scan_sql("t", {"p": limit})).fetchone()[0] & 1 == 0


def test_the_scan_survives_the_smallest_64_bit_integer_in_a_numeric_column() -> None:
    conn = memory_db("CREATE TABLE t (p NUMERIC(10,2))")
    conn.execute("INSERT INTO t VALUES (?)", (-(2**63),))
    assert conn.execute(scan_sql("t", {"p": limit_of("numeric(10,2)")})).fetchone()[0] & 1 == 1


# == restore.type_mapping and trade_stream.schema =========================================

@pytest.mark.parametrize("declared, family, pg", [
    ("VARCHAR(25)", "text", "character varying(25)"),
    ("NVARCHAR(10)", "text", "character varying(10)"),
    ("CHAR(3)", "text", "character(3)"),
    ("NUMERIC(18, 8)", "numeric", "numeric(18,8)"),
    ("DECIMAL(10)", "numeric", "numeric(10,0)"),
    ("DECIMAL_BLOB(38,18)", "numeric", "numeric(38,18)"),
    ("SMALLINT", "integer", "smallint"),
    ("INTEGER", "integer", "integer"),
    ("INT", "integer", "integer"),
    ("BIGINT", "integer", "bigint"),
    ("TIMESTAMP WITH TIME ZONE", "datetime", "timestamp with time zone"),
    ("TIMESTAMPTZ", "datetime", "timestamp with time zone"),
])
def test_sqlite_type_to_pg_keeps_the_declared_type_postgres_has(declared: str, family: str, pg: str) -> None:
    assert sqlite_type_to_pg(declared, family) == pg


@pytest.mark.parametrize("declared, family, pg", [
    ("UNSIGNED BIG INT", "integer", "bigint"),
    ("VARCHAR", "text", "text"),
    ("VARCHAR(0)", "text", "text"),
    ("NUMERIC", "numeric", "numeric"),
    ("REAL", "float", "double precision"),
    ("BOOLEAN", "boolean", "boolean"),
    ("DATETIME", "datetime", "timestamp without time zone"),
    ("TIME", "time", "time without time zone"),
    ("BLOB", "blob", "bytea"),
    ("", "blob", "bytea"),
    ("mood", "other", "text"),
])
def test_sqlite_types_postgres_lacks_take_their_familys_type(declared: str, family: str, pg: str) -> None:
    assert sqlite_type_to_pg(declared, family) == pg


@pytest.mark.parametrize("pg, sqlite", [("numeric(10,2)", "DECIMAL_BLOB(10,2)"),
                                        ("numeric(38,18)", "DECIMAL_BLOB(38,18)"), ("numeric", "DECIMAL_BLOB")])
def test_a_postgres_numeric_becomes_decimal_blob_with_its_typmod(pg: str, sqlite: str) -> None:
    column = pg_column_to_sqlite(Column("amount", pg, "numeric", nullable=False))
    assert column == Column("amount", sqlite, "numeric", nullable=False)
    assert sqlite_affinity(column.declared) == "BLOB"
    assert family_of(column.declared) == "numeric"


@pytest.mark.parametrize("pg", ["mood", "inet", "int4range", "point_kind", "bit varying(5)"])
def test_postgres_types_without_text_affinity_travel_as_text(pg: str) -> None:
    assert sqlite_affinity(pg) != "TEXT"
    assert pg_column_to_sqlite(Column("c", pg, "other")) == Column("c", "TEXT", "text")


def test_an_enum_label_that_looks_like_a_number_keeps_its_text_in_sqlite() -> None:
    declared = pg_column_to_sqlite(Column("c", "status_code", "other")).declared
    conn = memory_db(f"CREATE TABLE t (raw status_code, mapped {declared})")
    conn.execute("INSERT INTO t VALUES ('01', '01')")
    assert conn.execute("SELECT raw, mapped FROM t").fetchone() == (1, "01")  # the raw type would lose it


@pytest.mark.parametrize("pg, family", [
    ("bigint", "integer"), ("double precision", "float"), ("text", "text"), ("character varying(20)", "text"),
    ("citext", "other"), ("uuid", "uuid"), ("date", "date"), ("timestamp with time zone", "datetime"),
    ("bytea", "blob"),
])
def test_postgres_types_sqlite_stores_right_keep_their_declared_name(pg: str, family: str) -> None:
    assert pg_column_to_sqlite(Column("c", pg, family)) == Column("c", pg, family)


@pytest.mark.parametrize("pg, family, sqlite, sqlite_family", [
    ("timestamp without time zone", "datetime", "DATETIME", "datetime"),
    ("boolean", "boolean", "BOOLEAN", "boolean"),
    ("json", "json", "JSON_TEXT", "json"),
    ("jsonb", "json", "JSON_TEXT", "json"),
    ("integer[]", "array", "JSON_TEXT", "json"),
    ("character varying(20)[]", "array", "JSON_TEXT", "json"),
    ("interval", "interval", "INTERVAL", "interval"),
])
def test_postgres_types_sqlite_names_otherwise_take_sqlite_names(
        pg: str, family: str, sqlite: str, sqlite_family: str) -> None:
    assert pg_column_to_sqlite(Column("c", pg, family, nullable=False)) == Column("c", sqlite, sqlite_family, False)


@pytest.mark.parametrize("document", ["12345678901234567890", "1.0", "0.1000000000000000055511151231257827"])
def test_a_json_document_that_is_a_bare_number_keeps_its_digits_through_sqlite(document: str) -> None:
    source = Column("doc", "jsonb", "json")
    column = pg_column_to_sqlite(source)
    conn = memory_db(f"CREATE TABLE t (doc {column.declared})")
    stored = pg_value_converters(TableSchema("t", [source], [], "postgresql"))[0](document)
    conn.execute("INSERT INTO t VALUES (?)", (stored,))
    back = sqlite_table_to_pg(describe(conn, "t"))
    (value,) = conn.execute("SELECT doc FROM t").fetchone()
    assert sqlite_value_converters(back)[0](value) == document


@pytest.mark.parametrize("value, expected", [
    ("2", 2), ("2.0", 2), ("-0", 0), ("-9223372036854775808", -(2**63)), ("9223372036854775807", 2**63 - 1),
])
def test_exact_decimal_gives_an_integral_value_as_int(value: str, expected: int) -> None:
    out = exact_decimal(Decimal(value))
    assert type(out) is int and out == expected


@pytest.mark.parametrize("value, expected", [("0.1", 0.1), ("-0.5", -0.5), ("1E+30", 1e30), ("1.10", 1.1),
                                             ("1E+19", 1e19)])
def test_exact_decimal_gives_a_float_when_the_double_reads_back_the_same_decimal(value: str, expected: float) -> None:
    out = exact_decimal(Decimal(value))
    assert type(out) is float and out == expected


@pytest.mark.parametrize("value", ["7.000000000000000007", "123456.123456789012345678", str(2**63), str(2**70),
                                   "1E-400", "1E+400", "0.30000000000000004440892098500626"])
def test_exact_decimal_gives_any_other_value_as_its_text(value: str) -> None:
    assert exact_decimal(Decimal(value)) == str(Decimal(value))


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_exact_decimal_keeps_nan_and_infinities_as_text(value: str) -> None:
    assert exact_decimal(Decimal(value)) == value


def test_family_of_decimal_blob_is_numeric_and_its_affinity_is_blob() -> None:
    assert family_of("DECIMAL_BLOB(38,18)") == "numeric"
    assert family_of("DECIMAL_BLOB") == "numeric"
    assert sqlite_affinity("DECIMAL_BLOB(38,18)") == "BLOB"


@pytest.mark.parametrize("declared, affinity", [
    ("INT", "INTEGER"), ("BIGINT", "INTEGER"), ("UNSIGNED BIG INT", "INTEGER"),
    ("FLOATING POINT", "INTEGER"),  # SQLite's documented quirk: "INT" comes first
    ("CHARINT", "INTEGER"),
    ("VARCHAR(5)", "TEXT"), ("NCHAR(3)", "TEXT"), ("CLOB", "TEXT"), ("text", "TEXT"),
    ("BLOB", "BLOB"), ("", "BLOB"), ("DECIMAL_BLOB(10,2)", "BLOB"),
    ("REAL", "REAL"), ("DOUBLE PRECISION", "REAL"), ("FLOAT", "REAL"),
    ("NUMERIC(10,2)", "NUMERIC"), ("DECIMAL", "NUMERIC"), ("BOOLEAN", "NUMERIC"), ("DATETIME", "NUMERIC"),
    ("STRING", "NUMERIC"),
])
def test_sqlite_affinity_follows_sqlites_rules_in_order(declared: str, affinity: str) -> None:
    assert sqlite_affinity(declared) == affinity


@pytest.mark.parametrize("declared", ["INT", "FLOATING POINT", "VARCHAR(5)", "CLOB", "BLOB", "", "DECIMAL_BLOB(38,18)",
                                      "REAL", "DOUBLE", "NUMERIC(10,2)", "BOOLEAN", "JSON", "mood", "INTERVAL"])
def test_sqlite_affinity_agrees_with_how_sqlite_stores_values(declared: str) -> None:
    # '1.0' as text and 1 as an integer, stored: (typeof, typeof) per affinity
    # (INTEGER and NUMERIC differ only in CAST expressions)
    storage = {"INTEGER": ("integer", "integer"), "NUMERIC": ("integer", "integer"), "REAL": ("real", "real"),
               "TEXT": ("text", "text"), "BLOB": ("text", "integer")}
    conn = memory_db(f'CREATE TABLE t (a {declared}, b {declared})')
    conn.execute("INSERT INTO t VALUES ('1.0', 1)")
    assert conn.execute("SELECT typeof(a), typeof(b) FROM t").fetchone() == storage[sqlite_affinity(declared)]


ROUND_TRIP = ["7.000000000000000007", "123456.123456789012345678", "0.1", "2", "-0.5", "1E+30", "0",
              "-123456789012345678901234567890.123456789", "1.10", "1E-18", "9223372036854775808"]


def store_and_read_back(values: list[Decimal]) -> list[Decimal]:
    conn = memory_db("CREATE TABLE amounts (id INTEGER PRIMARY KEY, v DECIMAL_BLOB(38,18))")
    conn.executemany("INSERT INTO amounts (id, v) VALUES (?, ?)", [(i, exact_decimal(v)) for i, v in enumerate(values)])
    table = sqlite_table_to_pg(describe(conn, "amounts"))
    assert table.columns[1] == Column("v", "numeric(38,18)", "numeric")
    convert = sqlite_value_converters(table)[1]
    return [convert(v) for (v,) in conn.execute("SELECT v FROM amounts ORDER BY id")]


def test_decimals_stored_by_exact_decimal_in_a_decimal_blob_column_read_back_equal() -> None:
    values = [Decimal(v) for v in ROUND_TRIP]
    back = store_and_read_back(values)
    assert all(isinstance(b, Decimal) for b in back)
    assert back == values


def test_nan_stored_by_exact_decimal_reads_back_as_nan() -> None:
    (back,) = store_and_read_back([Decimal("NaN")])
    assert isinstance(back, Decimal) and back.is_nan()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.decimals(allow_nan=False), min_size=1, max_size=20))
def test_any_decimal_survives_a_decimal_blob_column(values: list[Decimal]) -> None:
    assert store_and_read_back(values) == values


# == restore.schema_to_sqlite =============================================================

@pytest.mark.parametrize("expression, bare", [
    ("'open'::text", "'open'"),
    ("'open'::character varying", "'open'"),
    ("(symbol)::character varying(25)", "(symbol)"),
    ("'2020-01-01 00:00:00'::timestamp without time zone", "'2020-01-01 00:00:00'"),
    ("'2020-01-01 00:00:00+00'::timestamp with time zone", "'2020-01-01 00:00:00+00'"),
    ("(price)::numeric(10,2)", "(price)"),
    ("'{}'::numeric[]", "'{}'"),
    ("'a'::\"MyEnum\"", "'a'"),
    ("'x'::public.mood", "'x'"),
    ("(1.5)::double precision", "(1.5)"),
    ("lower((symbol)::text)", "lower((symbol))"),
])
def test_strip_casts_removes_the_casts_postgres_prints(expression: str, bare: str) -> None:
    assert strip_casts(expression) == bare


@pytest.mark.parametrize("expression", ["'2020-01-01 00:00:00'::timestamp(3) without time zone",
                                        "'12:00:00+00'::time(0) with time zone"])
def test_strip_casts_removes_a_cast_to_a_time_type_with_precision(expression: str) -> None:
    assert strip_casts(expression) == expression.split("::")[0]


def test_a_double_colon_inside_a_string_literal_is_not_a_cast() -> None:
    assert strip_casts("'fe80::abcd'::inet") == "'fe80::abcd'"
    assert sqlite_default("'std::string'::text") == "'std::string'"


@pytest.mark.parametrize("expression", ["now()", "CURRENT_TIMESTAMP", "transaction_timestamp()",
                                        "statement_timestamp()", "clock_timestamp()", "LOCALTIMESTAMP"])
def test_postgres_clock_defaults_become_current_timestamp(expression: str) -> None:
    assert sqlite_default(expression) == "CURRENT_TIMESTAMP"


def test_current_date_and_time_defaults_are_kept() -> None:
    assert sqlite_default("CURRENT_DATE") == "CURRENT_DATE"
    assert sqlite_default("current_time") == "CURRENT_TIME"


def test_boolean_defaults_become_one_and_zero() -> None:
    assert sqlite_default("true") == "1"
    assert sqlite_default("false") == "0"


@pytest.mark.parametrize("expression, default", [
    ("'open'::character varying", "'open'"),
    ("'it''s'::text", "'it''s'"),
    ("0", "0"),
    ("1.5", "1.5"),
    ("1e10", "1e10"),
    ("((0)::numeric)", "0"),
    ("'-1'::integer", "'-1'"),
    ("-1", "(-1)"),  # a signed literal in parentheses: an expression SQLite accepts anywhere
    ("'{}'::jsonb", "'{}'"),
])
def test_literal_defaults_are_kept_without_their_casts(expression: str, default: str) -> None:
    assert sqlite_default(expression) == default


@pytest.mark.parametrize("expression", ["nextval('t_id_seq'::regclass)", "gen_random_uuid()",
                                        "(now() + '1 day'::interval)", "ARRAY[]::text[]", "'a' || 'b'"])
def test_defaults_sqlite_cannot_mean_give_none(expression: str) -> None:
    assert sqlite_default(expression) is None


def test_translated_defaults_fill_a_sqlite_row() -> None:
    defaults = {"a": "'open'::character varying", "b": "true", "c": "-1", "d": "((2.5)::numeric)", "e": "now()",
                "f": "'it''s'::text"}
    definitions = ", ".join(f"{name} DEFAULT {sqlite_default(expression)}" for name, expression in defaults.items())
    conn = memory_db(f"CREATE TABLE t (id INTEGER PRIMARY KEY, {definitions})")
    conn.execute("INSERT INTO t (id) VALUES (1)")
    a, b, c, d, e, f = conn.execute("SELECT a, b, c, d, e, f FROM t").fetchone()
    assert (a, b, c, d, f) == ("open", 1, -1, 2.5, "it's")
    assert len(e) == len("2024-01-01 00:00:00")


def test_sqlite_index_rewrites_a_btree_index_for_the_table() -> None:
    statement = "CREATE INDEX trades_pair_idx ON public.trades USING btree (pair)"
    assert sqlite_index(statement, "trades") == ('CREATE INDEX trades_pair_idx ON "trades" (pair)', "")


def test_sqlite_index_keeps_quoted_names_and_reads_on_only() -> None:
    statement = 'CREATE INDEX "Odd Name" ON ONLY public."Trades" USING btree ("Pair")'
    assert sqlite_index(statement, "Trades") == ('CREATE INDEX "Odd Name" ON "Trades" ("Pair")', "")


def test_sqlite_index_keeps_unique_partial_and_expression_indexes_without_casts_or_null_order() -> None:
    statement = ("CREATE UNIQUE INDEX trades_open_idx ON public.trades USING btree "
                 "(lower((symbol)::text), opened DESC NULLS LAST, pair NULLS FIRST) "
                 "WHERE ((status)::text = 'open'::text)")
    index, why = sqlite_index(statement, "trades")
    assert why == ""
    assert index == ('CREATE UNIQUE INDEX trades_open_idx ON "trades" (lower((symbol)), opened DESC, pair) '
                     "WHERE ((status) = 'open')")
    conn = memory_db("CREATE TABLE trades (symbol TEXT, opened TEXT, pair TEXT, status TEXT)")
    conn.execute(index)
    conn.execute("INSERT INTO trades VALUES ('BTC', 'x', 'p', 'open')")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO trades VALUES ('btc', 'x', 'p', 'open')")
    conn.execute("INSERT INTO trades VALUES ('btc', 'x', 'p', 'closed')")  # outside the partial index


@pytest.mark.parametrize("statement, why", [
    ("CREATE INDEX t_doc_idx ON public.t USING gin (doc)", "a gin index"),
    ("CREATE INDEX t_a_idx ON public.t USING hash (a)", "a hash index"),
    ("CREATE INDEX t_a_idx ON public.t USING btree (a) INCLUDE (b)", "INCLUDE or storage options"),
    ("CREATE INDEX t_a_idx ON public.t USING btree (a) WITH (fillfactor='70')", "INCLUDE or storage options"),
    ("ALTER TABLE t ADD COLUMN x integer", "not a plain index definition"),
])
def test_indexes_sqlite_cannot_build_give_none_and_why(statement: str, why: str) -> None:
    assert sqlite_index(statement, "t") == (None, why)


TRADE_COLUMNS = [
    Column("id", "bigint", "integer", nullable=False),
    Column("pair", "text", "text"),
    Column("qty", "numeric(18,8)", "numeric"),
    Column("status", "character varying(10)", "text"),
    Column("is_open", "boolean", "boolean"),
    Column("created_at", "timestamp with time zone", "datetime"),
    Column("opened", "timestamp without time zone", "datetime"),
    Column("kind", "mood", "other"),
    Column("tags", "text[]", "array"),
    Column("ref", "uuid", "uuid"),
]


@pytest.fixture
def pg_trades() -> TableSchema:
    return pg_table(
        "trades", TRADE_COLUMNS, ["id"],
        defaults={"status": "'open'::character varying", "created_at": "now()", "is_open": "true",
                  "ref": "gen_random_uuid()", "qty": "0.00"},
        identity={"id": "d"},
        sequences={"id": {"name": "trades_id_seq", "as": "bigint", "start": 1, "increment": 1, "min": 1,
                          "max": 2**63 - 1, "cache": 1, "cycle": False}},
        pk_name="trades_pkey",
        constraints=[{"name": "trades_pair_opened_key", "def": "UNIQUE (pair, opened)"},
                     {"name": "no_overlap", "def": "EXCLUDE USING gist (pair WITH =)"},
                     {"name": "trades_ref_key", "def": "UNIQUE NULLS NOT DISTINCT (ref)"}],
        checks=[{"name": "qty_positive", "def": "CHECK ((qty > (0)::numeric))"}],
        foreign_keys=[{"name": "trades_pair_fkey",
                       "def": "FOREIGN KEY (pair) REFERENCES pairs(symbol) ON DELETE CASCADE"}],
        indexes=["CREATE INDEX trades_open_idx ON public.trades USING btree (pair) WHERE (is_open = true)",
                 "CREATE INDEX trades_tags_idx ON public.trades USING gin (tags)"],
        triggers=["CREATE TRIGGER audit AFTER INSERT ON public.trades FOR EACH ROW EXECUTE FUNCTION audit()"],
        row_security=["enable"],
        policies=["CREATE POLICY own ON {table} FOR ALL TO PUBLIC USING ((owner = CURRENT_USER))"],
    )


def test_an_identity_integer_key_becomes_an_autoincrement_rowid_alias(pg_trades: TableSchema) -> None:
    out = table_to_sqlite(pg_trades)
    assert out.autoincrement == "id"
    assert out.sequence == "trades_id_seq"
    assert '"id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT' in out.schema.ddl
    assert "PRIMARY KEY (" not in out.schema.ddl
    assert out.schema.columns[0] == Column("id", "INTEGER", "integer", nullable=False)
    assert out.schema.primary_key == ["id"] and out.schema.dialect == "sqlite"
    assert "trades.id: bigint identity -> INTEGER PRIMARY KEY AUTOINCREMENT" in out.notes


def test_a_serial_key_names_its_sequence() -> None:
    table = pg_table("t", [Column("id", "integer", "integer", False), Column("x", "text", "text")], ["id"],
                     serial={"id": "t_id_seq"})
    out = table_to_sqlite(table)
    assert (out.autoincrement, out.sequence) == ("id", "t_id_seq")
    assert "AUTOINCREMENT" in out.schema.ddl


def test_a_key_without_a_sequence_or_of_several_columns_keeps_a_primary_key_constraint() -> None:
    plain = table_to_sqlite(pg_table("t", [Column("id", "bigint", "integer", False)], ["id"], pk_name="t_pkey"))
    assert plain.autoincrement is None
    assert plain.schema.ddl == 'CREATE TABLE "t" ("id" bigint NOT NULL, CONSTRAINT "t_pkey" PRIMARY KEY ("id"))'
    composite = table_to_sqlite(pg_table(
        "legs", [Column("a", "integer", "integer", False), Column("b", "integer", "integer", False)], ["a", "b"],
        identity={"a": "a"}, pk_name="legs_pk"))
    assert composite.autoincrement is None
    assert 'CONSTRAINT "legs_pk" PRIMARY KEY ("a", "b")' in composite.schema.ddl


def test_table_to_sqlite_maps_column_types_and_notes_each_change(pg_trades: TableSchema) -> None:
    out = table_to_sqlite(pg_trades)
    assert [(c.name, c.declared, c.family) for c in out.schema.columns] == [
        ("id", "INTEGER", "integer"), ("pair", "text", "text"), ("qty", "DECIMAL_BLOB(18,8)", "numeric"),
        ("status", "character varying(10)", "text"), ("is_open", "BOOLEAN", "boolean"),
        ("created_at", "timestamp with time zone", "datetime"), ("opened", "DATETIME", "datetime"),
        ("kind", "TEXT", "text"), ("tags", "JSON_TEXT", "json"), ("ref", "uuid", "uuid")]
    for note in ["trades.qty: numeric(18,8) -> DECIMAL_BLOB(18,8)", "trades.opened: timestamp without time zone -> "
                 "DATETIME", "trades.kind: mood -> TEXT", "trades.tags: text[] -> JSON_TEXT",
                 "trades.ref: default gen_random_uuid() not kept"]:
        assert note in out.notes
    assert not any(n.startswith("trades.status:") for n in out.notes)


def test_the_sqlite_table_keeps_defaults_keys_unique_and_foreign_keys(pg_trades: TableSchema) -> None:
    out = table_to_sqlite(pg_trades)
    conn = memory_db("PRAGMA foreign_keys = ON; CREATE TABLE pairs (symbol TEXT PRIMARY KEY)")
    conn.execute(out.schema.ddl)
    for index in out.indexes:
        conn.execute(index)
    conn.execute("INSERT INTO pairs VALUES ('BTC'), ('ETH')")
    conn.execute("INSERT INTO trades (pair, opened) VALUES ('BTC', '2024-01-01 00:00:00')")
    conn.execute("INSERT INTO trades (pair, opened) VALUES ('ETH', '2024-01-01 00:00:00')")
    rows = conn.execute("SELECT id, pair, qty, status, is_open, created_at FROM trades ORDER BY id").fetchall()
    assert [r[:5] for r in rows] == [(1, "BTC", 0.0, "open", 1), (2, "ETH", 0.0, "open", 1)]
    assert all(r[5] is not None for r in rows)
    with pytest.raises(sqlite3.IntegrityError):  # trades_pair_opened_key
        conn.execute("INSERT INTO trades (pair, opened) VALUES ('BTC', '2024-01-01 00:00:00')")
    with pytest.raises(sqlite3.IntegrityError):  # trades_pair_fkey
        conn.execute("INSERT INTO trades (pair) VALUES ('XRP')")
    conn.execute("DELETE FROM pairs WHERE symbol = 'BTC'")  # ON DELETE CASCADE
    assert conn.execute("SELECT pair FROM trades").fetchall() == [("ETH",)]
    assert {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")} >= {
        "trades_open_idx"}


def test_what_sqlite_cannot_hold_is_noted_not_kept(pg_trades: TableSchema) -> None:
    out = table_to_sqlite(pg_trades)
    assert out.indexes == ['CREATE INDEX trades_open_idx ON "trades" (pair) WHERE (is_open = true)']
    assert "no_overlap" not in out.schema.ddl and "trades_ref_key" not in out.schema.ddl
    assert "CHECK" not in out.schema.ddl
    assert "trades: constraint no_overlap (EXCLUDE USING gist (pair WITH =)) not kept" in out.notes
    assert "trades: constraint trades_ref_key (UNIQUE NULLS NOT DISTINCT (ref)) not kept" in out.notes
    assert "trades: check qty_positive not kept (PostgreSQL expression)" in out.notes
    assert ("trades: index not kept (a gin index): CREATE INDEX trades_tags_idx ON public.trades USING gin (tags)"
            in out.notes)
    assert "trades: 1 trigger(s) not kept (PostgreSQL functions)" in out.notes
    assert "trades: row security and 1 policy(ies) not kept (SQLite has none)" in out.notes
    assert out.unchecked_keys is False


def test_a_not_valid_foreign_key_is_kept_without_not_valid_and_marks_the_keys_unchecked() -> None:
    table = pg_table("t", [Column("id", "bigint", "integer", False), Column("p", "text", "text")], ["id"],
                     foreign_keys=[{"name": "t_p_fkey",
                                    "def": "FOREIGN KEY (p) REFERENCES pairs(symbol) DEFERRABLE INITIALLY "
                                           "DEFERRED NOT VALID"}])
    out = table_to_sqlite(table)
    assert out.unchecked_keys is True
    assert out.schema.ddl.endswith(
        'CONSTRAINT "t_p_fkey" FOREIGN KEY (p) REFERENCES pairs(symbol) DEFERRABLE INITIALLY DEFERRED)')
    memory_db(out.schema.ddl)  # SQLite accepts it


def test_a_sqlite_table_passes_through_table_to_sqlite_unchanged() -> None:
    table = TableSchema("t", [Column("id", "INTEGER", "integer")], ["id"], "sqlite", "CREATE TABLE t (id INTEGER)")
    out = table_to_sqlite(table)
    assert out.schema is table and out.indexes == [] and out.notes == [] and out.autoincrement is None


def test_database_notes_names_each_object_left_out() -> None:
    assert database_notes([{"kind": "function", "name": "audit", "ddl": "..."}, {"kind": "view", "name": "open"},
                           {}]) == ["function audit not kept (PostgreSQL only)", "view open not kept (PostgreSQL only)",
                                    "object ? not kept (PostgreSQL only)"]
    assert database_notes([]) == []


# == restore.schema_to_postgres ===========================================================

@pytest.mark.parametrize("expression, column, default", [
    ("CURRENT_TIMESTAMP", Column("c", "timestamp without time zone", "datetime"), "timezone('utc'::text, now())"),
    ("datetime('now')", Column("c", "timestamp without time zone", "datetime"), "timezone('utc'::text, now())"),
    ("(datetime('now'))", Column("c", "timestamp without time zone", "datetime"), "timezone('utc'::text, now())"),
    ("CURRENT_TIMESTAMP", Column("c", "timestamp with time zone", "datetime"), "CURRENT_TIMESTAMP"),
    ("CURRENT_DATE", Column("c", "date", "date"), "(timezone('utc'::text, now()))::date"),
    ("1", Column("c", "boolean", "boolean"), "true"),
    ("0", Column("c", "boolean", "boolean"), "false"),
    ("TRUE", Column("c", "boolean", "boolean"), "true"),
    ("'0'", Column("c", "boolean", "boolean"), "false"),
    ("TRUE", Column("c", "bigint", "integer"), "1"),
    ("FALSE", Column("c", "integer", "integer"), "0"),
    ("-1", Column("c", "integer", "integer"), "-1"),
    ("1.5", Column("c", "double precision", "float"), "1.5"),
    ("1e5", Column("c", "numeric(10,2)", "numeric"), "1e5"),
    ("42", Column("c", "text", "text"), "'42'"),
    ("'open'", Column("c", "character varying(10)", "text"), "'open'"),
    ("'it''s'", Column("c", "text", "text"), "'it''s'"),
    ("'2024-01-01'", Column("c", "date", "date"), "'2024-01-01'"),
])
def test_postgres_default_translates_sqlite_defaults(expression: str, column: Column, default: str) -> None:
    assert postgres_default(expression, column) == default


@pytest.mark.parametrize("expression, column", [
    ("CURRENT_TIMESTAMP", Column("c", "text", "text")),
    ("1 + 2", Column("c", "integer", "integer")),
    ("x'00'", Column("c", "bytea", "blob")),
    ("'x'", Column("c", "bytea", "blob")),
    ("2", Column("c", "boolean", "boolean")),
    ("'yes'", Column("c", "boolean", "boolean")),
    ("0", Column("c", "timestamp without time zone", "datetime")),
])
def test_postgres_default_gives_none_for_what_postgres_would_not_mean_the_same(expression: str,
                                                                                column: Column) -> None:
    assert postgres_default(expression, column) is None


def sqlite_table(columns: list[Column], primary_key: list[str] | None = None, **fields: Any) -> SqliteTable:
    return SqliteTable(schema=sqlite_source("trades", columns, primary_key), **fields)


def extra_of(out: Any) -> dict[str, Any]:
    return json.loads(out.schema.ddl)


def declared_of(out: Any) -> dict[str, str]:
    return {c.name: c.declared for c in out.schema.columns}


def test_a_broken_varchar_falls_back_to_text_with_a_note() -> None:
    out = table_to_postgres(sqlite_table([Column("symbol", "VARCHAR(5)", "text", False)], broken={"symbol"}), {})
    assert out.schema.columns == [Column("symbol", "text", "text", False)]
    assert out.notes == ["trades.symbol: VARCHAR(5) -> text: a value is longer than character varying(5) allows "
                         "(SQLite does not enforce it)"]


def test_an_unbroken_column_keeps_its_declared_limit() -> None:
    out = table_to_postgres(sqlite_table([Column("symbol", "VARCHAR(5)", "text"), Column("fee", "NUMERIC(10,2)",
                                                                                      "numeric")]), {})
    assert declared_of(out) == {"symbol": "character varying(5)", "fee": "numeric(10,2)"}
    assert "trades.symbol: VARCHAR(5) -> character varying(5)" in out.notes
    assert not any("fee" in note for note in out.notes)  # the same type, spelled alike


def test_broken_numeric_and_integer_columns_widen_to_numeric_and_bigint() -> None:
    out = table_to_postgres(sqlite_table([Column("price", "NUMERIC(10,2)", "numeric"),
                                          Column("n", "INTEGER", "integer"), Column("s", "SMALLINT", "integer")],
                                         broken={"price", "n", "s"}), {})
    assert declared_of(out) == {"price": "numeric", "n": "bigint", "s": "bigint"}
    assert ("trades.price: NUMERIC(10,2) -> numeric: a value has more digits than numeric(10,2) keeps "
            "(SQLite does not enforce it)") in out.notes
    assert "trades.n: INTEGER -> bigint: a value is out of integer's range (SQLite does not enforce it)" in out.notes


def test_broken_means_nothing_for_a_column_without_a_limit() -> None:
    out = table_to_postgres(sqlite_table([Column("note", "TEXT", "text"), Column("v", "BIGINT", "integer")],
                                         broken={"note", "v"}), {})
    assert declared_of(out) == {"note": "text", "v": "bigint"}
    assert out.notes == []


def test_a_rowid_key_becomes_a_by_default_identity_with_its_sequence() -> None:
    out = table_to_postgres(sqlite_table([Column("id", "INTEGER", "integer"), Column("x", "TEXT", "text")], ["id"],
                                         rowid_key=True), {})
    extra = extra_of(out)
    assert extra["identity"] == {"id": "d"}
    assert extra["sequences"] == {"id": {"name": "trades_id_seq", "as": "integer", "start": 1, "increment": 1,
                                         "min": 1, "max": 2**31 - 1, "cache": 1, "cycle": False}}
    assert extra["pk_name"] == "trades_pkey"
    assert out.positions == {}  # no AUTOINCREMENT: the restore sets it past the largest id
    assert "trades.id: INTEGER PRIMARY KEY -> integer identity past the largest id" in out.notes


def test_a_key_that_is_no_rowid_alias_gets_no_identity() -> None:
    out = table_to_postgres(sqlite_table([Column("code", "TEXT", "text", False)], ["code"]), {})
    extra = extra_of(out)
    assert extra["identity"] == {} and "sequences" not in extra
    assert extra["pk_name"] == "trades_pkey"


def test_an_autoincrement_counter_becomes_the_sequence_position() -> None:
    columns = [Column("id", "INTEGER", "integer")]
    out = table_to_postgres(sqlite_table(columns, ["id"], rowid_key=True, autoincrement=True, counter=41), {})
    assert out.positions == {"trades_id_seq": [41, True]}
    assert "trades.id: INTEGER PRIMARY KEY -> integer identity past sqlite_sequence" in out.notes
    unused = table_to_postgres(sqlite_table(columns, ["id"], rowid_key=True, autoincrement=True, counter=None), {})
    assert unused.positions == {}
    no_autoincrement = table_to_postgres(sqlite_table(columns, ["id"], rowid_key=True, counter=41), {})
    assert no_autoincrement.positions == {}


def test_a_rowid_key_beyond_the_integer_range_gets_a_bigint_sequence() -> None:
    out = table_to_postgres(sqlite_table([Column("id", "INTEGER", "integer")], ["id"], rowid_key=True,
                                         broken={"id"}), {})
    assert declared_of(out) == {"id": "bigint"}
    assert extra_of(out)["sequences"]["id"]["as"] == "bigint"
    assert extra_of(out)["sequences"]["id"]["max"] == 2**63 - 1


def test_an_autoincrement_counter_beyond_the_integer_range_fits_its_sequence() -> None:
    out = table_to_postgres(sqlite_table([Column("id", "INTEGER", "integer")], ["id"], rowid_key=True,
                                         autoincrement=True, counter=2**31 + 5), {})
    (position, _), = out.positions.values()
    assert position <= extra_of(out)["sequences"]["id"]["max"]


def test_named_and_unnamed_unique_constraints_become_postgres_constraints() -> None:
    out = table_to_postgres(sqlite_table([Column("a", "TEXT", "text"), Column("b", "TEXT", "text"),
                                          Column("c", "INTEGER", "integer")],
                                         unique=[("uq", ["a", "b"]), (None, ["c"])]), {})
    assert extra_of(out)["constraints"] == [{"name": "uq", "def": 'UNIQUE ("a", "b")'},
                                            {"name": "trades_c_key", "def": 'UNIQUE ("c")'}]


def test_constraint_names_are_cut_to_postgres_63_bytes() -> None:
    long = "x" * 70
    out = table_to_postgres(sqlite_table([Column(long, "INTEGER", "integer")], unique=[(None, [long])]), {})
    name = extra_of(out)["constraints"][0]["name"]
    assert len(name.encode()) == 63 and name.startswith("trades_xxx")


def test_foreign_keys_name_the_parents_key_keep_their_actions_and_are_unenforced() -> None:
    table = sqlite_table(
        [Column("pair_id", "INTEGER", "integer"), Column("sym", "TEXT", "text"), Column("venue", "TEXT", "text")],
        foreign_keys=[SqliteForeignKey(["pair_id"], "pairs", None, "NO ACTION", "CASCADE"),
                      SqliteForeignKey(["sym", "venue"], "markets", ["symbol", "venue"], "cascade", "SET NULL")])
    out = table_to_postgres(table, {"pairs": ["id"]})
    assert extra_of(out)["foreign_keys"] == [
        {"name": "trades_pair_id_fkey", "unenforced": True,
         "def": 'FOREIGN KEY ("pair_id") REFERENCES "pairs"("id") ON DELETE CASCADE'},
        {"name": "trades_sym_venue_fkey", "unenforced": True,
         "def": 'FOREIGN KEY ("sym", "venue") REFERENCES "markets"("symbol", "venue") ON UPDATE CASCADE '
                "ON DELETE SET NULL"},
    ]


def test_a_foreign_key_to_a_table_of_unknown_key_is_noted_not_kept() -> None:
    out = table_to_postgres(sqlite_table([Column("g", "INTEGER", "integer")],
                                         foreign_keys=[SqliteForeignKey(["g"], "ghost", None)]), {"pairs": ["id"]})
    assert "foreign_keys" not in extra_of(out)
    assert "trades: foreign key to ghost not kept (its key is unknown)" in out.notes


def test_tried_indexes_spell_comparisons_of_boolean_columns_as_postgres_booleans() -> None:
    table = sqlite_table(
        [Column("symbol", "TEXT", "text"), Column("is_open", "BOOLEAN", "boolean"), Column("n", "INTEGER", "integer"),
         Column("not_is_open", "INTEGER", "integer")],
        indexes=[SqliteIndex("ix_open", False, "symbol", "is_open = 1"),
                 SqliteIndex("ux_n", True, "n DESC", 'n = 1 AND "is_open" <> 0 AND not_is_open = 1 AND is_open != 10'),
                 SqliteIndex("ix_lower", False, "lower(symbol)")])
    out = table_to_postgres(table, {})
    assert extra_of(out)["tried_indexes"] == [
        'CREATE INDEX "ix_open" ON public."trades" USING btree (symbol) WHERE is_open = true',
        'CREATE UNIQUE INDEX "ux_n" ON public."trades" USING btree (n DESC) '
        'WHERE n = 1 AND "is_open" <> false AND not_is_open = 1 AND is_open != 10',
        'CREATE INDEX "ix_lower" ON public."trades" USING btree (lower(symbol))',
    ]
    assert extra_of(out)["indexes"] == []  # only tried, one by one


def test_defaults_are_translated_null_ones_dropped_and_others_noted() -> None:
    table = sqlite_table([Column("is_open", "BOOLEAN", "boolean"), Column("at", "DATETIME", "datetime"),
                          Column("raw", "BLOB", "blob"), Column("note", "TEXT", "text")],
                         defaults={"is_open": "1", "at": "CURRENT_TIMESTAMP", "raw": "x'00'", "note": "NULL"})
    out = table_to_postgres(table, {})
    assert extra_of(out)["defaults"] == {"is_open": "true", "at": "timezone('utc'::text, now())"}
    assert "trades.raw: default x'00' not kept" in out.notes
    assert not any("note" in n for n in out.notes)


def test_checks_and_triggers_are_noted_not_kept() -> None:
    out = table_to_postgres(sqlite_table([Column("x", "TEXT", "text")], checks=2, triggers=1), {})
    assert "trades: 2 CHECK constraint(s) not kept (SQLite expressions)" in out.notes
    assert "trades: 1 trigger(s) not kept (SQLite statements)" in out.notes


def test_a_column_without_a_type_is_typed_by_its_values() -> None:
    """SQLite keeps any storage class in a column declared without a type; bytea for all of
    them turned an application's 2 and 'dry' into bytes."""
    conn = memory_db("CREATE TABLE kv (k TEXT PRIMARY KEY, words, ints, nums, huge, raw, empty);"
                     "INSERT INTO kv VALUES ('a', 'x', 1, 1.5, 1, x'00', NULL),"
                     " ('b', 2, 2, 2, 9007199254740993, 'text', NULL)")
    (table,) = read_tables(conn, [describe(conn, "kv")])
    assert table.classes == {"words": {"text", "integer"}, "ints": {"integer"}, "nums": {"real", "integer"},
                             "huge": {"integer", "big"}, "raw": {"blob", "text"}, "empty": set()}
    out = table_to_postgres(table, {})
    assert [(c.name, c.declared) for c in out.schema.columns] == [
        ("k", "text"), ("words", "text"), ("ints", "bigint"), ("nums", "double precision"), ("huge", "bigint"),
        ("raw", "bytea"), ("empty", "text")]
    assert "kv.words: (no type) -> text: its values are integer, text" in out.notes
    assert "kv.empty: (no type) -> text: its values are all NULL" in out.notes
    assert untyped_column(Column("x", "", "blob"), {"integer", "real", "big"}).declared == "numeric"


def test_a_column_holding_a_value_its_type_cannot_take_is_typed_by_its_values() -> None:
    """SQLite keeps 'abc' in an INTEGER column and a Unix time in a DATETIME one; the
    restore into PostgreSQL failed on them (exit 3). A text in a DATETIME column is
    PostgreSQL's to parse, as before."""
    conn = memory_db("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, r REAL, b BOOLEAN, d DATETIME,"
                     " x NUMERIC(10,2), fine INTEGER, half INTEGER, when_ DATETIME);"
                     "INSERT INTO t VALUES (1, 'abc', 'n/a', 'yes', 1700000000, 'abc', 1, 1.5, '2026-01-01 10:00:00'),"
                     " (2, 5, 5.5, 1, '2026-01-01 10:00:00', 1.25, '7', 2, 'soon')")
    (table,) = read_tables(conn, [describe(conn, "t")])
    assert table.classes == {"n": {"integer", "text"}, "r": {"real", "text"}, "b": {"integer", "text"},
                             "d": {"integer", "text"}, "x": {"real", "text"}}  # not half: the load names it
    out = table_to_postgres(table, {})
    assert [(c.name, c.declared) for c in out.schema.columns] == [
        ("id", "integer"), ("n", "text"), ("r", "text"), ("b", "text"), ("d", "text"), ("x", "text"),
        ("fine", "integer"), ("half", "integer"), ("when_", "timestamp without time zone")]
    assert ("t.n: INTEGER -> text: its values are integer, text, not all of which a integer column takes "
            "(SQLite does not enforce types)") in out.notes


def test_generated_columns_are_mapped_with_their_expressions_and_places() -> None:
    """The change stream does not carry them (the triggers see the stored columns): a
    restore into PostgreSQL creates them with SQLite's expression, STORED, in their places,
    marked ``tried`` (restore.postgres.generated checks the values)."""
    conn = memory_db("CREATE TABLE g (id INTEGER PRIMARY KEY, price REAL, qty REAL,"
                     " total REAL GENERATED ALWAYS AS (price * qty) STORED, is_big BOOLEAN,"
                     " half INT AS (CAST(price AS INT) / 2), flag BOOLEAN AS (is_big = 1) NOT NULL)")
    (table,) = read_tables(conn, [describe(conn, "g")])
    assert [(c.name, c.expression, c.stored, c.position, c.not_null) for c in table.generated] == [
        ("total", "price * qty", True, 3, False), ("half", "CAST(price AS INT) / 2", False, 5, False),
        ("flag", "is_big = 1", False, 6, True)]
    out = table_to_postgres(table, {})
    assert out.schema.column_names == ["id", "price", "qty", "is_big"]
    assert post_load(out.schema)["generated"] == [
        {"name": "total", "declared": "double precision", "kind": "STORED", "not_null": False,
         "expr": "price * qty", "position": 3, "tried": True},
        {"name": "half", "declared": "integer", "kind": "STORED", "not_null": False,
         "expr": "CAST(price AS INT) / 2", "position": 5, "tried": True},
        {"name": "flag", "declared": "boolean", "kind": "STORED", "not_null": True,
         "expr": "is_big = true", "position": 6, "tried": True}]
    assert any(n.startswith("g.total: generated column -> GENERATED ALWAYS AS (price * qty) STORED")
               for n in out.notes)


def test_generated_expressions_are_read_from_the_create_table_statement() -> None:
    ddl = ('CREATE TABLE "t t" ("my col" NUMERIC(10, 2) DEFAULT (1), [b] TEXT AS (\'a,(\' || "my col") VIRTUAL,'
           " c INT GENERATED ALWAYS AS (coalesce(\"my col\", (1 + 2))) STORED, d TEXT CHECK (d <> 'AS (x)'),"
           " CONSTRAINT k UNIQUE (c))")
    assert generated_expressions(ddl) == {"b": "'a,(' || \"my col\"", "c": 'coalesce("my col", (1 + 2))'}
    assert generated_expressions("CREATE TABLE x (a INT)") == {}


def test_the_postgres_description_is_in_the_catalog_readers_form() -> None:
    out = table_to_postgres(sqlite_table([Column("id", "INTEGER", "integer"), Column("x", "TEXT", "text")], ["id"]),
                            {})
    assert out.schema.dialect == "postgresql" and out.schema.name == "trades" and out.schema.primary_key == ["id"]
    extra = extra_of(out)
    assert {"defaults", "identity", "serial", "indexes"} <= set(extra)
    assert out.schema.ddl == json.dumps(extra, sort_keys=True)


# == restore.postgres.sqlite_catalog ======================================================

SOURCE = """
CREATE TABLE pairs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    symbol VARCHAR(5) NOT NULL,
    venue TEXT NOT NULL,
    price NUMERIC(10,2),
    fee NUMERIC(10,2),
    qty DECIMAL_BLOB(10,2),
    cost DECIMAL_BLOB(10,2),
    n INTEGER,
    is_open BOOLEAN NOT NULL DEFAULT 1,
    opened DATETIME DEFAULT CURRENT_TIMESTAMP,
    label TEXT DEFAULT 'none',
    ext_id TEXT,
    CONSTRAINT uq_symbol_venue UNIQUE (symbol, venue),
    UNIQUE (ext_id),
    CHECK (fee >= 0)
);
CREATE TABLE trades (
    id INTEGER PRIMARY KEY,
    pair_id INTEGER REFERENCES pairs ON DELETE CASCADE,
    symbol VARCHAR(5),
    venue TEXT,
    amount REAL,
    FOREIGN KEY (symbol, venue) REFERENCES pairs (symbol, venue) ON UPDATE CASCADE ON DELETE SET NULL
);
CREATE INDEX ix_pairs_open ON pairs (symbol) WHERE is_open = 1;
CREATE INDEX ix_pairs_lower ON pairs (lower(symbol), price DESC);
CREATE UNIQUE INDEX ux_trades_amount ON trades (pair_id, amount);
CREATE TRIGGER pairs_touch AFTER UPDATE ON pairs BEGIN SELECT 1; END;
CREATE TRIGGER _tradevault_trg_pairs_insert AFTER INSERT ON pairs BEGIN SELECT 1; END;
-- symbol 7 characters, price a REAL with 3 decimals, qty a TEXT with 3 decimals, n beyond 32 bits;
-- fee 1.5 and cost '1.23' fit
INSERT INTO pairs (symbol, venue, price, fee, qty, cost, n)
    VALUES ('ABCDEFG', 'X', 1.005, 1.5, '1.234', '1.23', 1099511627776);
INSERT INTO pairs (symbol, venue, price, fee, qty, cost, n) VALUES ('BTC', 'Y', 1.5, 1.5, 2.5, 3, 7);
INSERT INTO pairs (symbol, venue) VALUES ('GONE', 'Z');
DELETE FROM pairs WHERE symbol = 'GONE';
INSERT INTO trades (pair_id, symbol, venue, amount) VALUES (2, 'BTC', 'Y', 0.5);
"""


@pytest.fixture
def source() -> Iterator[sqlite3.Connection]:
    conn = memory_db(SOURCE)
    yield conn
    conn.close()


def catalog(conn: sqlite3.Connection, **kwargs: Any) -> dict[str, SqliteTable]:
    return {t.schema.name: t for t in read_tables(conn, [describe(conn, "pairs"), describe(conn, "trades")], **kwargs)}


def test_the_source_stores_the_values_the_limits_are_checked_on(source: sqlite3.Connection) -> None:
    assert source.execute("SELECT typeof(price), typeof(qty), typeof(cost) FROM pairs WHERE id = 1").fetchone() == (
        "real", "text", "text")  # NUMERIC affinity turns text into REAL; DECIMAL_BLOB keeps it


def test_read_tables_finds_defaults_rowid_keys_and_the_autoincrement_counter(source: sqlite3.Connection) -> None:
    pairs, trades = catalog(source).values()
    assert pairs.defaults == {"is_open": "1", "opened": "CURRENT_TIMESTAMP", "label": "'none'"}
    assert (pairs.rowid_key, pairs.autoincrement, pairs.counter) == (True, True, 3)  # id 3 was deleted
    assert (trades.rowid_key, trades.autoincrement, trades.counter) == (True, False, None)
    assert trades.defaults == {}


def test_read_tables_finds_named_and_unnamed_unique_constraints_in_declaration_order(
        source: sqlite3.Connection) -> None:
    pairs, trades = catalog(source).values()
    assert pairs.unique == [("uq_symbol_venue", ["symbol", "venue"]), (None, ["ext_id"])]
    assert trades.unique == []  # a CREATE UNIQUE INDEX is an index, not a constraint


def test_read_tables_finds_partial_and_expression_indexes_in_creation_order(source: sqlite3.Connection) -> None:
    pairs, trades = catalog(source).values()
    assert pairs.indexes == [SqliteIndex("ix_pairs_open", False, "symbol", "is_open = 1"),
                             SqliteIndex("ix_pairs_lower", False, "lower(symbol), price DESC", None)]
    assert trades.indexes == [SqliteIndex("ux_trades_amount", True, "pair_id, amount", None)]


def test_read_tables_finds_foreign_keys_with_their_actions(source: sqlite3.Connection) -> None:
    pairs, trades = catalog(source).values()
    assert pairs.foreign_keys == []
    by_columns = {tuple(k.columns): k for k in trades.foreign_keys}
    assert by_columns == {
        ("pair_id",): SqliteForeignKey(["pair_id"], "pairs", None, "NO ACTION", "CASCADE"),
        ("symbol", "venue"): SqliteForeignKey(["symbol", "venue"], "pairs", ["symbol", "venue"], "CASCADE",
                                              "SET NULL"),
    }


def test_read_tables_counts_checks_and_only_the_applications_triggers(source: sqlite3.Connection) -> None:
    pairs, trades = catalog(source).values()
    assert (pairs.checks, pairs.triggers) == (1, 1)
    assert (trades.checks, trades.triggers) == (0, 0)


def test_read_tables_marks_the_columns_whose_values_break_their_declared_limits(source: sqlite3.Connection) -> None:
    pairs, trades = catalog(source).values()
    assert pairs.broken == {"symbol", "price", "qty", "n"}  # not fee (1.5), not cost ('1.23')
    assert trades.broken == set()


def test_without_a_scan_no_column_is_marked_broken(source: sqlite3.Connection) -> None:
    assert all(t.broken == set() for t in catalog(source, scan=False).values())


def test_a_numeric_column_with_text_that_is_no_number_is_left_to_the_restore_to_refuse() -> None:
    conn = memory_db("CREATE TABLE t (p DECIMAL_BLOB(10,2), q DECIMAL_BLOB(10,2));"
                     "INSERT INTO t VALUES ('abc', '1.25'), ('1.5', '12.345')")
    (table,) = read_tables(conn, [describe(conn, "t")])
    assert table.broken == {"q"}


def test_a_database_without_autoincrement_has_no_counters() -> None:
    conn = memory_db("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT); INSERT INTO t (x) VALUES ('a')")
    (table,) = read_tables(conn, [describe(conn, "t")])
    assert (table.rowid_key, table.autoincrement, table.counter) == (True, False, None)


def test_without_rowid_tables_and_int_keys_are_not_rowid_aliases() -> None:
    conn = memory_db("CREATE TABLE w (id INTEGER PRIMARY KEY, x TEXT) WITHOUT ROWID;"
                     "CREATE TABLE i (id INT PRIMARY KEY, x TEXT);"
                     "CREATE TABLE c (a INTEGER, b INTEGER, PRIMARY KEY (a, b));"
                     "CREATE TABLE k (id integer, x TEXT, PRIMARY KEY (id))")
    tables = read_tables(conn, [describe(conn, name) for name in ("w", "i", "c", "k")])
    assert [t.rowid_key for t in tables] == [False, False, False, True]


def test_a_column_level_named_unique_constraint_keeps_its_name() -> None:
    conn = memory_db("CREATE TABLE t (id INTEGER PRIMARY KEY, code TEXT CONSTRAINT uq_code UNIQUE)")
    (table,) = read_tables(conn, [describe(conn, "t")])
    assert table.unique == [("uq_code", ["code"])]


def test_a_sqlite_database_maps_to_postgres_end_to_end(source: sqlite3.Connection) -> None:
    pairs, trades = catalog(source).values()
    keys_of = {"pairs": ["id"], "trades": ["id"]}
    pg_pairs = table_to_postgres(pairs, keys_of)
    assert declared_of(pg_pairs) == {
        "id": "integer", "symbol": "text", "venue": "text", "price": "numeric", "fee": "numeric(10,2)",
        "qty": "numeric", "cost": "numeric(10,2)", "n": "bigint", "is_open": "boolean",
        "opened": "timestamp without time zone", "label": "text", "ext_id": "text"}
    extra = extra_of(pg_pairs)
    assert extra["identity"] == {"id": "d"} and extra["sequences"]["id"]["name"] == "pairs_id_seq"
    assert pg_pairs.positions == {"pairs_id_seq": [3, True]}
    assert extra["defaults"] == {"is_open": "true", "opened": "timezone('utc'::text, now())", "label": "'none'"}
    assert extra["constraints"] == [{"name": "uq_symbol_venue", "def": 'UNIQUE ("symbol", "venue")'},
                                    {"name": "pairs_ext_id_key", "def": 'UNIQUE ("ext_id")'}]
    assert extra["tried_indexes"] == [
        'CREATE INDEX "ix_pairs_open" ON public."pairs" USING btree (symbol) WHERE is_open = true',
        'CREATE INDEX "ix_pairs_lower" ON public."pairs" USING btree (lower(symbol), price DESC)']
    assert "pairs: 1 CHECK constraint(s) not kept (SQLite expressions)" in pg_pairs.notes
    assert "pairs: 1 trigger(s) not kept (SQLite statements)" in pg_pairs.notes
    pg_trades = table_to_postgres(trades, keys_of)
    assert sorted(extra_of(pg_trades)["foreign_keys"], key=lambda k: k["name"]) == [
        {"name": "trades_pair_id_fkey", "unenforced": True,
         "def": 'FOREIGN KEY ("pair_id") REFERENCES "pairs"("id") ON DELETE CASCADE'},
        {"name": "trades_symbol_venue_fkey", "unenforced": True,
         "def": 'FOREIGN KEY ("symbol", "venue") REFERENCES "pairs"("symbol", "venue") ON UPDATE CASCADE '
                "ON DELETE SET NULL"}]
    assert pg_trades.positions == {} and declared_of(pg_trades)["symbol"] == "character varying(5)"
