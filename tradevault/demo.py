"""``tradevault demo``: a trading database under live load, backed up and restored.

Everything runs on the embedded default (SQLite + a local directory) inside one demo
directory, and every claim the demo prints is checked: the restored databases are
compared with the source (latest) and with a reference copy (point in time) by digest.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from restore.planner import Target, format_ts, plan_restore
from restore.replay import restore_sqlite
from restore.verify import verify_store
from trade_stream.database import DatabaseService
from trade_stream.digest import database_digest
from trade_stream.errors import BadInputError, IntegrityError
from tradevault import wiring
from tradevault.cli_support import progress_display
from tradevault.init_config import render
from tradevault.settings import load_settings
from tradevault.workload import TradingWorkload, create_database

MARKER = ".tradevault-demo"
console = Console(highlight=False)


class _LiveWorkload(threading.Thread):
    """The synthetic bot, in the background; ``pause`` holds it between transactions."""

    def __init__(self, path: Path, rate: float) -> None:
        super().__init__(daemon=True)
        self.path, self.rate = path, rate
        self.stop_event = threading.Event()
        self.pause = threading.Lock()
        self.transactions = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        workload = TradingWorkload(self.path, seed=42)
        interval = 1.0 / self.rate
        try:
            while not self.stop_event.is_set():
                with self.pause:
                    workload.step()
                self.transactions += 1
                time.sleep(interval)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
        finally:
            workload.close()


def _digests(path: Path, tables: dict[str, list[str]]) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return database_digest(conn, tables)
    finally:
        conn.close()


def _prepare_dir(directory: Path) -> None:
    if directory.exists() and any(directory.iterdir()) and not (directory / MARKER).exists():
        raise BadInputError(f"{directory} exists and is not a demo directory: choose another --dir")
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("created by `tradevault demo`; safe to delete\n")


def run_demo(directory: Path, *, seconds: float = 12.0, rate: float = 40.0) -> None:
    directory = directory.absolute()
    _prepare_dir(directory)
    source = directory / "tradesv3.sqlite"
    config = directory / "tradevault.toml"
    create_database(source)
    TradingWorkload(source, seed=1).run(300)
    config.write_text(render(f"sqlite:///{source}", [str(directory / "config")], [f"file://{directory / 'backups'}"]))
    settings = load_settings(config, must_exist=True)
    console.print(f"[bold]tradevault demo[/] in {directory}")
    console.print(f"  trading database {source.name}: 300 transactions of history; bot now trading at {rate:.0f} tx/s")

    bot = _LiveWorkload(source, rate)
    bot.start()
    steps = []
    with progress_display() as progress:
        engine = wiring.engine(settings, progress)
        full = engine.full()
        steps.append(("full backup (live)", full.first_seq, full.last_seq, f"{full.count:,} rows", full.bytes, full.seconds))
        rounds = 4
        mid_ts, reference = None, directory / "reference-midpoint.sqlite"
        for i in range(rounds):
            time.sleep(seconds / rounds)
            incr = engine.incremental()
            steps.append((f"incremental {i + 1}", incr.first_seq, incr.last_seq, f"{incr.count:,} events",
                          incr.bytes, incr.seconds))
            if i == rounds // 2 - 1:
                with bot.pause:  # between two transactions of the bot
                    mid_ts = time.time_ns() // 1000
                    time.sleep(0.005)  # statement times have millisecond resolution
                    src = sqlite3.connect(source)
                    dst = sqlite3.connect(reference)
                    src.backup(dst)
                    src.close()
                    dst.close()
        bot.stop_event.set()
        bot.join()
        if bot.error:
            raise bot.error
        final = engine.incremental()
        steps.append(("final incremental", final.first_seq, final.last_seq, f"{final.count:,} events",
                      final.bytes, final.seconds))

        store = wiring.store(settings)
        tables = {t: ["key", "value_type"] if t == "KeyValueStore" else ["id"]
                  for t in ("trades", "orders", "pairlocks", "KeyValueStore")}
        latest_path = directory / "restored-latest.sqlite"
        latest = restore_sqlite(store, plan_restore(store.entries(), Target()), DatabaseService(f"sqlite:///{latest_path}"),
                                progress=progress)
        mid_path = directory / "restored-midpoint.sqlite"
        assert mid_ts is not None
        mid = restore_sqlite(store, plan_restore(store.entries(), Target(ts=mid_ts)),
                             DatabaseService(f"sqlite:///{mid_path}"), progress=progress)
        report = verify_store(store, deep=True, progress=progress)

    table = Table("step", "seq", "content", "bytes", "seconds", title="backups taken while the bot traded")
    for name, first, last, content, size, secs in steps:
        table.add_row(name, f"{first}..{last}" if first is not None else "-", content, f"{size:,}", f"{secs:.3f}")
    console.print(table)
    console.print(f"  bot committed {bot.transactions:,} transactions during the backups")

    ok = True
    for label, result, path, expected in (
        ("latest", latest, latest_path, source),
        (f"point in time {format_ts(mid_ts)}", mid, mid_path, reference),
    ):
        same = _digests(path, tables) == _digests(expected, tables)
        ok &= same
        console.print(
            f"  restore {label}: seq {result.last_seq}, {result.rows:,} rows, {result.events:,} events replayed "
            f"in {result.seconds:.2f} s -> {path.name}: "
            + ("[green]identical to the source[/]" if same else "[red]DIFFERS from the source[/]")
        )
    console.print(f"  verify --deep: {report.objects_checked} objects, " +
                  ("[green]all intact[/]" if report.ok else f"[red]{len(report.problems)} problem(s)[/]"))
    if not ok or not report.ok:
        raise IntegrityError("demo check failed: a restore differs from its source or verify found problems")
    console.print(f"  try it yourself: tradevault -c {config} backups list | restore --to sqlite:///x.sqlite --at TIME")
