"""Hot standby: follow during a live workload, kill and restart the follower, promote;
the promoted database equals the source at the same seq."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from restore.standby import POSITION, Follower, read_position
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.capture import SqliteCapture
from trade_stream.sqlite.database import DatabaseService
from trade_stream.sqlite.digest import database_digest
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore
from tradevault.workload import TradingWorkload, create_database

KEYS = {"trades": ["id"], "orders": ["id"], "pairlocks": ["id"], "KeyValueStore": ["key", "value_type"]}


def _digest(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return database_digest(conn, KEYS)
    finally:
        conn.close()


def test_follower_applies_each_new_segment_once_and_rebuilds_on_a_new_chain(tmp_path):
    db_path = tmp_path / "src.sqlite"
    create_database(db_path)
    workload = TradingWorkload(db_path, seed=4)
    db = DatabaseService(f"sqlite:///{db_path}")
    store = BackupStore("src", [open_location("l", f"file://{tmp_path / 'b'}")])
    engine = BackupEngine(db, store)
    workload.run(100)
    engine.full()
    standby = DatabaseService(f"sqlite:///{tmp_path / 'standby.sqlite'}")
    follower = Follower(store, standby)
    assert follower.sync_once().rebuilt
    for _ in range(3):
        workload.run(60)
        engine.incremental()
        result = follower.sync_once()
        assert not result.rebuilt and result.applied > 0
        assert _digest(tmp_path / "standby.sqlite") == _digest(db_path)
    assert Follower(store, standby).sync_once().applied == 0  # idempotent: nothing twice
    conn = sqlite3.connect(db_path, isolation_level=None)
    SqliteCapture(db).uninstall(conn)  # the source starts a new chain (as after a recovery)
    conn.close()
    workload.run(30)
    engine.full()
    assert Follower(store, standby).sync_once().rebuilt
    assert _digest(tmp_path / "standby.sqlite") == _digest(db_path)
    workload.close()


def test_follow_kill_restart_and_promote_through_the_cli(tmp_path):
    db_path = tmp_path / "src.sqlite"
    create_database(db_path)
    standby_path = tmp_path / "standby.sqlite"
    config = tmp_path / "tradevault.toml"
    config.write_text(f"""
[database]
url = "sqlite:///{db_path}"
[[locations]]
name = "local"
url = "file://{tmp_path / 'b'}"
[standby]
url = "sqlite:///{standby_path}"
interval = "200ms"
[config_vcs]
paths = []
""")
    workload = TradingWorkload(db_path, seed=8)
    db = DatabaseService(f"sqlite:///{db_path}")
    store = BackupStore("src", [open_location("local", f"file://{tmp_path / 'b'}")])
    engine = BackupEngine(db, store)
    workload.run(80)
    engine.full()

    def start_follower() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "tradevault.cli", "follow", "-c", str(config)],
                                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_for_seq(seq: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            position = read_position(DatabaseService(f"sqlite:///{standby_path}")) if standby_path.exists() else None
            if position and position[1] >= seq:
                return
            time.sleep(0.1)
        raise AssertionError(f"standby never reached seq {seq}")

    follower = start_follower()
    try:
        for round_ in range(4):
            workload.run(50)
            result = engine.incremental()
            if round_ == 1:
                follower.send_signal(signal.SIGKILL)
                follower.wait(10)
                follower = start_follower()
            wait_for_seq(result.last_seq)
        state = json.loads((tmp_path / ".standby.sqlite.tradevault-follow.json").read_text())
        assert state["lag_seconds"] is not None
        status = subprocess.run([sys.executable, "-m", "tradevault.cli", "status", "--json", "-c", str(config)],
                                capture_output=True, text=True, cwd=tmp_path, timeout=120)
        shown = json.loads(status.stdout)["standby"]
        assert shown["following"] and shown["seq"] >= result.last_seq  # status shows the standby's lag
    finally:
        promote = subprocess.run([sys.executable, "-m", "tradevault.cli", "promote", "-c", str(config), "--json"],
                                 capture_output=True, text=True, cwd=tmp_path, timeout=120)
        follower.wait(30)
    assert promote.returncode == 0, promote.stderr
    assert json.loads(promote.stdout)["seq"] == result.last_seq
    conn = sqlite3.connect(standby_path)
    leftovers = conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '_tradevault%'").fetchall()
    conn.close()
    assert leftovers == []  # no position table, no capture artefacts
    assert _digest(standby_path) == _digest(db_path)
    TradingWorkload(standby_path, seed=9).run(5)  # the bot can use it at once
    workload.close()
    assert POSITION.startswith("_tradevault")
    assert os.path.exists(standby_path)
