"""``tradevault demo``: the agent protecting a trading bot, before your eyes.

Everything runs on the embedded default (SQLite + a local directory) inside one demo
directory: a demo trading database under a live synthetic workload, a config directory
with a bare git remote, and the real ``tradevault agent`` as a subprocess with short
schedules. The demo edits the config, shows the agent's live status, stops the agent with
SIGTERM, then restores the latest state and an earlier instant (data and config) and
checks every claim: restored databases are compared with the source by digest.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from dulwich.repo import Repo
from rich.console import Console
from rich.table import Table

from config_vcs.history import export_config_at
from primitives.sqlite_files import open_read_only
from restore.planner import Target, format_ts, plan_restore
from restore.sqlite.replay import restore_sqlite
from restore.verify import verify_store
from trade_stream.errors import BadInputError, IntegrityError
from trade_stream.sqlite.commit_points import INTERVAL as COMMIT_POINT_INTERVAL
from trade_stream.sqlite.database import DatabaseService
from trade_stream.sqlite.digest import database_digest
from tradevault import wiring
from tradevault.settings import load_settings
from tradevault.workload import TradingWorkload, create_database

MARKER = ".tradevault-demo"
DEMO_KEYS = {"trades": ["id"], "orders": ["id"], "pairlocks": ["id"], "KeyValueStore": ["key", "value_type"]}
console = Console(highlight=False)


class _Bot(threading.Thread):
    """The synthetic bot; ``pause`` holds it between two transactions."""

    def __init__(self, path: Path, rate: float) -> None:
        super().__init__(daemon=True)
        self.path, self.rate = path, rate
        self.halt = threading.Event()
        self.pause = threading.Lock()
        self.transactions = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        workload = TradingWorkload(self.path, seed=42)
        try:
            while not self.halt.is_set():
                with self.pause:
                    workload.step()
                self.transactions += 1
                time.sleep(1.0 / self.rate)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
        finally:
            workload.close()


def _digests(path: Path) -> dict[str, str]:
    conn = open_read_only(path)
    try:
        return database_digest(conn, DEMO_KEYS)
    finally:
        conn.close()


def _prepare_dir(directory: Path) -> None:
    if directory.exists() and any(directory.iterdir()) and not (directory / MARKER).exists():
        raise BadInputError(f"{directory} exists and is not a demo directory: choose another --dir")
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("created by `tradevault demo`; safe to delete\n")


def _write_config(directory: Path) -> Path:
    config = directory / "tradevault.toml"
    config.write_text(f"""# written by `tradevault demo`: short schedules so you see every job within a minute
[database]
url = "sqlite:///{directory / 'tradesv3.sqlite'}"

[[locations]]
name = "local"
url = "file://{directory / 'backups'}"

[schedule]
full = "* * * * * */15"    # cron with seconds: a full backup (and a restore drill) every 15 s
incremental = "2s"
verify = "* * * * * */20"

[agent]
state_dir = "{directory / 'agent-state'}"

[config_vcs]
paths = ["{directory / 'config'}"]
quiet_period = "300ms"
max_delay = "2s"
[config_vcs.remotes]
usb = "{directory / 'usb-remote.git'}"
""")
    return config


def _status_line(state: dict) -> str:
    jobs = state.get("jobs", {})
    parts = [f"lag {state.get('lag_events', 0):>4} events / {state.get('lag_seconds', 0):4.1f} s"]
    for name in ("incremental", "full", "drill", "verify"):
        job = jobs.get(name)
        if job:
            mark = "[green]✓[/]" if job.get("ok") else "[red]✗[/]"
            extra = f" seq {job['last_seq']}" if job.get("last_seq") is not None else ""
            extra += f" restore {job['restore_seconds']:.2f}s" if job.get("restore_seconds") is not None else ""
            parts.append(f"{name} {mark}{extra}")
    for repo in state.get("config") or []:
        for name, remote in (repo.get("remotes") or {}).items():
            parts.append(f"config {repo.get('commits', 0)} commits, {name}: {remote.get('unpushed', 0)} unpushed")
    return " | ".join(parts)


def run_demo(directory: Path, *, seconds: float = 30.0, rate: float = 40.0) -> None:
    directory = directory.absolute()
    _prepare_dir(directory)
    source = directory / "tradesv3.sqlite"
    create_database(source)
    TradingWorkload(source, seed=1).run(300)
    config_dir = directory / "config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text('{"stake_amount": 100, "max_open_trades": 3}\n')
    (config_dir / "strategy.py").write_text("class SampleStrategy:\n    minimal_roi = {'0': 0.04}\n")
    Repo.init_bare(str(directory / "usb-remote.git"), mkdir=True).close()
    config = _write_config(directory)
    settings = load_settings(config, must_exist=True)

    console.print(f"[bold]tradevault demo[/] in {directory}")
    console.print(f"  bot trading at {rate:.0f} tx/s on {source.name}; config in {config_dir.name}/ "
                  f"pushed to usb-remote.git; agent log in agent.log")
    bot = _Bot(source, rate)
    bot.start()
    log = open(directory / "agent.log", "wb")
    agent = subprocess.Popen([sys.executable, "-m", "tradevault.cli", "agent", "-c", str(config)],
                             cwd=directory, stdout=log, stderr=subprocess.STDOUT)
    state_file = directory / "agent-state" / "agent.json"
    mid_ts, reference, mid_config = None, directory / "reference-midpoint.sqlite", {}
    started = time.monotonic()
    try:
        step = 0
        while time.monotonic() - started < seconds:
            time.sleep(3)
            step += 1
            if agent.poll() is not None:
                raise IntegrityError(f"the agent exited early (status {agent.returncode}): "
                                     f"see {directory / 'agent.log'}")
            if step == 2:
                (config_dir / "config.json").write_text('{"stake_amount": 250, "max_open_trades": 5}\n')
                console.print("  [cyan]edited config.json: stake_amount 100 -> 250[/]")
            if step == 4 and mid_ts is None:
                with bot.pause:  # between two transactions of the bot
                    mid_ts = time.time_ns() // 1000
                    # The agent learns commit boundaries by looking every INTERVAL; commits
                    # within one look form one group that a restore keeps or drops whole.
                    # Paused for three looks, the bot's last commit before mid_ts ends a group.
                    time.sleep(3 * COMMIT_POINT_INTERVAL)
                    src, dst = sqlite3.connect(source), sqlite3.connect(reference)
                    src.backup(dst)
                    src.close()
                    dst.close()
                    mid_config = {p.name: p.read_text() for p in config_dir.iterdir() if p.is_file()}
                console.print(f"  [cyan]reference point taken at {format_ts(mid_ts)}[/]")
            if step == 5:
                (config_dir / "strategy.py").write_text("class SampleStrategy:\n    minimal_roi = {'0': 0.02}\n")
                console.print("  [cyan]edited strategy.py: minimal_roi 0.04 -> 0.02[/]")
            if state_file.exists():
                console.print(f"  [{time.monotonic() - started:4.0f}s] "
                              + _status_line(json.loads(state_file.read_text())))
    finally:
        bot.halt.set()
        bot.join()
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(120)
    if bot.error:
        raise bot.error
    console.print(f"  bot committed {bot.transactions:,} transactions; agent stopped with SIGTERM (exit {code})")
    if code != 0:
        raise IntegrityError(f"the agent exited with status {code}: see {directory / 'agent.log'}")
    if mid_ts is None:
        raise BadInputError("--seconds too short: the demo needs at least 15 seconds")

    store = wiring.store(settings)
    entries = store.entries()
    listing = Table("#", "kind", "seq", "rows/events", "bytes", "config", title="backups the agent took")
    for entry in entries:
        listing.add_row(str(entry.n), entry.kind,
                        f"{entry.after_seq + 1 if entry.kind != 'full' else entry.last_seq}..{entry.last_seq}",
                        f"{entry.count:,}", f"{entry.bytes:,}", " ".join(c[:8] for c in entry.config.values()))
    console.print(listing)

    latest_path = directory / "restored-latest.sqlite"
    latest = restore_sqlite(store, plan_restore(entries, Target()), DatabaseService(f"sqlite:///{latest_path}"))
    mid_path = directory / "restored-midpoint.sqlite"
    mid = restore_sqlite(store, plan_restore(entries, Target(ts=mid_ts)), DatabaseService(f"sqlite:///{mid_path}"))
    from datetime import datetime, timezone

    from tradevault.config_history import options_from

    export_config_at(settings.config_vcs.paths, datetime.fromtimestamp(mid_ts / 1e6, tz=timezone.utc),
                     directory / "restored-midpoint-config", options_from(settings))
    restored_config = {p.name: p.read_text() for p in (directory / "restored-midpoint-config").iterdir() if p.is_file()}
    report = verify_store(store, deep=True)

    ok = True
    for label, result, path, expected in (
        ("latest", latest, latest_path, source),
        (f"point in time {format_ts(mid_ts)}", mid, mid_path, reference),
    ):
        same = _digests(path) == _digests(expected)
        ok &= same
        console.print(
            f"  restore {label}: seq {result.last_seq}, {result.rows:,} rows, {result.events:,} events replayed "
            f"in {result.seconds:.2f} s -> {path.name}: "
            + ("[green]identical to the source[/]" if same else "[red]DIFFERS from the source[/]")
        )
    config_ok = restored_config == mid_config
    ok &= config_ok
    console.print("  config at that instant -> restored-midpoint-config/: "
                  + ("[green]identical to what was live[/]" if config_ok else "[red]DIFFERS[/]"))
    console.print(f"  verify --deep: {report.objects_checked} objects, " +
                  ("[green]all intact[/]" if report.ok else f"[red]{len(report.problems)} problem(s)[/]"))
    if not ok or not report.ok:
        raise IntegrityError("demo check failed: a restore differs from its source or verify found problems")
    console.print(f"  next: tradevault -c {config} status | backups list | restore --to sqlite:///x.sqlite --at TIME")
