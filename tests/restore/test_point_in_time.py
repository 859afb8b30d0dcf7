"""Restore at any point equals the source as it was then, cell by cell with storage class.

Random schemas, values of every SQLite storage class and random transaction sequences
(some rolled back); backups at random moments; restores at random transaction
boundaries compared with reference digests recorded when the source was at that point.
The boundaries are handed to each incremental as the agent's watch would (``commit_points``):
SQLite itself reports none.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restore.planner import Target, plan_restore
from restore.sqlite.replay import restore_sqlite
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.capture import SqliteCapture
from trade_stream.sqlite.database import DatabaseService
from trade_stream.sqlite.digest import database_digest
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore

TYPES = ["INTEGER", "REAL", "NUMERIC", "TEXT", "BLOB", "BOOLEAN", "DATE", "DATETIME", "JSON", "DECIMAL(10,2)", ""]

values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20),
    st.binary(max_size=20),
    st.sampled_from(["2026-01-01 12:00:00.123456", "2026-01-01T12:00:00+02:00", "1.50", "007", "1e3"]),
)


@st.composite
def schemas(draw):
    tables = {}
    for i in range(draw(st.integers(1, 3))):
        ncols = draw(st.integers(1, 6))
        cols = [(f"c{j}", draw(st.sampled_from(TYPES))) for j in range(ncols)]
        composite = draw(st.booleans())
        tables[f"t{i}"] = (cols, composite)
    return tables


def _ddl(name, cols, composite):
    body = ", ".join(f'"{c}" {t}'.rstrip() for c, t in cols)
    if composite:
        return f'CREATE TABLE "{name}" (k1 TEXT NOT NULL, k2 INTEGER NOT NULL, {body}, PRIMARY KEY (k1, k2))'
    return f'CREATE TABLE "{name}" (id INTEGER PRIMARY KEY, {body})'


@st.composite
def scenarios(draw):
    schema = draw(schemas())
    steps = []
    for _ in range(draw(st.integers(2, 25))):
        kind = draw(st.sampled_from(["tx", "tx", "tx", "rollback", "incremental"]))
        ops = []
        for _ in range(draw(st.integers(1, 5))):
            table = draw(st.sampled_from(sorted(schema)))
            ncols = len(schema[table][0])
            ops.append((draw(st.sampled_from(["insert", "insert", "update", "delete"])), table,
                        draw(st.integers(0, 6)), [draw(values) for _ in range(ncols)]))
        steps.append((kind, ops))
    full_at = draw(st.integers(0, len(steps)))
    return schema, steps, full_at


def _key(schema, table, k):
    return ("k" + str(k % 3), k) if schema[table][1] else (k,)


def _apply(conn, schema, op, table, k, row):
    cols, composite = schema[table]
    key_cols = ["k1", "k2"] if composite else ["id"]
    key = _key(schema, table, k)
    names = key_cols + [c for c, _ in cols]
    where = " AND ".join(f"{c} = ?" for c in key_cols)
    if op == "insert":
        conn.execute(
            f'INSERT OR REPLACE INTO "{table}" ({", ".join(names)}) VALUES ({", ".join("?" * len(names))})',
            (*key, *row),
        )
    elif op == "update":
        sets = ", ".join(f'"{c}" = ?' for c, _ in cols)
        conn.execute(f'UPDATE "{table}" SET {sets} WHERE {where}', (*row, *key))
    else:
        conn.execute(f'DELETE FROM "{table}" WHERE {where}', key)


def _digest(path, schema):
    conn = sqlite3.connect(path)
    try:
        return database_digest(conn, {t: (["k1", "k2"] if c else ["id"]) for t, (_, c) in schema.items()})
    finally:
        conn.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_restore_at_every_recorded_point_equals_the_source_then(scenario):
    schema, steps, full_at = scenario
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "src.sqlite"
        conn = sqlite3.connect(path, isolation_level=None)
        for name, (cols, composite) in schema.items():
            conn.execute(_ddl(name, cols, composite))
        db = DatabaseService(f"sqlite:///{path}")
        store = BackupStore("src", [open_location("l", f"file://{root / 'backups'}")])
        engine = BackupEngine(db, store)
        capture = SqliteCapture(db)
        points: dict[int, dict[str, str]] = {}
        full_taken = False
        for index, (kind, ops) in enumerate(steps):
            if index == full_at:
                engine.full()
                full_taken = True
                points[capture.last_seq(conn)] = _digest(path, schema)
            if kind == "incremental":
                if full_taken:
                    engine.incremental(sorted(points))
                continue
            conn.execute("BEGIN")
            for op in ops:
                _apply(conn, schema, *op)
            conn.execute("ROLLBACK" if kind == "rollback" else "COMMIT")
            if full_taken:
                points[capture.last_seq(conn)] = _digest(path, schema)
        if not full_taken:
            engine.full()
            points[capture.last_seq(conn)] = _digest(path, schema)
        engine.incremental(sorted(points))
        conn.close()
        for i, (seq, expected) in enumerate(sorted(points.items())):
            target = root / f"restored-{i}.sqlite"
            plan = plan_restore(store.entries(), Target(seq=seq))
            result = restore_sqlite(store, plan, DatabaseService(f"sqlite:///{target}"))
            assert result.last_seq <= seq
            assert _digest(target, schema) == expected, f"restore at seq {seq} differs"
        latest = root / "latest.sqlite"
        restore_sqlite(store, plan_restore(store.entries(), Target()), DatabaseService(f"sqlite:///{latest}"))
        assert _digest(latest, schema) == _digest(path, schema)


def test_restore_by_time_lands_between_the_right_transactions(harness):
    harness.trade(50)
    harness.engine.full()
    moments = []
    seen: list[int] = []  # the commit points a watch would have seen
    conn = sqlite3.connect(harness.db_path)
    capture = SqliteCapture(harness.db)
    for round_ in range(4):
        harness.trade(30)
        seen.append(capture.last_seq(conn))
        time.sleep(0.003)  # statement times have millisecond resolution
        moments.append((time.time_ns() // 1000, _demo_digest(harness.db_path)))
        time.sleep(0.003)
        if round_ % 2:
            harness.engine.incremental(seen)
    harness.trade(10)
    harness.engine.incremental(seen)
    conn.close()
    for i, (moment, expected) in enumerate(moments):
        target = harness.root / f"at-{i}.sqlite"
        restore_sqlite(harness.store, plan_restore(harness.store.entries(), Target(ts=moment)),
                       DatabaseService(f"sqlite:///{target}"))
        assert _demo_digest(target) == expected


def test_schema_change_is_replayed_at_its_position(harness):
    harness.trade(40)
    harness.engine.full()
    harness.trade(20)
    conn = sqlite3.connect(harness.db_path, isolation_level=None)
    conn.execute("ALTER TABLE trades ADD COLUMN funding_fees REAL DEFAULT 0.0")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    harness.engine.incremental()  # notices the change, records it, resyncs both tables
    conn.execute("INSERT INTO notes VALUES (1, 'hello')")
    conn.execute("UPDATE trades SET funding_fees = 1.25")
    conn.close()
    harness.trade(20)
    harness.engine.incremental()
    target = harness.root / "restored.sqlite"
    restore_sqlite(harness.store, plan_restore(harness.store.entries(), Target()),
                   DatabaseService(f"sqlite:///{target}"))
    keys = {"trades": ["id"], "orders": ["id"], "notes": ["id"]}
    assert _digest_tables(target, keys) == _digest_tables(harness.db_path, keys)


def _digest_tables(path, keys):
    conn = sqlite3.connect(path)
    try:
        return database_digest(conn, keys)
    finally:
        conn.close()


def _demo_digest(path):
    from tests.conftest import DEMO_KEYS

    return _digest_tables(path, DEMO_KEYS)
