"""Consistency of PostgreSQL backups: a full backup under concurrent writes, a crash
between storing an incremental and advancing the slot, schema changes in the stream."""

from __future__ import annotations

import threading
import time

import pytest

from restore.verify import verify_store
from tests.postgres.pg_helpers import connect, digest, engine, execute, make_store, restore
from trade_stream.postgres.capture import PostgresCapture

pytestmark = pytest.mark.xdist_group("postgres")


def test_full_backup_under_concurrent_writes_is_a_consistent_cut(pg, work_dir):
    src, at_full, latest = pg.new("src"), pg.new("dst"), pg.new("dst")
    execute(src, "CREATE TABLE items (id bigint PRIMARY KEY, payload text)",
            "CREATE TABLE counter (id int PRIMARY KEY, v bigint)",
            "INSERT INTO items SELECT g, repeat('x', 200) || g FROM generate_series(1, 60000) g",
            "INSERT INTO counter VALUES (0, 60000)")
    stop = threading.Event()
    commits: list[float] = []

    def writer() -> None:
        conn = connect(src)
        i = 60000
        while not stop.is_set():
            i += 1
            with conn.transaction():
                conn.execute("INSERT INTO items VALUES (%s, 'w')", (i,))
                conn.execute("UPDATE counter SET v = %s WHERE id = 0", (i,))
            commits.append(time.monotonic())
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.2)
        store = make_store(work_dir)
        started = time.monotonic()
        full = engine(src, store).full()
        ended = time.monotonic()
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    assert sum(1 for t in commits if started < t < ended) > 0, "the writer was blocked during the full backup"
    engine(src, store).incremental()
    restore(store, at_full, seq=full.last_seq)
    conn = connect(at_full)
    try:
        (v,) = conn.execute("SELECT v FROM counter").fetchone()
        count, top = conn.execute("SELECT count(*), max(id) FROM items").fetchone()
    finally:
        conn.close()
    # one consistent cut: every transaction before it complete, none after it
    assert count == top == v and v == full.tables["items"] and v > 60000
    restore(store, latest)
    tables = {"items": ["id"], "counter": ["id"]}
    assert digest(latest, tables) == digest(src, tables)


def test_crash_between_storing_and_advancing_the_slot_replays_without_duplicates(pg, work_dir, monkeypatch):
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'a')")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "INSERT INTO t VALUES (2, 'b')", "UPDATE t SET v = 'a2' WHERE id = 1")

    def crash(self, conn, lsn):
        raise RuntimeError("simulated crash after publishing")

    monkeypatch.setattr(PostgresCapture, "advance", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        engine(src, store).incremental()
    monkeypatch.undo()
    first = store.entries()[-1]
    assert first.kind == "incremental" and first.count == 2  # stored and published
    execute(src, "DELETE FROM t WHERE id = 2", "INSERT INTO t VALUES (3, 'c')")
    second = engine(src, store).incremental()  # re-reads the unconfirmed changes, drops them
    assert second.count == 2 and second.first_seq > first.last_seq
    assert engine(src, store).incremental().skipped
    assert verify_store(store).ok
    restore(store, dst)
    assert digest(dst, {"t": ["id"]}) == digest(src, {"t": ["id"]})


def test_schema_changes_are_recorded_in_the_stream(pg, work_dir):
    src, before, after = pg.new("src"), pg.new("dst"), pg.new("dst")
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, v text)", "CREATE TABLE gone (id int PRIMARY KEY)",
            "CREATE TABLE emptied (id int PRIMARY KEY)", "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
            "INSERT INTO gone VALUES (1)", "INSERT INTO emptied VALUES (1), (2)")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "INSERT INTO t VALUES (3, 'c')")
    old_state = digest(src, {"t": ["id"], "gone": ["id"], "emptied": ["id"]})
    mid = engine(src, store).incremental()
    execute(src, "ALTER TABLE t ADD COLUMN extra numeric DEFAULT 1.50",
            "CREATE TABLE fresh (k text PRIMARY KEY, n bigint)", "INSERT INTO fresh VALUES ('x', 1)",
            "DROP TABLE gone", "TRUNCATE emptied", "INSERT INTO emptied VALUES (5)",
            "INSERT INTO t VALUES (4, 'd', 2.25)")
    changed = engine(src, store).incremental()
    assert changed.tables == {"t": 4, "fresh": 1, "emptied": 1}
    execute(src, "UPDATE t SET extra = 9 WHERE id = 1", "INSERT INTO fresh VALUES ('y', 2)")
    engine(src, store).incremental()
    restore(store, before, seq=mid.last_seq)
    assert digest(before, {"t": ["id"], "gone": ["id"], "emptied": ["id"]}) == old_state
    restore(store, after)
    tables = {"t": ["id"], "fresh": ["k"], "emptied": ["id"]}
    assert digest(after, tables) == digest(src, tables)
    conn = connect(after)
    try:
        assert conn.execute("SELECT to_regclass('gone')").fetchone()[0] is None
    finally:
        conn.close()
