"""A SQLite snapshot's load into PostgreSQL shared out between worker processes
(restore/postgres/sqlite_load.py): the same database as the load on one connection, a
worker's failure reported in one line with the target untouched, a worker whose parent
is gone committing nothing; and the slicing, pure."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from restore.dispatch import choose_tables, restore_to
from restore.planner import Target, plan_restore
from restore.postgres import sqlite_load
from restore.postgres.sqlite_load import BATCH, LoadWorkers, Slice, plan_slices
from tests.postgres.pg_helpers import connect, digest, restore
from tests.postgres.test_cli import TV, tv
from tests.postgres.test_cross_dialect import SQLITE_TABLES, pg_rows, sqlite_rows
from trade_stream.errors import TradeStreamError
from trade_stream.schema import TableSchema
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore
from tradevault.workload import TradingWorkload, bulk_fill, create_database

pytestmark = pytest.mark.xdist_group("postgres")

TABLES = {"trades": ["id"], "orders": ["id"], "pairlocks": ["id"], "KeyValueStore": ["key", "value_type"]}


@pytest.fixture
def worker_runs(monkeypatch) -> list[int]:
    """Every load shared out between worker processes, whatever its size (and how many
    workers each ``LoadWorkers.run`` had jobs for)."""
    runs: list[int] = []
    real_run = LoadWorkers.run

    def run(self, jobs, counted):
        runs.append(len(jobs))
        return real_run(self, jobs, counted)

    monkeypatch.setattr(sqlite_load, "IN_PROCESS_ROWS", 1)
    monkeypatch.setattr(sqlite_load.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(LoadWorkers, "run", run)
    return runs


def _trading_store(work_dir: Path, rows: int) -> BackupStore:
    path = work_dir / "tradesv3.sqlite"
    create_database(path)
    bulk_fill(path, rows)  # trades and orders
    workload = TradingWorkload(path, seed=5)  # and every other table, with NULLs, JSON, BLOBs
    try:
        workload.run(200)
    finally:
        workload.close()
    store = BackupStore("bot", [open_location("one", f"file://{work_dir / 'loc'}")])
    BackupEngine(DatabaseService(f"sqlite:///{path}"), store).full()
    return store


def test_workers_load_the_same_database_as_one_connection(pg, work_dir, worker_runs):
    store = _trading_store(work_dir, 9000)
    shared = pg.new("shared")
    restore(store, shared, force=False)
    assert worker_runs == [2]  # both workers had slices
    sqlite_load.IN_PROCESS_ROWS = 10**12  # the same backup on the main connection alone
    alone = pg.new("alone")
    restore(store, alone, force=False)
    assert worker_runs == [2]
    assert digest(shared, TABLES) == digest(alone, TABLES)
    conn = connect(shared)
    try:
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in TABLES}
        leftovers = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tradevault_restore_%'")
        assert leftovers.fetchone()[0] == 0
    finally:
        conn.close()
    source = sqlite3.connect(work_dir / "tradesv3.sqlite")
    try:
        assert counts == {t: source.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in TABLES}
    finally:
        source.close()
    assert counts["orders"] >= 2 * BATCH  # big enough to be cut in two


def test_workers_load_only_the_chosen_tables_of_a_partial_restore(pg, work_dir, worker_runs):
    store = _trading_store(work_dir, 9000)
    plan = plan_restore(store.entries(), Target())
    choose_tables(store, plan, ["orders", "pairlocks"])
    some = pg.new("some")
    restore_to(store, plan, some)
    assert worker_runs == [2]
    whole = pg.new("whole")
    restore(store, whole, force=False)
    chosen = {t: TABLES[t] for t in ("orders", "pairlocks")}
    assert digest(some, chosen) == digest(whole, chosen)
    conn = connect(some)
    try:
        names = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    finally:
        conn.close()
    assert names == {"orders", "pairlocks"}


def test_a_worker_failure_is_one_line_and_leaves_the_target_untouched(pg, work_dir, worker_runs):
    path = work_dir / "bad.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE fills (id INTEGER PRIMARY KEY, filled_at DATETIME NOT NULL)")
    conn.executemany("INSERT INTO fills (filled_at) VALUES (?)", [(f"2026-01-01 00:00:{i % 60:02d}",)
                                                                 for i in range(5000)])
    conn.execute("UPDATE fills SET filled_at = 'soon' WHERE id = 4321")  # SQLite keeps any text
    conn.commit()
    conn.close()
    store = BackupStore("bad", [open_location("one", f"file://{work_dir / 'loc'}")])
    BackupEngine(DatabaseService(f"sqlite:///{path}"), store).full()
    target = pg.new("target")
    with pytest.raises(TradeStreamError) as failure:
        restore(store, target, force=False)
    assert worker_runs == [2]
    message = str(failure.value)
    assert "\n" not in message and "soon" in message and "timestamp" in message
    pg_conn = connect(target)
    try:
        tables = pg_conn.execute("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace IN"
                                 " (SELECT oid FROM pg_namespace WHERE nspname = 'public'"
                                 " OR nspname LIKE 'tradevault_restore_%')").fetchone()[0]
    finally:
        pg_conn.close()
    assert tables == 0


def test_a_worker_whose_parent_is_gone_commits_nothing(pg, work_dir):
    path = work_dir / "big.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE ticks (id INTEGER PRIMARY KEY, price FLOAT, note TEXT)")
    conn.executemany("INSERT INTO ticks (price, note) VALUES (?, ?)", [(i / 7, f"tick {i}") for i in range(300_000)])
    conn.commit()
    conn.close()
    target = pg.new("orphan")
    pg_conn = connect(target)
    pg_conn.execute("CREATE TABLE ticks (id integer, price double precision, note text)")
    table = TableSchema.from_dict({"name": "ticks", "columns": [
        {"name": "id", "declared": "integer", "family": "integer"},
        {"name": "price", "declared": "double precision", "family": "float"},
        {"name": "note", "declared": "text", "family": "text"}], "primary_key": ["id"], "dialect": "postgresql"})
    job = {"database": target, "session": ["SET synchronous_commit = off"], "snapshot": str(path),
           "tables": [table.to_dict()], "slices": [{"table": "ticks"}]}
    worker = subprocess.Popen([sys.executable, "-P", "-m", sqlite_load.WORKER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.write(json.dumps(job).encode() + b"\n")
    worker.stdin.flush()
    assert int(worker.stdout.readline()) == BATCH  # it is loading
    worker.stdin.close()  # what its parent's death does
    assert worker.wait(timeout=30) == 1
    try:
        assert pg_conn.execute("SELECT count(*) FROM ticks").fetchone()[0] == 0
    finally:
        pg_conn.close()


def test_the_cli_restores_a_big_sqlite_chain_through_worker_processes(pg, work_dir):
    """No patching: a database big enough for worker processes, a full backup and an
    incremental that changes rows the workers load, restored by the ``tradevault``
    command; every row equal to the SQLite database's under the documented mapping."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: the load runs on the main connection (test_workers_... covers workers)")
    path = work_dir / "tradesv3.sqlite"
    create_database(path)
    bulk_fill(path, 60_000)
    assert sqlite_load.worker_count(60_000) == min(4, os.cpu_count() or 1)
    (work_dir / "tradevault.toml").write_text(
        f'[database]\nurl = "sqlite:///{path}"\n\n[[locations]]\nname = "local"\n'
        f'url = "file://{work_dir / "backups"}"\n\n[agent]\nstate_dir = "{work_dir / "state"}"\n'
        f'\n[config_vcs]\npaths = []\n')
    assert tv(work_dir, "backup", "full", "--json").returncode == 0
    workload = TradingWorkload(path, seed=9)
    try:
        workload.run(300)
    finally:
        workload.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE orders SET status = 'closed', filled = amount WHERE id % 97 = 0")
    conn.commit()
    conn.close()
    incremental = tv(work_dir, "backup", "incremental", "--json")
    assert incremental.returncode == 0 and json.loads(incremental.stdout)["events"] > 400, incremental.stderr
    target = pg.new("big")
    restored = tv(work_dir, "restore", "--to", target, "--json")
    assert restored.returncode == 0, restored.stderr
    for table, key in SQLITE_TABLES.items():
        families, expected = sqlite_rows(path, table, key)
        assert pg_rows(target, table, key, families) == expected, table


def test_a_restore_killed_mid_load_leaves_no_worker_and_the_next_one_succeeds(pg, work_dir):
    """SIGKILL of the ``tradevault`` process while its workers COPY: they stop without
    committing (their pipes to it close: stdin, watched, and stdout, on their next progress
    line), and the next restore drops the schema the killed one left and restores."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: the load runs on the main connection")
    path = work_dir / "tradesv3.sqlite"
    create_database(path)
    bulk_fill(path, 300_000)
    (work_dir / "tradevault.toml").write_text(
        f'[database]\nurl = "sqlite:///{path}"\n\n[[locations]]\nname = "local"\n'
        f'url = "file://{work_dir / "backups"}"\n\n[agent]\nstate_dir = "{work_dir / "state"}"\n'
        f'\n[config_vcs]\npaths = []\n')
    assert tv(work_dir, "backup", "full").returncode == 0
    target = pg.new("killed")
    watch = connect(target)
    restore_cmd = [*TV, "restore", "--to", target, "-c", str(work_dir / "tradevault.toml")]
    proc = subprocess.Popen(restore_cmd, cwd=work_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while watch.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %%'"
                            " AND datname = current_database()").fetchone()[0] < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the restore ended before its workers COPYed"
            time.sleep(0.02)
        workers = [int(pid) for pid in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                                       text=True).stdout.split()]
        assert workers
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid) for pid in workers):
            assert time.monotonic() < deadline, "a worker outlived its parent"
            time.sleep(0.05)
        # the workers stopped mid-COPY, committing nothing: the schema the killed restore left
        # holds its tables (created before the load) without a row
        (left,) = watch.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tradevault_restore_%'"
                                ).fetchone()
        assert watch.execute(f'SELECT count(*) FROM "{left}".orders').fetchone()[0] == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        watch.close()
    again = tv(work_dir, "restore", "--to", target)
    assert again.returncode == 0, again.stderr
    assert "left by restores that were interrupted" in again.stderr
    conn = connect(target)
    try:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 200_000
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tradevault_restore_%'"
                            ).fetchone()[0] == 0
    finally:
        conn.close()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


def test_big_tables_are_cut_into_one_rowid_range_per_worker():
    shares = plan_slices({"orders": 600_000, "trades": 300_000}, {"orders": ("rowid", 1, 600_000),
                                                                   "trades": ("_rowid_", 5, 300_004)}, 2)
    assert shares == [[Slice("orders", 1, 300_001, "rowid"), Slice("trades", 5, 150_005, "_rowid_")],
                      [Slice("orders", 300_001, 600_001, "rowid"), Slice("trades", 150_005, 300_005, "_rowid_")]]


def test_small_and_rowless_tables_go_whole_to_the_lightest_worker():
    shares = plan_slices({"big": 100_000, "kv": 40_000, "locks": BATCH, "empty": 0},
                         {"big": ("rowid", 1, 100_000), "kv": None, "locks": ("rowid", 1, BATCH), "empty": None}, 2)
    assert shares == [[Slice("big", 1, 50_001), Slice("kv")],
                      [Slice("big", 50_001, 100_001), Slice("locks"), Slice("empty")]]


def test_one_worker_takes_every_table_whole():
    assert plan_slices({"a": 10, "b": 5}, {"a": ("rowid", 1, 10), "b": None}, 1) == [[Slice("a"), Slice("b")]]
