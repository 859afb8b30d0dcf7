"""How a PostgreSQL restore shares tables out between its connections (pure)."""

from __future__ import annotations

from restore.postgres.staging import connections_for, share_out


def test_tables_are_shared_out_by_size_largest_first():
    sizes = {"trades": 500, "orders": 400, "pairs": 90, "kv": 10, "empty": 0}
    assert share_out(sizes, 2) == [["trades", "empty"], ["orders", "pairs", "kv"]]
    assert share_out(sizes, 1) == [["trades", "orders", "pairs", "kv", "empty"]]
    assert share_out({"a": 1}, 3) == [["a"], [], []]


def test_never_more_connections_than_tables():
    assert connections_for(1) == 1
    assert 1 <= connections_for(100) <= 4
