"""One conformance suite for every Source backend and every restore target: what the
CLI, the agent and the Kafka sink rely on, checked the same way on SQLite and on a real
PostgreSQL server (the storage locations have theirs in test_location_conformance.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from restore.dispatch import open_target, restore_to
from restore.planner import Target, plan_restore
from trade_stream.errors import BadInputError
from trade_stream.source import EngineOptions, Source, open_source
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore

pytestmark = pytest.mark.xdist_group("postgres")  # one worker, one cluster (tests/services.py)

ROWS = [(1, "a"), (2, "b"), (3, "c")]


class Backend:
    """A fresh database of one dialect with a keyed table, and plain SQL on it."""

    def __init__(self, dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.dialect = dialect
        if dialect == "sqlite":
            self.path = tmp_path / "src.sqlite"
            self.url = f"sqlite:///{self.path}"
        else:
            self.url = request.getfixturevalue("pg").new("conf")
        self.sql("CREATE TABLE t (id integer PRIMARY KEY, v text)")
        for row in ROWS:
            self.sql("INSERT INTO t VALUES (?, ?)", row)

    def sql(self, statement: str, params: tuple = ()) -> list[tuple]:
        if self.dialect == "sqlite":
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                return conn.execute(statement, params).fetchall()
            finally:
                conn.close()
        from trade_stream.postgres.database import PostgresDatabase

        with PostgresDatabase(self.url).connect() as conn:
            cursor = conn.execute(statement.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []

    def rows(self) -> list[tuple]:
        return sorted(tuple(r) for r in self.sql("SELECT id, v FROM t"))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path) -> Backend:
    return Backend(request.param, request, tmp_path)


@pytest.fixture
def store(tmp_path) -> BackupStore:
    return BackupStore("src", [open_location("one", f"file://{tmp_path / 'loc'}")])


def test_open_source_picks_the_backend_by_the_url(backend):
    source = open_source(backend.url)
    assert source.dialect == backend.dialect
    assert source.exists()
    source.require_exists()
    assert source.name and source.display_url
    assert (source.database_file is not None) == (backend.dialect == "sqlite")


def test_an_unknown_scheme_is_bad_input():
    with pytest.raises(BadInputError):
        open_source("mysql://user@host/db")


def test_full_installs_capture_and_incremental_stores_the_changes(backend, store):
    source: Source = open_source(backend.url)
    assert source.capture_id("src") is None
    assert source.capture_status(store, [])["installed"] is False
    engine = source.engine(store, EngineOptions())
    full = engine.full()
    assert full.kind == "full" and full.count == len(ROWS)
    capture_id = source.capture_id("src")
    assert capture_id and capture_id == store.entries()[-1].capture_id

    backend.sql("INSERT INTO t VALUES (?, ?)", (4, "d"))
    backend.sql("UPDATE t SET v = ? WHERE id = ?", ("B", 2))
    backend.sql("DELETE FROM t WHERE id = ?", (1,))
    watch = source.watch()
    if watch is not None:  # a backend that counts pending changes counts these three
        try:
            assert watch.pending(engine.store.entries()[-1].last_seq).events == 3
        finally:
            watch.close()
    incremental = source.engine(store).incremental()
    assert incremental.kind == "incremental" and incremental.count == 3
    status = source.capture_status(store, store.entries())
    assert status["installed"] is True and status.get("last_seq") is not None
    stored_upto = source.stored_upto()
    assert stored_upto is None or stored_upto <= incremental.last_seq


@pytest.mark.parametrize("target_dialect", ["sqlite", "postgresql"])
def test_every_target_restores_every_source_to_the_same_rows(backend, store, target_dialect, tmp_path, request):
    source = open_source(backend.url)
    source.engine(store).full()
    backend.sql("INSERT INTO t VALUES (?, ?)", (4, "d"))
    backend.sql("UPDATE t SET v = ? WHERE id = ?", ("B", 2))
    source.engine(store).incremental()
    url = f"sqlite:///{tmp_path / 'restored.sqlite'}" if target_dialect == "sqlite" else request.getfixturevalue(
        "pg").new("target")
    target = open_target(url)
    assert target.dialect == target_dialect
    result = restore_to(store, plan_restore(store.entries(), Target()), url)
    assert result.rows == 4
    restored = Backend.__new__(Backend)
    restored.dialect, restored.url = target_dialect, url
    if target_dialect == "sqlite":
        restored.path = tmp_path / "restored.sqlite"
    assert restored.rows() == backend.rows()


def test_uninstall_removes_capture_and_keeps_the_backups(backend, store):
    source = open_source(backend.url)
    source.engine(store).full()
    info = source.uninstall("src")
    assert isinstance(info, dict)
    assert source.capture_id("src") is None
    assert [e.kind for e in store.entries()] == ["full"]


def test_a_change_log_when_offered_reads_the_captured_events(backend, store):
    source = open_source(backend.url)
    source.engine(store).full()
    log = source.change_log()
    if log is None:
        pytest.skip(f"{backend.dialect} sources offer no re-readable change log (their events are read once)")
    backend.sql("INSERT INTO t VALUES (?, ?)", (9, "z"))
    conn = log.connect(readonly=True)
    try:
        assert log.is_installed(conn)
        last = log.last_seq(conn)
        events = [e for batch in log.read(conn, 0, last) for e in batch]
    finally:
        conn.close()
    assert [(e.op, e.row) for e in events if e.table == "t"][-1] == ("insert", [9, "z"])
