"""SQLite change capture: what is captured, in which order, and what is not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from trade_stream.errors import BadInputError
from trade_stream.events import DELETE, INSERT, SCHEMA, SNAPSHOT, UPDATE
from trade_stream.sqlite.capture import CHANGES, SqliteCapture
from trade_stream.sqlite.database import DatabaseService


def _setup(tmp_path: Path, ddl: str = "CREATE TABLE t (id INTEGER PRIMARY KEY, v)"):
    path = tmp_path / "db.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(ddl)
    db = DatabaseService(f"sqlite:///{path}")
    capture = SqliteCapture(db)
    capture.sync(conn)
    return conn, capture


def _events(conn, capture, after=0):
    return [e for batch in capture.read(conn, after, capture.last_seq(conn)) for e in batch]


def test_insert_update_delete_are_captured_in_commit_order_with_exact_values(tmp_path):
    conn, capture = _setup(tmp_path)
    conn.execute("INSERT INTO t VALUES (1, 9223372036854775807)")
    conn.execute("UPDATE t SET v = 0.1 WHERE id = 1")
    conn.execute("UPDATE t SET v = x'00ff' WHERE id = 1")
    conn.execute("DELETE FROM t WHERE id = 1")
    events = _events(conn, capture)
    assert [e.op for e in events] == [INSERT, UPDATE, UPDATE, DELETE]
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert events[0].row == [1, 9223372036854775807]
    assert events[1].row == [1, 0.1] and type(events[1].row[1]) is float
    assert events[2].row == [1, b"\x00\xff"]
    assert events[3].key == [1] and events[3].row is None


def test_rolled_back_transaction_leaves_nothing_and_no_seq_gap(tmp_path):
    conn, capture = _setup(tmp_path)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO t VALUES (1, 'a')")
    conn.execute("ROLLBACK")
    conn.execute("INSERT INTO t VALUES (2, 'b')")
    events = _events(conn, capture)
    assert [(e.seq, e.key) for e in events] == [(1, [2])]


def test_update_of_primary_key_carries_the_old_key(tmp_path):
    conn, capture = _setup(tmp_path)
    conn.execute("INSERT INTO t VALUES (1, 'a')")
    conn.execute("UPDATE t SET id = 5 WHERE id = 1")
    update = _events(conn, capture)[-1]
    assert update.key == [1] and update.row == [5, "a"]


def test_composite_keys_and_without_rowid_tables(tmp_path):
    conn, capture = _setup(tmp_path, "CREATE TABLE kv (k TEXT, n INTEGER, v, PRIMARY KEY (n, k)) WITHOUT ROWID")
    conn.execute("INSERT INTO kv VALUES ('a', 1, 'x')")
    conn.execute("DELETE FROM kv")
    events = _events(conn, capture)
    assert events[0].key == [1, "a"]  # primary-key order, not column order
    assert events[1].key == [1, "a"]


def test_install_is_idempotent_and_uninstall_removes_everything(tmp_path):
    conn, capture = _setup(tmp_path)
    report = capture.sync(conn)
    assert not report.installed and not report.changed
    assert not capture.needs_sync(conn)
    capture.uninstall(conn)
    leftovers = conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '%tradevault%'").fetchall()
    assert leftovers == []
    conn.execute("INSERT INTO t VALUES (1, 1)")  # the table still works


def test_a_table_without_primary_key_is_captured_by_its_whole_row(tmp_path):
    conn, capture = _setup(tmp_path)
    conn.execute("CREATE TABLE logs (line TEXT, n INTEGER)")
    report = capture.sync(conn)
    assert "logs" in report.installed and not report.warnings
    conn.execute("INSERT INTO logs VALUES ('x', 1), ('x', 1)")
    conn.execute("UPDATE logs SET n = 2 WHERE rowid = 2")
    conn.execute("DELETE FROM logs WHERE rowid = 1")
    events = [(e.op, e.key, e.row) for e in _events(conn, capture) if e.table == "logs"]
    assert events[-4:] == [("insert", [], ["x", 1]), ("insert", [], ["x", 1]),
                           ("update", ["x", 1], ["x", 2]), ("delete", ["x", 1], None)]


def test_exclude_is_the_only_way_to_leave_a_table_out(tmp_path):
    path = tmp_path / "db.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE logs (line TEXT)")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    capture = SqliteCapture(DatabaseService(f"sqlite:///{path}", exclude=["logs"]))
    report = capture.sync(conn)
    assert report.installed == ["t"]
    with pytest.raises(BadInputError, match="does not exist"):
        SqliteCapture(DatabaseService(f"sqlite:///{path}", include=["nope"])).sync(conn)


def test_added_column_is_recorded_as_schema_event_followed_by_a_resync(tmp_path):
    conn, capture = _setup(tmp_path)
    conn.execute("INSERT INTO t VALUES (1, 'a')")
    conn.execute("ALTER TABLE t ADD COLUMN extra REAL DEFAULT 2.5")
    assert capture.needs_sync(conn)
    report = capture.sync(conn)
    assert report.changed == ["t"]
    conn.execute("UPDATE t SET extra = 7.0 WHERE id = 1")
    events = _events(conn, capture)
    assert [e.op for e in events] == [INSERT, SCHEMA, SNAPSHOT, UPDATE]
    assert events[0].row == [1, "a"]  # old width before the change
    assert [c["name"] for c in events[1].table_schema["columns"]] == ["id", "v", "extra"]
    assert events[2].row == [1, "a", 2.5]
    assert events[3].row == [1, "a", 7.0]


def test_new_and_dropped_tables_are_recorded(tmp_path):
    conn, capture = _setup(tmp_path)
    conn.execute("CREATE TABLE u (id INTEGER PRIMARY KEY, w)")
    conn.execute("INSERT INTO u VALUES (1, 'w')")
    report = capture.sync(conn)
    assert report.installed == ["u"]
    conn.execute("DROP TABLE t")
    report = capture.sync(conn)
    assert report.dropped == ["t"]
    events = _events(conn, capture)
    assert [(e.table, e.op) for e in events] == [("u", SCHEMA), ("u", SNAPSHOT), ("t", SCHEMA)]
    assert events[-1].table_schema is None


def test_prune_keeps_the_newest_row_so_seqs_are_never_reused(tmp_path):
    conn, capture = _setup(tmp_path)
    for i in range(10):
        conn.execute("INSERT INTO t VALUES (?, ?)", (i, i))
    assert capture.prune(conn, 10, chunk=3) == 9
    assert conn.execute(f"SELECT seq FROM {CHANGES}").fetchall() == [(10,)]
    assert _events(conn, capture, after=10) == []
    conn.execute("BEGIN")
    conn.execute("INSERT INTO t VALUES (50, 1)")
    conn.execute("ROLLBACK")
    conn.execute("INSERT INTO t VALUES (100, 1)")
    assert capture.last_seq(conn) == 11
    assert [e.seq for e in _events(conn, capture, after=10)] == [11]
