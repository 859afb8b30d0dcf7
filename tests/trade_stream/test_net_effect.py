"""Folding events to their net effect: fewer, key-ordered statements, the same end state.

The property test drives a real SQLite database with capture installed through random
trading-like operations (insert or replace, update, update of the key, delete, a table
with a secondary UNIQUE column that must not be folded), reads the captured events, and
replays them into a copy of the starting database both in stream order and folded with a
tiny window: both must equal the source, row for row.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restore.net_effect import FoldingApplier, NetEffect
from restore.sqlite.apply import SqliteApplier
from trade_stream.events import DELETE, INSERT, SCHEMA, UPDATE, ChangeEvent
from trade_stream.sqlite.capture import SqliteCapture, remove_capture_objects
from trade_stream.sqlite.database import DatabaseService


def ev(seq: int, op: str, key: int, value: object = None, table: str = "t", new_key: int | None = None) -> ChangeEvent:
    row = None if op == DELETE else [key if new_key is None else new_key, value]
    return ChangeEvent(seq, seq, seq, table, op, [key], row)


def fold(events: list[ChangeEvent], fold_key=lambda table: [0], window: int = 1000) -> list[list[ChangeEvent]]:
    net = NetEffect(fold_key, window)
    return [*net.add(events), *net.drain()]


def shape(groups: list[list[ChangeEvent]]) -> list[list[tuple]]:
    return [[(e.op, e.key, e.row) for e in group] for group in groups]


def test_repeated_updates_of_a_row_become_one_update_with_the_last_image():
    groups = fold([ev(1, UPDATE, 7, "a"), ev(2, UPDATE, 7, "b"), ev(3, UPDATE, 7, "c")])
    assert shape(groups) == [[(UPDATE, [7], [7, "c"])]]


def test_folded_rows_come_out_deletes_then_updates_then_inserts_each_in_key_order():
    groups = fold([ev(1, UPDATE, 9, "u9"), ev(2, INSERT, 5, "i5"), ev(3, DELETE, 8), ev(4, UPDATE, 2, "u2"),
                   ev(5, INSERT, 1, "i1"), ev(6, DELETE, 3)])
    assert shape(groups) == [[(DELETE, [3], None), (DELETE, [8], None), (UPDATE, [2], [2, "u2"]),
                              (UPDATE, [9], [9, "u9"]), (INSERT, [1], [1, "i1"]), (INSERT, [5], [5, "i5"])]]


def test_a_row_deleted_then_inserted_again_is_deleted_then_inserted():
    groups = fold([ev(1, DELETE, 4), ev(2, INSERT, 4, "new"), ev(3, UPDATE, 4, "newer")])
    assert shape(groups) == [[(DELETE, [4], None), (INSERT, [4], [4, "newer"])]]


def test_a_row_updated_then_deleted_is_only_deleted():
    assert shape(fold([ev(1, UPDATE, 4, "x"), ev(2, DELETE, 4)])) == [[(DELETE, [4], None)]]


def test_a_row_inserted_then_deleted_keeps_both_so_the_delete_still_finds_it():
    groups = fold([ev(1, INSERT, 4, "x"), ev(2, DELETE, 4)])
    assert shape(groups) == [[(INSERT, [4], [4, "x"]), (DELETE, [4], None)]]


def test_a_key_change_settles_what_came_before_and_passes_through_in_order():
    groups = fold([ev(1, UPDATE, 2, "a"), ev(2, UPDATE, 2, "b", new_key=3), ev(3, UPDATE, 3, "c")])
    assert shape(groups) == [[(UPDATE, [2], [2, "a"]), (UPDATE, [2], [3, "b"]), (UPDATE, [3], [3, "c"])]]


def test_tables_that_may_not_fold_keep_every_event_in_order():
    events = [ev(1, UPDATE, 2, "a", table="u"), ev(2, UPDATE, 1, "b", table="u"), ev(3, UPDATE, 2, "c", table="u")]
    groups = fold(events, fold_key=lambda table: None)
    assert groups == [events]


def test_a_schema_event_releases_everything_held_before_it():
    schema = ChangeEvent(3, 3, 3, "t", SCHEMA, table_schema=None)
    groups = fold([ev(1, UPDATE, 1, "a"), ev(2, UPDATE, 1, "b"), schema, ev(4, INSERT, 1, "c")])
    assert shape(groups) == [[(UPDATE, [1], [1, "b"])], [(SCHEMA, None, None)], [(INSERT, [1], [1, "c"])]]


def test_the_window_bounds_how_many_events_are_held():
    events = [ev(i, UPDATE, i % 3, i) for i in range(1, 11)]
    net = NetEffect(lambda table: [0], window=4)
    released = []
    for event in events:
        released.append(sum(len(g) for g in net.add([event])))
    assert released == [0, 0, 0, 3, 0, 0, 0, 3, 0, 0]
    assert sum(len(g) for g in net.drain()) == 2


# -- the end state is the same: a real database, real capture ------------------------------------------------
SCHEMA_SQL = [
    "CREATE TABLE trades (id INTEGER PRIMARY KEY, pair TEXT, amount REAL, open INTEGER)",
    "CREATE TABLE kv (k TEXT, n INTEGER, v BLOB, PRIMARY KEY (k, n)) WITHOUT ROWID",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, ref TEXT UNIQUE, status TEXT)",
]

operation = st.one_of(
    st.tuples(st.just("upsert"), st.sampled_from(["trades", "kv", "orders"]), st.integers(0, 12), st.integers(0, 99)),
    st.tuples(st.just("update"), st.sampled_from(["trades", "kv", "orders"]), st.integers(0, 12), st.integers(0, 99)),
    st.tuples(st.just("rekey"), st.sampled_from(["trades", "orders"]), st.integers(0, 12), st.integers(0, 12)),
    st.tuples(st.just("delete"), st.sampled_from(["trades", "kv", "orders"]), st.integers(0, 12), st.just(0)),
)


def _run(conn: sqlite3.Connection, op: str, table: str, key: int, value: int) -> None:
    if op == "upsert":
        sql = {"trades": "INSERT OR REPLACE INTO trades VALUES (?, 'BTC/USDT', ?, 1)",
               "kv": "INSERT OR REPLACE INTO kv VALUES ('key' || ?, 1, CAST(? AS BLOB))",
               "orders": "INSERT OR REPLACE INTO orders VALUES (?, 'ref' || (? % 5), 'open')"}[table]
        conn.execute(sql, (key, value))
    elif op == "update":
        sql = {"trades": "UPDATE trades SET amount = ? WHERE id = ?",
               "kv": "UPDATE kv SET v = CAST(? AS BLOB) WHERE k = 'key' || ?",
               "orders": "UPDATE OR REPLACE orders SET ref = 'ref' || (? % 5) WHERE id = ?"}[table]
        conn.execute(sql, (value, key))
    elif op == "rekey":
        conn.execute(f"UPDATE OR REPLACE {table} SET id = ? WHERE id = ?", (value, key))
    else:
        column = "k = 'key' || ?" if table == "kv" else "id = ?"
        conn.execute(f"DELETE FROM {table} WHERE {column}", (key,))


def _rows(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in ("trades", "kv", "orders")}
    finally:
        conn.close()


def _replay(start: Path, target: Path, events: list[ChangeEvent], schema, window: int | None) -> None:
    shutil.copy(start, target)
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        conn.execute("BEGIN")
        remove_capture_objects(conn)
        applier = SqliteApplier(conn, schema)
        if window is None:
            applier.apply(events)
        else:
            folding = FoldingApplier(applier, window)
            for i in range(0, len(events), 5):
                folding.apply(events[i : i + 5])
            folding.finish()
        conn.execute("COMMIT")
    finally:
        conn.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=80), window=st.integers(1, 30))
def test_folded_replay_reaches_the_same_rows_as_replaying_every_event(tmp_path_factory, ops, window):
    tmp = tmp_path_factory.mktemp("fold")
    source = tmp / "source.sqlite"
    conn = sqlite3.connect(source, isolation_level=None)
    for sql in SCHEMA_SQL:
        conn.execute(sql)
    for i in range(0, 12, 2):  # a starting state the events partly build on
        _run(conn, "upsert", "trades", i, i)
        _run(conn, "upsert", "kv", i, i)
        _run(conn, "upsert", "orders", i, i)
    capture = SqliteCapture(DatabaseService(f"sqlite:///{source}"))
    capture.sync(conn)
    conn.close()
    start = tmp / "start.sqlite"
    shutil.copy(source, start)
    conn = sqlite3.connect(source, isolation_level=None)
    for op in ops:
        _run(conn, *op)
    events = [e for batch in capture.read(conn, 0, capture.last_seq(conn)) for e in batch]
    schema = capture.schema_at(conn, capture.last_seq(conn))
    conn.close()

    _replay(start, tmp / "ordered.sqlite", events, schema, None)
    _replay(start, tmp / "folded.sqlite", events, schema, window)
    expected = _rows(source)
    assert _rows(tmp / "ordered.sqlite") == expected
    assert _rows(tmp / "folded.sqlite") == expected


def test_sqlite_folds_only_tables_without_other_unique_constraints_or_collations(tmp_path):
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    conn.execute("CREATE TABLE plain (id INTEGER PRIMARY KEY, v)")
    conn.execute("CREATE TABLE composite (a TEXT, b INTEGER, v, PRIMARY KEY (b, a))")
    conn.execute("CREATE TABLE unique_ref (id INTEGER PRIMARY KEY, ref TEXT UNIQUE)")
    conn.execute("CREATE TABLE nocase (name TEXT COLLATE NOCASE PRIMARY KEY, v)")
    conn.execute("CREATE TABLE indexed (id INTEGER PRIMARY KEY, v)")
    conn.execute("CREATE INDEX indexed_v ON indexed (v)")
    db = DatabaseService(f"sqlite:///{tmp_path / 'db.sqlite'}")
    capture = SqliteCapture(db)
    capture.sync(conn)
    applier = SqliteApplier(conn, capture.schema_at(conn, capture.last_seq(conn)))
    assert applier.fold_key("plain") == [0]
    assert applier.fold_key("composite") == [1, 0]
    assert applier.fold_key("indexed") == [0]
    assert applier.fold_key("unique_ref") is None
    assert applier.fold_key("nocase") is None
    assert applier.fold_key("missing") is None
