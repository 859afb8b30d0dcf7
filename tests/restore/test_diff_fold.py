"""The net effect of a window of events, per table (restore/diff.py's pure core): what
``tradevault diff`` counts, on events made by hand."""

from __future__ import annotations

from restore.diff import WindowFold, _table_diff
from trade_stream.events import DELETE, INSERT, SCHEMA, SNAPSHOT, UPDATE, ChangeEvent
from trade_stream.key_index import key_bytes
from trade_stream.schema import Column, TableSchema

TRADES = TableSchema("trades", [Column("id", "INTEGER", "integer"), Column("v", "TEXT", "text")], ["id"], "sqlite")
LOG = TableSchema("log", [Column("line", "TEXT", "text")], [], "sqlite")
ARRAYS = TableSchema("arr", [Column("k", "integer[]", "other"), Column("v", "text", "text")], ["k"], "postgresql")


class NoEarlierState:
    """The earlier point's rows, for a window that never needs them."""

    def rows(self, table, key_columns, keys):
        raise AssertionError(f"the counts of {table} should not need the earlier state")


def _counts(events: list[ChangeEvent], tables=(TRADES, LOG), batch: int = 3) -> dict[str, tuple[int, int, int]]:
    fold = WindowFold(tables, rows=False)
    for i in range(0, len(events), batch):
        fold.add(events[i:i + batch])
    out = {}
    for name, table_fold in fold.tables.items():
        diff = _table_diff(name, table_fold, False, NoEarlierState())
        out[name] = (diff.inserted, diff.updated, diff.deleted)
    return out


def _e(seq: int, op: str, key, row=None, table: str = "trades") -> ChangeEvent:
    return ChangeEvent(seq, seq, seq, table, op, key, row)


def test_a_row_inserted_and_deleted_inside_the_window_counts_nowhere() -> None:
    events = [_e(1, INSERT, [1], [1, "a"]), _e(2, UPDATE, [1], [1, "b"]), _e(3, DELETE, [1])]
    assert _counts(events) == {"trades": (0, 0, 0)}


def test_first_and_last_operation_decide_each_row() -> None:
    events = [
        _e(1, UPDATE, [1], [1, "x"]), _e(2, UPDATE, [1], [1, "y"]),  # there before, there after: updated
        _e(3, DELETE, [2]), _e(4, INSERT, [2], [2, "again"]),  # deleted and inserted again: updated
        _e(5, INSERT, [3], [3, "new"]),  # inserted
        _e(6, UPDATE, [4], [4, "z"]), _e(7, DELETE, [4]),  # there before, gone after: deleted
    ]
    assert _counts(events) == {"trades": (1, 2, 1)}
    assert _counts(events, batch=1) == _counts(events, batch=100)  # batching changes nothing


def test_an_update_that_changes_the_key_is_a_delete_and_an_insert() -> None:
    events = [_e(1, UPDATE, [1], [10, "moved"]), _e(2, UPDATE, [10], [10, "again"])]
    assert _counts(events) == {"trades": (1, 0, 1)}


def test_a_keyless_table_counts_rows_in_and_out_as_a_multiset() -> None:
    events = [_e(1, INSERT, ["a"], ["a"], "log"), _e(2, INSERT, ["a"], ["a"], "log"),
              _e(3, UPDATE, ["a"], ["b"], "log"), _e(4, DELETE, ["z"], None, "log")]
    # net: one "a" more (two in, one out by the update), one "b" more, one "z" less
    assert _counts(events) == {"log": (2, 0, 1)}


def test_unhashable_keys_fold_by_their_canonical_text() -> None:
    events = [ChangeEvent(1, 1, 1, "arr", INSERT, [[1, 2]], [[1, 2], "x"]),
              ChangeEvent(2, 2, 2, "arr", UPDATE, [[1, 2]], [[1, 2], "y"]),
              ChangeEvent(3, 3, 3, "arr", UPDATE, [[3]], [[3], "z"])]
    assert _counts(events, tables=(ARRAYS,)) == {"arr": (1, 1, 0)}


class Earlier:
    """The earlier point: rows 1 and 3 of trades, two equal lines and one more in log."""

    every = {"trades": [{"id": 1, "v": "old"}, {"id": 3, "v": "gone"}], "log": [{"line": "a"}, {"line": "a"},
                                                                               {"line": "b"}]}

    def rows(self, table, key_columns, keys):
        wanted = {tuple(k) for k in keys}
        return {key_bytes([r[c] for c in key_columns]): r for r in self.every[table]
                if tuple(r[c] for c in key_columns) in wanted}

    def every_row(self, table):
        return self.every[table]


def test_a_resynchronised_row_asks_the_earlier_state_whether_it_existed() -> None:
    fold = WindowFold([TRADES], rows=False)
    fold.add([ChangeEvent(1, 1, 1, "trades", SCHEMA, table_schema=TRADES.to_dict()),
              _e(2, SNAPSHOT, [1], [1, "old"]), _e(3, SNAPSHOT, [2], [2, "new"])])
    diff = _table_diff("trades", fold.tables["trades"], False, Earlier())  # type: ignore[arg-type]
    assert (diff.inserted, diff.updated, diff.deleted) == (1, 1, 1) and fold.schema_changed == {"trades"}


def test_a_recreated_table_loses_the_rows_its_snapshot_does_not_bring_back() -> None:
    """A schema change recreates the table: its SCHEMA event, then a SNAPSHOT of each row it
    holds. Row 3, there at the start and deleted before the resynchronisation, is in no
    event; it was counted nowhere (and, with an earlier resync in the window, as updated
    with its old image). Row 4, inserted in the window and gone by the resync, counts
    nowhere."""
    fold = WindowFold([TRADES, LOG], rows=True)
    fold.add([_e(2, UPDATE, [1], [1, "mid"]), _e(3, INSERT, [4], [4, "new"]), _e(4, UPDATE, [3], [3, "mid"]),
              ChangeEvent(5, 5, 5, "trades", SCHEMA, table_schema=TRADES.to_dict()),
              _e(6, SNAPSHOT, [1], [1, "end"]),
              ChangeEvent(7, 7, 7, "log", INSERT, None, ["c"]),
              ChangeEvent(8, 8, 8, "log", SCHEMA, table_schema=LOG.to_dict()),
              ChangeEvent(9, 9, 9, "log", SNAPSHOT, None, ["a"])])
    trades = _table_diff("trades", fold.tables["trades"], True, Earlier())  # type: ignore[arg-type]
    assert [(r.op, r.key, r.before, r.after) for r in trades.rows or []] == [
        ("updated", {"id": 1}, {"id": 1, "v": "old"}, {"id": 1, "v": "end"}),
        ("deleted", {"id": 3}, {"id": 3, "v": "gone"}, None)]
    log = _table_diff("log", fold.tables["log"], False, Earlier())  # type: ignore[arg-type]
    assert (log.inserted, log.updated, log.deleted) == (0, 0, 2)  # one "a" and the "b" went


def test_the_drop_of_a_table_the_window_never_saw_is_only_a_schema_change() -> None:
    fold = WindowFold([TRADES], rows=False)
    fold.add([ChangeEvent(1, 1, 1, "scratch", SCHEMA, table_schema=None)])
    assert fold.tables == {} and fold.schema_changed == {"scratch"}
