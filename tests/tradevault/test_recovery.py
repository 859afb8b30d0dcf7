"""Automatic recovery: `tradevault recover` and `tradevault run -- BOT` bring back a
deleted or corrupted database and a deleted config directory, and never start the bot
on a database that could not be recovered."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from dulwich.repo import Repo

from config_vcs.service import ConfigHistory
from trade_stream.sqlite.digest import database_digest
from tradevault.workload import TradingWorkload, create_database

KEYS = {"trades": ["id"], "orders": ["id"], "pairlocks": ["id"], "KeyValueStore": ["key", "value_type"]}
BOT = Path(__file__).with_name("bot_script.py")
ROOT = Path(__file__).resolve().parents[2]


def _digest(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return database_digest(conn, KEYS)
    finally:
        conn.close()


def _cli(tmp: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "tradevault.cli", *args, "-c", str(tmp / "tradevault.toml")],
                          capture_output=True, text=True, cwd=tmp, timeout=timeout, env=env)


@pytest.fixture
def protected(tmp_path):
    """A bot directory with a database, config in git pushed to a bare remote, and backups."""
    db = tmp_path / "tradesv3.sqlite"
    create_database(db)
    TradingWorkload(db, seed=1).run(120)
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text('{"stake_amount": 42}\n')
    remote = tmp_path / "usb.git"
    Repo.init_bare(str(remote), mkdir=True).close()
    (tmp_path / "tradevault.toml").write_text(f"""
[database]
url = "sqlite:///{db}"
[[locations]]
name = "local"
url = "file://{tmp_path / 'backups'}"
[schedule]
incremental = "1s"
verify = ""
[agent]
state_dir = "{tmp_path / 'state'}"
[config_vcs]
paths = ["{config_dir}"]
[config_vcs.remotes]
usb = "{remote}"
""")
    history = ConfigHistory([config_dir], {"usb": str(remote)})
    history.start()
    history.stop(flush=True, timeout=30)
    assert _cli(tmp_path, "backup", "full").returncode == 0
    TradingWorkload(db, seed=2).run(80)
    assert _cli(tmp_path, "backup", "incremental").returncode == 0
    return tmp_path, db, config_dir, _digest(db)


def _run_bot(tmp: Path, db: Path) -> subprocess.CompletedProcess:
    return _cli(tmp, "run", "--", sys.executable, str(BOT), str(db), str(tmp / "bot-started.json"), "40")


@pytest.mark.parametrize("damage", ["delete-db", "corrupt-db", "delete-config", "delete-both"])
def test_run_recovers_and_the_bot_continues_from_the_last_stored_change(protected, damage):
    tmp, db, config_dir, stored = protected
    if "db" in damage or damage == "delete-both":
        if damage == "corrupt-db":
            data = bytearray(db.read_bytes())
            pages = len(data) // 4096
            start, end = pages // 4 * 4096, pages * 3 // 4 * 4096
            data[start:end] = os.urandom(end - start)  # pages in the middle overwritten

            db.write_bytes(bytes(data))
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(str(db) + suffix).unlink(missing_ok=True)
    if "config" in damage or damage == "delete-both":
        import shutil

        shutil.rmtree(config_dir)
    result = _run_bot(tmp, db)
    assert result.returncode == 7, result.stdout + result.stderr  # the bot's own exit status
    assert json.loads((tmp / "bot-started.json").read_text()) == stored  # started on the last stored state
    assert (config_dir / "config.json").read_text() == '{"stake_amount": 42}\n'
    if damage == "corrupt-db":
        assert any(p.name.startswith("tradesv3.sqlite.broken-") for p in tmp.iterdir())  # kept aside
    # the bot's new trades were stored by the agent when `run` stopped it
    restored = tmp / "after-run.sqlite"
    assert _cli(tmp, "restore", "--to", f"sqlite:///{restored}").returncode == 0
    assert _digest(restored) == _digest(db)


def test_recover_reports_healthy_and_changes_nothing(protected):
    tmp, db, _, _ = protected
    before = db.read_bytes()
    result = _cli(tmp, "recover", "--json")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert report["ok"] and report["database"]["problem"] == "" and report["config"][0]["problem"] == ""
    assert db.read_bytes() == before


def test_a_lost_database_whose_locations_are_all_gone_stops_the_bot(protected):
    """Evidence of loss: a full backup was taken (the agent's record says so) but the
    database is gone and no location holds a backup any more: exit 3, bot not started."""
    import shutil

    tmp, db, _, _ = protected
    assert _run_bot(tmp, db).returncode == 7  # the agent records that this database is protected
    (tmp / "bot-started.json").unlink()
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    shutil.move(tmp / "backups", tmp / "backups-unplugged")  # the backup disk is not mounted
    result = _run_bot(tmp, db)
    assert result.returncode == 3, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "no backup to restore it from" in out and "although backups were taken" in out
    assert "protected.json" in out  # names the evidence
    assert not (tmp / "bot-started.json").exists()
    assert not db.exists()
