"""Runs of events: what appliers batch into one statement."""

from trade_stream.events import ChangeEvent, runs


def _e(seq, table, op):
    return ChangeEvent(seq, seq, 0, table, op, [seq], None if op == "delete" else [seq])


def test_runs_keep_order_group_table_and_op_and_isolate_schema_events():
    events = [_e(1, "a", "insert"), _e(2, "a", "insert"), _e(3, "a", "update"), _e(4, "b", "update"),
              _e(5, "b", "schema"), _e(6, "b", "schema"), _e(7, "b", "update"), _e(8, "b", "update")]
    assert [(t, op, [e.seq for e in run]) for t, op, run in runs(events)] == [
        ("a", "insert", [1, 2]), ("a", "update", [3]), ("b", "update", [4]),
        ("b", "schema", [5]), ("b", "schema", [6]), ("b", "update", [7, 8]),
    ]
    assert list(runs([])) == []
