"""Values survive the wire exactly, including types msgpack has no native form for."""

import datetime as dt
import decimal
import math
import struct
import uuid

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from trade_stream.events import ChangeEvent
from trade_stream.segments import decode_chunks, encode_chunk
from trade_stream.values import row_to_wire

plain = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(),
    st.booleans(),
)
rich = st.one_of(
    plain,
    st.integers(min_value=-(10**40), max_value=10**40),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.none() | st.just(dt.timezone.utc) | st.just(dt.timezone(dt.timedelta(hours=-5)))),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.uuids(),
)


def _roundtrip(row):
    event = ChangeEvent(1, 1, 0, "t", "insert", [1], row)
    [[back]] = list(decode_chunks([encode_chunk([event])]))
    return back.row


@given(st.lists(rich, max_size=12))
def test_every_supported_value_comes_back_with_its_type(row):
    back = _roundtrip(row)
    assert [type(v) for v in back] == [type(v) for v in row]
    for a, b in zip(back, row):
        if isinstance(a, float):
            assert struct.pack(">d", a) == struct.pack(">d", b)  # bit for bit, -0.0 included
        else:
            assert a == b
            if isinstance(a, dt.datetime):
                assert a.utcoffset() == b.utcoffset()


def test_decimal_digits_are_kept_exactly():
    value = decimal.Decimal("12345678901234567890.123456789012345678900")
    assert str(_roundtrip([value])[0]) == str(value)


def test_special_floats_are_bit_exact():
    row = [math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308]
    assert [struct.pack(">d", v) for v in _roundtrip(row)] == [struct.pack(">d", v) for v in row]


def test_plain_rows_pass_through_untouched():
    row = [1, 2.5, "x", b"\x00", None]
    assert row_to_wire(row) is row


def test_uuid_is_not_confused_with_text():
    u = uuid.uuid4()
    assert _roundtrip([u, str(u)]) == [u, str(u)]


def test_garbage_chunk_is_an_integrity_error():
    import pytest

    from trade_stream.errors import IntegrityError

    payload = msgspec.msgpack.encode([[1, 2]])
    with pytest.raises(IntegrityError):
        list(decode_chunks([len(payload).to_bytes(4, "big") + payload]))
    with pytest.raises(IntegrityError):
        list(decode_chunks([b"\x00\x00\x00\x10abc"]))


def test_plain_fast_path_encodes_exactly_what_the_checked_path_does():
    events = [ChangeEvent(i, i, 10 * i, "t", "update", [i], [i, 2.5, "ü", b"\x00", None, -(2**63)]) for i in range(5)]
    events.append(ChangeEvent(9, 9, 0, "t", "schema", None, None, {"name": "t", "columns": []}))
    assert encode_chunk(events, plain=True) == encode_chunk(events)


def test_out_of_order_names_the_first_seq_that_does_not_rise() -> None:
    from trade_stream.events import INSERT, ChangeEvent
    from trade_stream.segments import out_of_order

    def batch(*seqs: int) -> list[ChangeEvent]:
        return [ChangeEvent(s, s, 0, "t", INSERT, [s], [s]) for s in seqs]

    assert out_of_order(batch(5, 6, 9), 4) is None and out_of_order([], 4) is None
    assert out_of_order(batch(4, 6), 4) == 4  # not above the segment's previous event
    assert out_of_order(batch(5, 7, 7, 8), 4) == 7
    assert out_of_order(batch(5, 9, 6), 4) == 6
