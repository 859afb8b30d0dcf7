"""Folding records into the latest state, without a broker: last seq per key wins,
deletes and tombstones remove keys, rows older than their table's description are stale,
duplicates (at-least-once delivery) change nothing."""

from __future__ import annotations

from trade_stream.events import INSERT, SNAPSHOT, UPDATE
from trade_stream.kafka import codec as codec
from trade_stream.kafka.check import compare
from trade_stream.kafka.state import KafkaState, TableFold
from trade_stream.schema import Column, TableSchema

T = TableSchema(name="t", columns=[Column("id", "INTEGER", "integer"), Column("v", "TEXT", "text")],
                primary_key=["id"], dialect="sqlite")


def row(seq: int, key: int, v: str, op: str = INSERT) -> codec.Record:
    value = codec.encode_row_value(seq, seq, 0, op, "t", ["id", "v"], [key, v])
    return codec.decode_record(codec.encode_key([key]), value, codec.headers(seq, op))


def delete(seq: int, key: int) -> list[codec.Record]:
    k = codec.encode_key([key])
    return [codec.decode_record(k, codec.encode_delete_value(seq, seq, 0, "t", ["id"], [key])),
            codec.decode_record(k, None, codec.headers(seq, codec.TOMBSTONE))]


def state_of(records: list[codec.Record], schema_seq: int = 0) -> KafkaState:
    state = KafkaState()
    state.note_schema("t", schema_seq, T)
    fold = state.folds["t"] = TableFold()
    for record in records:
        fold.add(record)
    return state


def live(state: KafkaState) -> dict[int, str]:
    return {codec.decode_key(k)[0]: codec.decode_row(r)["v"] for k, r in state.rows("t")}


def test_last_seq_per_key_wins_and_deletes_remove():
    records = [row(1, 1, "a"), row(2, 2, "b"), row(3, 1, "a2", UPDATE), *delete(4, 2), row(5, 3, "c")]
    assert live(state_of(records)) == {1: "a2", 3: "c"}


def test_replayed_duplicates_do_not_move_a_key_back():
    first = [row(1, 1, "a"), row(2, 1, "b", UPDATE), *delete(3, 1), row(4, 1, "again")]
    again = first[1:]  # a chunk published twice after a failed confirmation
    assert live(state_of(first + again)) == {1: "again"}
    assert live(state_of(first + first[:2])) == {1: "again"}


def test_a_tombstone_at_the_same_seq_follows_its_delete():
    assert live(state_of([row(1, 1, "a"), *delete(2, 1)])) == {}


def test_rows_older_than_the_latest_description_are_stale():
    # Description at seq 10 (resync or bootstrap): its snapshot rows are at >= 10.
    records = [row(3, 1, "old"), row(4, 2, "gone"), row(10, 1, "snap", SNAPSHOT), row(11, 3, "new")]
    assert live(state_of(records, schema_seq=10)) == {1: "snap", 3: "new"}


def test_a_dropped_table_has_no_rows():
    state = state_of([row(1, 1, "a")])
    state.note_schema("t", 5, None)
    assert state.tables() == {} and list(state.rows("t")) == []


def test_compare_reports_missing_extra_and_different():
    state = state_of([row(1, 1, "a"), row(2, 2, "b"), row(3, 4, "x")])
    source = {"t": {codec.encode_key([1]): codec.canonical_row(codec.encode_row_json(["id", "v"], [1, "a"])),
                    codec.encode_key([2]): codec.canonical_row(codec.encode_row_json(["id", "v"], [2, "B"])),
                    codec.encode_key([3]): codec.canonical_row(codec.encode_row_json(["id", "v"], [3, "c"]))}}
    check = compare(state, source)["t"]
    assert (check.missing, check.extra, check.different) == (1, 1, 1)
    assert {e["problem"] for e in check.examples} == {"missing", "extra", "different"}
