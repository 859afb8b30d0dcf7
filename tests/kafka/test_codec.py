"""The Kafka wire format, without a broker: exact values, canonical keys, topic names."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import struct
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from trade_stream.events import DELETE, INSERT
from trade_stream.kafka import codec as codec

EXACT = st.one_of(
    st.none(), st.booleans(), st.text(), st.binary(max_size=64),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.just(dt.timezone.utc)), st.dates(), st.times(), st.uuids(),
    st.timedeltas(),
)


def same(a, b) -> bool:
    """Equal value and type; floats bit for bit (-0.0 too)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)  # NaN payloads are not kept (SQLite stores NaN as NULL anyway)
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, decimal.Decimal):
        return str(a) == str(b)
    return a == b


@settings(max_examples=400, deadline=None)
@given(st.lists(EXACT, max_size=6))
def test_values_round_trip_exactly_through_json(values):
    data = codec.encode_key(values)
    json.loads(data)  # plain JSON any reader can parse
    back = codec.decode_key(data)
    assert len(back) == len(values)
    assert all(same(a, b) for a, b in zip(values, back)), (values, back)


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_are_plain_json_numbers_read_back_bit_for_bit_by_stdlib(value):
    encoded = codec.encode_value(value)
    assert encoded is value
    text = codec.encode_key([value])
    assert struct.pack("<d", json.loads(text)[0]) == struct.pack("<d", value)
    assert type(json.loads(text)[0]) is float


def test_tagged_forms_are_documented_ones():
    assert codec.encode_value(2**53 - 1) == 2**53 - 1
    assert codec.encode_value(2**53) == {"$int": str(2**53)}
    assert codec.encode_value(-(2**63)) == {"$int": str(-(2**63))}
    assert codec.encode_value(b"\x00\xff") == {"$bytes": "AP8="}
    assert codec.encode_value(decimal.Decimal("1.50")) == {"$decimal": "1.50"}
    assert codec.encode_value(math.inf) == {"$float": "inf"}
    assert codec.encode_value(-math.inf) == {"$float": "-inf"}
    assert codec.encode_value(math.nan) == {"$float": "nan"}
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert codec.encode_value(moment) == {"$datetime": "2026-01-02T03:04:05.000006+02:00"}
    assert codec.encode_value(uuid.UUID(int=1)) == {"$uuid": "00000000-0000-0000-0000-000000000001"}
    assert codec.encode_value({"$bytes": "x"}) == {"$map": {"$bytes": "x"}}
    assert codec.decode_value({"$map": {"$bytes": "x"}}) == {"$bytes": "x"}


def test_key_is_canonical_compact_utf8_in_primary_key_order():
    assert codec.encode_key([42]) == b"[42]"
    assert codec.encode_key(["startup_candle", "int"]) == b'["startup_candle","int"]'
    assert codec.encode_key(["币/USDT", 1.5]) == '["币/USDT",1.5]'.encode()
    # 1, 1.0 and "1" are different rows (SQLite keeps each storage class).
    assert len({codec.encode_key([1]), codec.encode_key([1.0]), codec.encode_key(["1"])}) == 3


def test_topic_names_are_legal_and_injective():
    names = ["trades", "KeyValueStore", "my table", "a.b", "a-2eb", "ÄÖÜ", "x-y", "_schema"]
    topics = [codec.topic_name("tv", "db", n) for n in names]
    assert len(set(topics)) == len(names)
    for topic, name in zip(topics, names):
        assert all(c.isascii() and (c.isalnum() or c in "._-") for c in topic), topic
        assert codec.unescape_name(topic.split(".")[-1]) == name
    assert codec.topic_name("tv", "tradesv3", "trades") == "tv.tradesv3.trades"
    assert codec.topic_name("tv", "db", "my table") == "tv.db.my-20table"
    assert codec.schema_topic_name("tv", "tradesv3") == "tv.tradesv3._tradevault_schema"
    assert codec.schema_topic_name("tv", "db") not in topics


def test_row_delete_and_tombstone_records_decode():
    value = codec.encode_row_value(7, 7, 1_700_000_000_000_000, INSERT, "trades", ["id", "op", "raw"],
                                   [1, "x", b"\x01"])
    data = json.loads(value)
    assert data == {"seq": 7, "tx": 7, "ts": 1_700_000_000_000_000, "op": "insert", "table": "trades",
                    "row": {"id": 1, "op": "x", "raw": {"$bytes": "AQ=="}}}
    record = codec.decode_record(b"[1]", value, codec.headers(7, INSERT))
    assert record.live and record.seq == 7
    assert codec.decode_row(record.row) == {"id": 1, "op": "x", "raw": b"\x01"}

    delete = codec.encode_delete_value(8, 8, 1, "trades", ["id"], [1])
    assert json.loads(delete)["key"] == {"id": 1} and json.loads(delete)["row"] is None
    assert not codec.decode_record(b"[1]", delete).live
    assert codec.decode_record(b"[1]", delete).op == DELETE

    tomb = codec.decode_record(b"[1]", None, codec.headers(8, codec.TOMBSTONE))
    assert tomb.op == codec.TOMBSTONE and tomb.seq == 8 and not tomb.live


def test_canonical_row_ignores_column_order_but_not_types():
    a = codec.canonical_row({"a": 1, "b": 0.0})
    assert a == codec.canonical_row({"b": 0.0, "a": 1})
    assert a != codec.canonical_row({"a": 1, "b": -0.0})
    assert a != codec.canonical_row({"a": 1.0, "b": 0.0})
