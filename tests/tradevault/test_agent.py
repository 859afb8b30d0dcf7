"""The agent end to end: a real subprocess next to a live trading workload and config edits,
killed with SIGKILL, restarted, stopped with SIGTERM; restores at three instants (data and
config) equal reference copies taken at those instants."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from dulwich.repo import Repo

from tests.conftest import DEMO_KEYS
from trade_stream.sqlite.digest import database_digest
from tradevault.workload import TradingWorkload, create_database


def _digest(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return database_digest(conn, DEMO_KEYS)
    finally:
        conn.close()


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Bot(threading.Thread):
    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.pause = threading.Lock()
        self.halt = threading.Event()
        self.transactions = 0

    def run(self) -> None:
        workload = TradingWorkload(self.path, seed=11)  # sqlite3 objects stay in their thread
        while not self.halt.is_set():
            with self.pause:
                workload.step()
            self.transactions += 1
            time.sleep(0.01)
        workload.close()


def _cli(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tradevault.cli", "-c", str(tmp / "tradevault.toml"), *args],
                          capture_output=True, text=True, cwd=tmp, timeout=120)


def _start_agent(tmp: Path) -> subprocess.Popen:
    log = open(tmp / "agent.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "tradevault.cli", "agent", "-c", str(tmp / "tradevault.toml")],
                            cwd=tmp, stdout=log, stderr=subprocess.STDOUT)


def _remote_head(path: Path) -> bytes | None:
    repo = Repo(str(path))
    try:
        return repo.refs[b"refs/heads/master"] if b"refs/heads/master" in repo.refs else None
    finally:
        repo.close()


def _local_head(path: Path) -> bytes | None:
    try:
        repo = Repo(str(path))
    except Exception:  # noqa: BLE001 - not created yet
        return None
    try:
        return repo.head()
    except KeyError:
        return None
    finally:
        repo.close()


def test_agent_survives_sigkill_and_restores_data_and_config_at_three_instants(tmp_path):
    db = tmp_path / "tradesv3.sqlite"
    create_database(db)
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text('{"stake_amount": 10}\n')
    remotes = {}
    for name in ("usb", "nas"):
        remotes[name] = tmp_path / f"{name}.git"
        Repo.init_bare(str(remotes[name]), mkdir=True).close()
    (tmp_path / "tradevault.toml").write_text(f"""
[database]
url = "sqlite:///{db}"
[[locations]]
name = "local"
url = "file://{tmp_path / 'backups'}"
[schedule]
full = "* * * * * */6"
incremental = "1s"
verify = ""
[agent]
state_dir = "{tmp_path / 'state'}"
[config_vcs]
paths = ["{config_dir}"]
quiet_period = "200ms"
max_delay = "1s"
[config_vcs.remotes]
usb = "{remotes['usb']}"
nas = "{remotes['nas']}"
""")
    bot = Bot(db)
    bot.start()
    _wait(lambda: bot.transactions > 20, 30, "the bot trading")
    agent = _start_agent(tmp_path)
    references = []

    def reference(label: str, config_as_of: str = "", paused: bool = False) -> None:
        _wait(lambda: _local_head(config_dir) is not None, 30, "config commit")
        time.sleep(2.5)  # let the config watcher commit the last edit
        with contextlib.nullcontext() if paused else bot.pause:
            time.sleep(0.2)  # idle longer than the agent's commit-point watch looks (50 ms)
            moment = time.time()
            time.sleep(0.005)
            copy = tmp_path / f"reference-{label}.sqlite"
            src, dst = sqlite3.connect(db), sqlite3.connect(copy)
            src.backup(dst)
            src.close()
            dst.close()
            files = {p.name: p.read_text() for p in config_dir.iterdir() if p.is_file()}
        if config_as_of:  # edits made while the agent is down are committed when it restarts
            files = next(f for label_, _, _, f in references if label_ == config_as_of)
        references.append((label, moment, copy, files))
        time.sleep(0.01)

    try:
        _wait(lambda: (tmp_path / "state" / "agent.json").exists(), 60, "agent state")
        (config_dir / "config.json").write_text('{"stake_amount": 20}\n')
        (config_dir / "strategy.py").write_text("class Strategy: pass\n")
        reference("first")
        for remote in remotes.values():
            _wait(lambda r=remote: _remote_head(r) == _local_head(config_dir), 30, f"push to {remote.name}")
        time.sleep(2)
        # While the agent is down nobody learns where the bot's transactions end (SQLite
        # reports none): a restore point inside that time snaps down to the last boundary
        # the agent saw. So the bot pauses before the kill: that boundary is the instant.
        with bot.pause:
            time.sleep(0.2)
            agent.send_signal(signal.SIGKILL)
            agent.wait(10)
            (config_dir / "config.json").write_text('{"stake_amount": 30}\n')  # changed while the agent is down
            time.sleep(1)
            reference("while-down", config_as_of="first", paused=True)
        time.sleep(1.2)  # git commit times have one-second resolution
        agent = _start_agent(tmp_path)
        time.sleep(3)
        (config_dir / "strategy.py").unlink()
        reference("after-restart")
        time.sleep(3)
    finally:
        bot.halt.set()
        bot.join(10)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(60) == 0, (tmp_path / "agent.log").read_text()[-3000:]

    listing = json.loads(_cli(tmp_path, "backups", "list", "--json").stdout)
    kinds = [e["kind"] for e in listing]
    assert kinds.count("full") >= 2 and kinds.count("incremental") >= 3, kinds
    assert _cli(tmp_path, "verify").returncode == 0
    for remote in remotes.values():
        assert _remote_head(remote) == _local_head(config_dir)  # SIGTERM pushed what was pending
    for i, (_, moment, copy, files) in enumerate(references):
        at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1e6):06d}Z"
        target = tmp_path / f"restored-{i}.sqlite"
        result = _cli(tmp_path, "restore", "--to", f"sqlite:///{target}", "--at", at, "--config-to",
                      str(tmp_path / f"config-{i}"), "--json")
        assert result.returncode == 0, result.stderr
        assert _digest(target) == _digest(copy), f"data at {at} differs ({references[i][0]}: {result.stdout})"
        restored = {p.name: p.read_text() for p in (tmp_path / f"config-{i}").iterdir() if p.is_file()}
        assert restored == files, f"config at {at} differs"
    final = tmp_path / "final.sqlite"
    assert _cli(tmp_path, "restore", "--to", f"sqlite:///{final}").returncode == 0
    assert _digest(final) == _digest(db)
    assert os.path.exists(tmp_path / "state" / "agent.json")
