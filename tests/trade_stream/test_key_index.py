"""The key index of an incremental (trade_stream/key_index.py): never a false negative,
few false positives, and one canonical form of a key whatever type it was decoded as."""

from __future__ import annotations

import datetime as dt
import decimal
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from trade_stream.events import DELETE, INSERT, SCHEMA, UPDATE, ChangeEvent
from trade_stream.key_index import KeyIndex, KeyIndexBuilder, canonical, index_problem, key_bytes
from trade_stream.schema import Column, TableSchema

TRADES = TableSchema("trades", [Column("id", "INTEGER", "integer"), Column("pair", "TEXT", "text")], ["id"], "sqlite")
PAIRS = TableSchema("balances", [Column("ex", "TEXT", "text"), Column("asset", "TEXT", "text"),
                                 Column("free", "INTEGER", "integer")], ["ex", "asset"], "sqlite")
LOG = TableSchema("log", [Column("line", "TEXT", "text")], [], "sqlite")


def _index(events: list[ChangeEvent], tables: list[TableSchema]) -> KeyIndex:
    builder = KeyIndexBuilder(tables)
    for i in range(0, len(events), 7):  # fed in batches, as the writers do
        builder.add(events[i:i + 7])
    return KeyIndex({"keys": builder.to_header()})


def test_equal_values_of_different_types_have_one_canonical_form() -> None:
    assert canonical(42) == canonical(42.0) == canonical(decimal.Decimal("42.000")) == "42"
    assert canonical(decimal.Decimal("1.50")) == canonical(1.5) == "1.5"
    assert canonical(1e-7) == canonical(decimal.Decimal("0.0000001"))
    aware = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert canonical(aware) == canonical(dt.datetime(2026, 1, 1, 10, tzinfo=dt.timezone.utc))
    assert canonical(True) == canonical(1) and canonical(None) != canonical("")
    assert key_bytes(["a", "b"]) != key_bytes(["ab"]) and key_bytes([1, 23]) != key_bytes([12, 3])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=300, unique=True), st.randoms())
def test_every_key_an_incremental_touches_is_found(ids: list[int], rng: random.Random) -> None:
    events = []
    for seq, key in enumerate(ids, 1):
        op = rng.choice([INSERT, UPDATE, DELETE])
        events.append(ChangeEvent(seq, seq, 0, "trades", op, [key], None if op == DELETE else [key, "x"]))
    index = _index(events, [TRADES])
    assert all(index.may_hold("trades", key_bytes([k])) for k in ids)
    assert not index.touches("balances") and not index.may_hold("balances", key_bytes(["a", "b"]))


def test_false_positives_stay_near_the_designed_rate() -> None:
    ids = random.Random(3).sample(range(10**9), 20_000)
    index = _index([ChangeEvent(i, i, 0, "trades", UPDATE, [k], [k, "x"]) for i, k in enumerate(ids)], [TRADES])
    absent = [k for k in range(10**9 + 1, 10**9 + 20_001)]
    rate = sum(index.may_hold("trades", key_bytes([k])) for k in absent) / len(absent)
    assert rate < 0.01, rate  # designed: 1/256


def test_an_update_that_moves_a_key_indexes_both_keys_and_composite_keys_work() -> None:
    events = [ChangeEvent(1, 1, 0, "trades", UPDATE, [5], [6, "x"]),
              ChangeEvent(2, 2, 0, "balances", UPDATE, ["kraken", "ETH"], ["kraken", "ETH", 3])]
    index = _index(events, [TRADES, PAIRS])
    assert index.may_hold("trades", key_bytes([5])) and index.may_hold("trades", key_bytes([6]))
    assert index.may_hold("balances", key_bytes(["kraken", "ETH"]))


def test_unhashable_keys_and_keyless_tables_are_still_answered() -> None:
    arrays = TableSchema("arr", [Column("k", "integer[]", "other")], ["k"], "postgresql")
    events = [ChangeEvent(1, 1, 0, "arr", INSERT, [[1, 2]], [[1, 2]]),
              ChangeEvent(2, 2, 0, "log", INSERT, ["started"], ["started"])]
    index = _index(events, [arrays, LOG])
    assert index.may_hold("arr", key_bytes([[1, 2]]))
    assert index.touches("log") and index.may_hold("log", b"anything")  # no fingerprints: may hold any row


def test_a_table_created_inside_the_object_is_indexed_from_its_schema_event() -> None:
    events = [ChangeEvent(1, 1, 0, "fresh", SCHEMA, table_schema=TableSchema(
        "fresh", [Column("id", "INTEGER", "integer")], ["id"], "sqlite").to_dict()),
        ChangeEvent(2, 2, 0, "fresh", INSERT, [77], [77])]
    index = _index(events, [])
    assert index.may_hold("fresh", key_bytes([77])) and index.touches("fresh")


def test_the_index_names_the_tables_an_object_recreates() -> None:
    """A recreated table (SCHEMA, then a SNAPSHOT of each row it holds) loses rows without an
    event of theirs: history must read such an object whatever its keys say."""
    events = [ChangeEvent(1, 1, 0, "trades", UPDATE, [1], [1, "a"]),
              ChangeEvent(2, 2, 0, "trades", SCHEMA, table_schema=TRADES.to_dict()),
              ChangeEvent(3, 2, 0, "log", INSERT, None, ["x"])]
    index = _index(events, [TRADES, LOG])
    assert index.recreates("trades") is True and index.recreates("log") is False
    assert KeyIndex({"keys": {"version": 2, "touched": ["trades"], "fingerprints": {}}}).recreates("trades") is None
    built = KeyIndexBuilder([TRADES]).to_header()
    assert index_problem(built, dict(built, recreated=["trades"])) != ""
    assert index_problem(built, {k: v for k, v in built.items() if k != "recreated"}) == ""  # an older index


def test_an_object_without_an_index_may_hold_anything() -> None:
    old = KeyIndex({"sequences": {}})
    assert not old.known and old.touches("trades") and old.may_hold("trades", key_bytes([1]))


def test_a_key_is_found_whatever_number_type_it_was_stored_as() -> None:
    numeric = TableSchema("fills", [Column("id", "numeric(20,0)", "numeric")], ["id"], "postgresql")
    events = [ChangeEvent(i, i, 0, "fills", INSERT, [decimal.Decimal(k)], [decimal.Decimal(k)])
              for i, k in enumerate(["42", "1.50", "-7"], 1)]
    index = _index(events, [numeric])
    for typed in (42, 42.0, decimal.Decimal("42.00"), 1.5, decimal.Decimal("1.5"), -7):
        assert index.may_hold("fills", key_bytes([typed])), typed


def test_a_key_in_its_wire_form_is_found_by_its_value() -> None:
    """The PostgreSQL decoder hands events over with values in their wire form (a Decimal, a
    datetime, a uuid as a msgpack extension): the index built from them must answer a
    lookup by the value itself. Before, an extension's canonical text was its object's
    address, so history skipped every object for a row keyed by a timestamp or a uuid."""
    import uuid

    from trade_stream.values import to_wire

    fills = TableSchema("fills", [Column("at", "timestamp with time zone", "datetime"),
                                  Column("id", "uuid", "uuid"), Column("px", "numeric", "numeric")],
                        ["at", "id"], "postgresql")
    at = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)
    ident = uuid.UUID(int=7)
    wire = [to_wire(at), to_wire(ident)]
    index = _index([ChangeEvent(1, 1, 1, "fills", INSERT, wire, [*wire, to_wire(decimal.Decimal("1.5"))])], [fills])
    assert index.may_hold("fills", key_bytes([at, ident]))
    assert key_bytes(wire) == key_bytes([at, ident])
    header = {"keys": {**KeyIndexBuilder([fills]).to_header(), "version": 1}}  # written before the fix
    assert KeyIndex(header).may_hold("fills", key_bytes([at, ident]))  # not trusted: may hold anything


def test_verify_deep_reports_a_key_index_that_misses_a_key(tmp_path) -> None:
    """A key index that left a key out would hide that row's versions from history:
    ``verify --deep`` rebuilds each incremental's index from its events and compares."""
    from restore.verify import verify_store
    from trade_stream.manifest import FULL, INCREMENTAL, object_key
    from trade_stream.object_format import CODEC_EVENTS, CODEC_SQLITE_FILE
    from trade_stream.publish import Publisher
    from trade_stream.segments import encode_chunk
    from trade_stream.storage.locations import open_location
    from trade_stream.storage.store import BackupStore

    store = BackupStore("src", [open_location("local", f"file://{tmp_path}")])
    publisher = Publisher(store, "src")
    schema = {"dialect": "sqlite", "tables": [TRADES.to_dict()]}
    full = publisher.store_object(object_key(1, FULL), publisher.header(FULL, CODEC_SQLITE_FILE, 0, 0, schema, "c"),
                                  lambda w: w.write(b"x"))
    entry, _ = publisher.publish_entry(full, None, n=1, kind=FULL, object=object_key(1, FULL), capture_id="c",
                                       after_seq=0, first_seq=0, last_seq=0, first_ts=1, last_ts=1, count=0,
                                       schema_hash="")
    events = [ChangeEvent(seq, seq, 1, "trades", INSERT, [seq], [seq, "x"]) for seq in (1, 2, 3)]
    honest = KeyIndexBuilder([TRADES])
    honest.add(events[:2])  # the index of an object that holds only the first two rows
    header = publisher.header(INCREMENTAL, CODEC_EVENTS, 0, 3, schema, "c", 1, 1, 3, {"keys": honest.to_header()})
    stored = publisher.store_object(object_key(2, INCREMENTAL), header, lambda w: w.write(encode_chunk(events)))
    publisher.publish_entry(stored, entry, n=2, kind=INCREMENTAL, object=object_key(2, INCREMENTAL),
                            capture_id="c", after_seq=0, first_seq=1, last_seq=3, first_ts=1, last_ts=1, count=3,
                            schema_hash="")
    assert verify_store(store).ok  # checksums and chain are fine
    problems = [p["problem"] for p in verify_store(store, deep=True).problems]
    assert any("key index of table 'trades' differs" in p for p in problems), problems


def test_a_table_with_more_keys_than_the_bound_is_touched_but_not_indexed(monkeypatch) -> None:
    from trade_stream import key_index

    monkeypatch.setattr(key_index, "MAX_KEYS", 50)
    many = [ChangeEvent(i, i, 0, "trades", UPDATE, [i], [i, "x"]) for i in range(1, 52)]
    few = [ChangeEvent(100 + i, 100 + i, 0, "balances", INSERT, None, ["ex", f"a{i}", i]) for i in range(10)]
    # a schema change after the bound must not start the table's keys afresh (that index
    # would lack the keys before it: a false negative)
    schema = ChangeEvent(200, 200, 0, "trades", SCHEMA, None, None, table_schema=TRADES.to_dict())
    later = [ChangeEvent(201, 201, 0, "trades", INSERT, None, [10**6, "y"])]
    builder = KeyIndexBuilder([TRADES, PAIRS])
    for batch in (many[:30], many[30:], few, [schema], later):
        builder.add(batch)
    header = builder.to_header()
    assert header["touched"] == ["balances", "trades"] and list(header["fingerprints"]) == ["balances"]
    index = KeyIndex({"keys": header})
    assert all(index.may_hold("trades", key_bytes([k])) for k in (1, 51, 10**6, 424242))
    assert index.may_hold("balances", key_bytes(["ex", "a3"]))
