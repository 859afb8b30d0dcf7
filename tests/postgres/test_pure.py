"""Pure parts of the PostgreSQL support: wal2json parsing, seqs, types, type mapping."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid

import pytest

from restore.schema_to_sqlite import table_to_sqlite
from restore.type_mapping import (
    pg_value_converters,
    sqlite_table_to_pg,
    sqlite_value_converters,
)
from trade_stream.errors import BadInputError
from trade_stream.events import DELETE, INSERT, SCHEMA, UPDATE
from trade_stream.postgres.lsn import (
    FREE,
    MAX_TX_EVENTS,
    SPAN,
    event_seq,
    format_lsn,
    parse_lsn,
    resync_base,
    snapshot_seq,
)
from trade_stream.postgres.snapshot_rows import BinaryCopyParser, decode_copy_chunks, encode_copy_chunk
from trade_stream.postgres.types import (
    parse_interval_text,
    pg_family,
    type_oid,
    wal2json_parser,
    wal2json_wire_parser,
    widen_real,
)
from trade_stream.postgres.wal2json import StreamDecoder, commit_ts_us
from trade_stream.schema import Column, TableSchema
from trade_stream.segments import decode_chunks, encode_chunk
from trade_stream.values import to_wire

pytestmark = pytest.mark.xdist_group("postgres")

T = TableSchema(
    name="t",
    columns=[Column("id", "bigint", "integer", False), Column("f", "double precision", "float"),
             Column("n", "numeric(30,9)", "numeric"), Column("j", "jsonb", "json"),
             Column("a", "integer[]", "array")],
    primary_key=["id"], dialect="postgresql",
)


def msg(**kw) -> bytes:
    return json.dumps(kw).encode()


def col(name, type_, value):
    return {"name": name, "type": type_, "value": value}


def row_columns(id_, f="0.5", n="1.10", j='{"a": 1}', a="{1,NULL}"):
    return [col("id", "bigint", id_), col("f", "double precision", f), col("n", "numeric(30,9)", n),
            col("j", "jsonb", j), col("a", "integer[]", a)]


def test_lsn_text_and_seq_spacing():
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert format_lsn(parse_lsn("0/152C058")) == "0/152C058"
    lsn = 0x152C058
    assert event_seq(lsn, 0) < event_seq(lsn, MAX_TX_EVENTS - 1) < resync_base(lsn) < snapshot_seq(lsn)
    # the next commit ends at least 32 bytes later: its first seq is above everything at lsn
    assert snapshot_seq(lsn) < event_seq(lsn + 32, 0)
    assert resync_base(lsn) == (lsn << 20) + FREE and snapshot_seq(lsn) == (lsn << 20) + SPAN - 1
    with pytest.raises(BadInputError, match="tradevault uninstall`, then `tradevault backup full"):
        event_seq(lsn, MAX_TX_EVENTS)  # the way out is in the message: the capture cannot pass it


def stored(events):
    """Events as a restore reads them back: through the segment encoding (the decoder
    makes wire values: a numeric travels as its exact text)."""
    return [e for chunk in decode_chunks([encode_chunk(events, plain=True)]) for e in chunk]


def begin(xid, commit_lsn, ts="2026-11-26 22:15:21.257918+00"):
    return msg(action="B", xid=xid, timestamp=ts, nextlsn=format_lsn(commit_lsn))


def commit(xid, commit_lsn, ts="2026-11-26 22:15:21.257918+00"):
    return msg(action="C", xid=xid, timestamp=ts, nextlsn=format_lsn(commit_lsn))


def test_negative_zero_keeps_its_sign_in_float_columns():
    """wal2json prints a float4/float8 negative zero as a bare -0 (JSON's integer 0): it stays
    -0.0 wherever it appears (last column, old key), and a table without float columns
    keeps its values as they are."""
    keyed = TableSchema(name="r", columns=[Column("k", "double precision", "float", False),
                                           Column("v", "real", "float")],
                        primary_key=["k"], dialect="postgresql")
    plain = TableSchema(name="p", columns=[Column("id", "bigint", "integer", False), Column("s", "text", "text")],
                        primary_key=["id"], dialect="postgresql")
    d = StreamDecoder([keyed, plain])
    d.feed(begin(8, 300))
    d.feed(b'{"action":"U","xid":8,"schema":"public","table":"r","columns":[{"name":"k","type":"double precision",'
           b'"value":1.5},{"name":"v","type":"real","value":-0}],"identity":[{"name":"k","type":"double precision",'
           b'"value":-0}]}')
    d.feed(b'{"action":"I","xid":8,"schema":"public","table":"p","columns":[{"name":"id","type":"bigint",'
           b'"value":0},{"name":"s","type":"text","value":"\\"value\\":-0,"}]}')
    d.feed(commit(8, 300))
    update, insert = stored(d.take())
    assert str(update.row[1]) == "-0.0" and str(update.key[0]) == "-0.0" and update.row[0] == 1.5
    assert insert.row == [0, '"value":-0,'] and type(insert.row[0]) is int


def test_decoder_builds_transactions_with_commit_seqs():
    d = StreamDecoder([T])
    ts = "2026-11-26 22:15:21.257918+00"
    raw = (
        '{"action":"I","xid":7,"schema":"public","table":"t","columns":['
        '{"name":"id","type":"bigint","value":1},{"name":"f","type":"double precision","value":-0},'
        '{"name":"n","type":"numeric(30,9)","value":123456789012345678901.123456789},'
        '{"name":"j","type":"jsonb","value":"{\\"a\\": 1.10}"},'
        '{"name":"a","type":"integer[]","value":"{1,NULL,3}"}],"pk":[{"name":"id","type":"bigint"}]}'
    ).encode()
    d.feed(begin(7, 200))
    assert d.in_transaction
    d.feed(raw)
    d.feed(msg(action="U", xid=7, schema="public", table="t", columns=row_columns(2),
               identity=[col("id", "bigint", 1)]))
    d.feed(msg(action="D", xid=7, schema="public", table="t", identity=[col("id", "bigint", 2)]))
    d.feed(msg(action="I", xid=7, schema="public", table="other", columns=[col("x", "integer", 1)]))
    d.feed(commit(7, 200))
    events = stored(d.take())
    assert [e.op for e in events] == [INSERT, UPDATE, DELETE]
    assert [e.seq for e in events] == [event_seq(200, i) for i in range(3)]
    assert all(e.tx == 7 and e.ts == commit_ts_us(ts) for e in events)
    first = events[0]
    assert first.key == [1]
    f = first.row[1]
    assert f == 0.0 and str(f) == "-0.0"  # the sign of negative zero survives
    n = first.row[2]
    assert n == decimal.Decimal("123456789012345678901.123456789") and str(n) == "123456789012345678901.123456789"
    assert first.row[3] == '{"a": 1.10}' and first.row[4] == [1, None, 3]
    assert events[1].key == [1] and events[1].row[0] == 2  # update of the key: old key
    assert events[2].key == [2] and events[2].row is None
    assert d.ignored == {"other"} and d.last_commit_lsn == 200 and not d.in_transaction


def test_decoder_hands_out_a_large_transaction_in_windows_with_final_seqs():
    """Its begin message names the commit: events leave before the commit is read."""
    d = StreamDecoder([T])
    d.feed(begin(9, 5000))
    taken = []
    for i in range(10):
        d.feed(msg(action="I", xid=9, schema="public", table="t", columns=row_columns(i, n=f"{i}.50")))
        if i % 4 == 3:
            taken.append(d.take())
    assert d.in_transaction and [len(w) for w in taken] == [4, 4]
    d.feed(commit(9, 5000))
    taken.append(d.take())
    events = stored([e for window in taken for e in window])
    assert [e.seq for e in events] == [event_seq(5000, i) for i in range(10)]
    assert [e.row[2] for e in events] == [decimal.Decimal(f"{i}.50") for i in range(10)]
    assert d.last_commit_lsn == 5000


def test_decoder_refuses_a_begin_without_its_commit_position_or_a_mismatched_commit():
    d = StreamDecoder([T])
    with pytest.raises(BadInputError, match="include-lsn"):
        d.feed(msg(action="B", xid=1, timestamp="2026-01-01 00:00:00+00"))
    d.feed(begin(1, 300))
    with pytest.raises(BadInputError, match="does not match"):
        d.feed(commit(1, 400))


def test_decoder_skips_stored_events_and_projects_changed_columns():
    ts = "2026-01-01 00:00:00+00"
    d = StreamDecoder([T], after_seq=event_seq(200, 0))
    for lsn in (200, 300):
        d.feed(begin(lsn, lsn, ts))
        cols = row_columns(lsn) + ([col("extra", "integer", 5)] if lsn == 300 else [])
        d.feed(msg(action="I", xid=lsn, schema="public", table="t", columns=cols))
        d.feed(commit(lsn, lsn, ts))
        events = d.take()
        if lsn == 200:
            assert events == []  # at or below the chain position: already stored
        else:
            assert len(events) == 1 and len(events[0].row) == 5  # projected onto the known columns
    assert d.changed == {"t"}
    d.feed(begin(9, 400, ts))
    d.feed(msg(action="T", xid=9, schema="public", table="t"))
    d.feed(commit(9, 400, ts))
    (event,) = d.take()
    assert event.op == SCHEMA and event.table_schema == T.to_dict()


def test_decoder_skips_a_generated_column_in_place_and_keeps_its_fast_reader():
    """wal2json prints a stored generated column's value; the description has no such
    column (the server computes it again): the message still matches it, and a message
    without it is projected (and the table reported) as for any other difference."""
    generated = [{"name": "v", "declared": "numeric", "expr": "(n * 2)", "not_null": False, "position": 2,
                  "kind": "STORED"}]
    g = TableSchema(name="t", columns=T.columns, primary_key=["id"], dialect="postgresql",
                    ddl=json.dumps({"generated": generated}))
    ts = "2026-01-01 00:00:00+00"
    with_value = row_columns(1)[:2] + [col("v", "numeric", 2.2)] + row_columns(1)[2:]
    for columns, changed in ((with_value, set()), (row_columns(1), {"t"})):
        d = StreamDecoder([g])
        d.feed(begin(5, 500, ts))
        d.feed(msg(action="I", xid=5, schema="public", table="t", columns=columns))
        d.feed(commit(5, 500, ts))
        (event,) = stored(d.take())
        assert event.row[:3] == [1, 0.5, decimal.Decimal("1.10")] and len(event.row) == 5
        assert d.changed == changed


def test_delete_without_identity_is_refused():
    d = StreamDecoder([T])
    d.feed(begin(1, 2))
    with pytest.raises(BadInputError, match="REPLICA IDENTITY"):
        d.feed(msg(action="D", xid=1, schema="public", table="t"))


@pytest.mark.parametrize("declared,text,expected", [
    ("timestamp with time zone", "2024-01-02 01:04:05.123456+00",
     dt.datetime(2024, 1, 2, 1, 4, 5, 123456, tzinfo=dt.timezone.utc)),
    ("timestamp(3) without time zone", "2024-01-02 03:04:05.1", dt.datetime(2024, 1, 2, 3, 4, 5, 100000)),
    ("date", "2024-02-29", dt.date(2024, 2, 29)),
    ("time without time zone", "04:05:06.5", dt.time(4, 5, 6, 500000)),
    ("uuid", "b761fb92-464e-418a-8dae-76c6836ee40b", uuid.UUID("b761fb92-464e-418a-8dae-76c6836ee40b")),
    ("bytea", "00ff", b"\x00\xff"),
    ("text[]", '{"a b","c,d",NULL}', ["a b", "c,d", None]),
    ("numeric[]", "{1.10,-2}", [decimal.Decimal("1.10"), decimal.Decimal("-2")]),
    ("interval", "3 days 04:05:06.7", dt.timedelta(days=3, hours=4, minutes=5, seconds=6.7)),
    ("interval", "1 year 2 mons", "14 mons 0 days 0 microseconds"),
    ("interval", "-1 days +02:00:00", dt.timedelta(days=-1, hours=2)),
    ("interval", "25:00:00", "0 mons 0 days 90000000000 microseconds"),
    ("real", "1.1", widen_real(1.1)),
    ("double precision", "0.30000000000000004", 0.30000000000000004),
    ("double precision", "1e+308", 1e308),
    ("numeric(10,2)", "1.10", decimal.Decimal("1.10")),
])
def test_wal2json_value_parsers(declared, text, expected):
    value = wal2json_parser(declared)(text)
    assert value == expected and type(value) is type(expected)
    wire = wal2json_wire_parser(declared)  # what the decoder stores: the same value on the wire
    assert (text if wire is None else wire(text)) == to_wire(expected)


def test_type_catalogue():
    assert type_oid("character varying(20)[]") == 1015 and type_oid("numeric(10,2)") == 1700
    assert pg_family("timestamp(3) with time zone") == "datetime" and pg_family("jsonb[]") == "array"
    with pytest.raises(BadInputError):
        wal2json_parser("interval")("P1D")  # only IntervalStyle postgres
    with pytest.raises(BadInputError):
        parse_interval_text("garbage")
    assert wal2json_parser("date")("infinity") == "infinity"  # travels as its text (temporal_text)
    assert wal2json_parser("timestamp with time zone")("0044-03-15 12:00:00+00 BC") == "0044-03-15 12:00:00+00 BC"


def test_copy_chunks_and_binary_copy_parser():
    header = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
    tuple1 = b"\x00\x02" + b"\x00\x00\x00\x01x" + b"\xff\xff\xff\xff"
    tuple2 = b"\x00\x02" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x02yz"
    stream = header + tuple1 + tuple2 + b"\xff\xff"
    body = b"".join(encode_copy_chunk("t", stream[i : i + 7]) for i in range(0, len(stream), 7))
    chunks = list(decode_copy_chunks([body[:5], body[5:]]))
    assert "".join(t for t, _ in chunks) == "t" * len(chunks) and b"".join(d for _, d in chunks) == stream
    parser = BinaryCopyParser()
    rows = [r for _, d in chunks for r in parser.feed(d)]
    parser.close()
    assert rows == [[b"x", None], [b"", b"yz"]]
    truncated = BinaryCopyParser()
    truncated.feed(stream[:-2])
    with pytest.raises(Exception, match="truncated"):
        truncated.close()


def test_type_mapping_sqlite_to_pg_and_back():
    sqlite_table = TableSchema(
        name="trades",
        columns=[Column("id", "INTEGER", "integer", False), Column("open_date", "DATETIME", "datetime"),
                 Column("is_open", "BOOLEAN", "boolean"), Column("amount", "NUMERIC(20,8)", "numeric"),
                 Column("rate", "FLOAT", "float"), Column("pair", "VARCHAR(25)", "text")],
        primary_key=["id"], dialect="sqlite",
    )
    pg = sqlite_table_to_pg(sqlite_table)
    assert [c.declared for c in pg.columns] == [
        "integer", "timestamp without time zone", "boolean", "numeric(20,8)", "double precision",
        "character varying(25)"]
    convert = sqlite_value_converters(pg)
    values = [c(v) for c, v in zip(convert, [1, "2024-01-02 03:04:05.123456", 1, 0.1, 2.5, "BTC/USDT"])]
    assert values == [1, dt.datetime(2024, 1, 2, 3, 4, 5, 123456), True, decimal.Decimal("0.1"), 2.5, "BTC/USDT"]
    back = table_to_sqlite(pg).schema
    assert [c.family for c in back.columns] == [c.family for c in sqlite_table.columns]
    to_sqlite = pg_value_converters(pg)
    assert [c(v) for c, v in zip(to_sqlite, values)] == [1, "2024-01-02 03:04:05.123456", 1, 0.1, 2.5, "BTC/USDT"]


@pytest.mark.parametrize("statement, expected", [
    ("CREATE INDEX trades_pair ON public.trades USING btree (pair, is_open)",
     'CREATE INDEX trades_pair ON "stage".trades USING btree (pair, is_open)'),
    ('CREATE UNIQUE INDEX "odd "" name" ON ONLY "my schema"."t.x" USING btree (a) WHERE (a > 1)',
     'CREATE UNIQUE INDEX "odd "" name" ON ONLY "stage"."t.x" USING btree (a) WHERE (a > 1)'),
])
def test_recorded_index_definitions_are_aimed_at_the_restore_schema(statement, expected):
    from restore.postgres.apply import index_in_schema

    assert index_in_schema(statement, "stage") == expected


def test_an_index_definition_of_unknown_shape_is_refused():
    from restore.postgres.apply import index_in_schema
    from trade_stream.errors import IntegrityError

    with pytest.raises(IntegrityError, match="unexpected index definition"):
        index_in_schema("CREATE INDEX x ON t USING btree (a)", "stage")


def test_a_table_with_odd_names_decodes_on_the_fast_path_and_falls_back_on_a_change():
    """The per-table readers are written as code: any column name must stay a literal."""
    odd = TableSchema(
        name='we"ird',
        columns=[Column("id'\\\n", "bigint", "integer", False), Column('n"', "numeric(10,2)", "numeric"),
                 Column("{x}", "text", "text")],
        primary_key=["id'\\\n"], dialect="postgresql",
    )
    d = StreamDecoder([odd])
    d.feed(begin(3, 900))
    columns = [col("id'\\\n", "bigint", 5), col('n"', "numeric(10,2)", "1.50"), col("{x}", "text", "a")]
    d.feed(msg(action="I", xid=3, schema="public", table='we"ird', columns=columns))
    d.feed(msg(action="U", xid=3, schema="public", table='we"ird', columns=[columns[1], columns[0], columns[2]],
               identity=[col("id'\\\n", "bigint", 5)]))  # another column order: the general path
    d.feed(commit(3, 900))
    first, second = stored(d.take())
    assert first.key == [5] and first.row == [5, decimal.Decimal("1.50"), "a"]
    assert second.key == [5] and second.row == [5, decimal.Decimal("1.50"), "a"]
    assert d.changed == {'we"ird'}  # the second message did not match the known column order
