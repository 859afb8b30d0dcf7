"""The row function of a SQLite -> PostgreSQL load passes through what psycopg already
writes right and maps the rest exactly as the converters do."""

from __future__ import annotations

import datetime as dt
import decimal

from restore.copy_text import row_converter, row_source
from restore.type_mapping import sqlite_value_converters
from trade_stream.schema import Column, TableSchema

TABLE = TableSchema(name="t", dialect="postgresql", primary_key=["id"], columns=[
    Column("id", "integer", "integer"), Column("rate", "double precision", "float"),
    Column("amount", "numeric(18,8)", "numeric"), Column("pair", "character varying(25)", "text"),
    Column("at", "timestamp without time zone", "datetime"), Column("open", "boolean", "boolean"),
    Column("raw", "bytea", "blob"), Column("meta", "json", "json"),
])


def test_values_psycopg_writes_right_pass_through_unchanged():
    row = (1, 0.1, 2.5, "BTC/USDT", "2024-01-02 03:04:05.123456", None, b"\x00", '{"a": 1}')
    assert row_converter(TABLE)(row) == row


def test_other_values_are_mapped_as_the_converters_map_them():
    row = (5.0, "0.25", "1.5", 7, "2024-01-02T03:04:05+02:00", 1, "text", 3)
    expected = tuple(convert(value) for convert, value in zip(sqlite_value_converters(TABLE), row))
    assert row_converter(TABLE)(row) == expected
    assert expected[0] == 5 and expected[2] == decimal.Decimal("1.5") and expected[5] is True
    assert expected[4] == dt.datetime(2024, 1, 2, 1, 4, 5)  # an offset: UTC, as the converter does


def test_a_one_column_table_gets_a_tuple_back():
    table = TableSchema(name="k", dialect="postgresql", primary_key=[], columns=[Column("v", "integer", "integer")])
    assert "v0, = values" in row_source(table)
    assert row_converter(table)((3,)) == (3,)
