"""Shared pieces of the campaigns: the real CLI in a subprocess, private directories, a
trading bot thread that measures its own commits, digests, chain checks and the tally
every campaign prints at the end (runs, faults injected, detected, data lost)."""

from __future__ import annotations

import argparse
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from tests import cli_harness
from tests.cli_harness import SOURCE, Result, tv_finish, tv_start
from tradevault.workload import TradingWorkload, create_database

# The campaigns run under heavy load: longer waits than the other CLI tests.
tv = partial(cli_harness.tv, timeout=180)
digest_of = partial(cli_harness.digest_of, timeout=30)


def private_root(prefix: str) -> Path:
    """Own mkdtemp root (other pytest sessions prune /tmp/pytest-of-root)."""
    return Path(tempfile.mkdtemp(prefix=f"tradevault-{prefix}-"))


def git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def captured_seq(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        # the change log keeps its newest row when pruned, so max(seq) is the last seq assigned
        row = conn.execute("SELECT max(seq) FROM _tradevault_changes").fetchone()
        return int(row[0]) if row and row[0] is not None else 0
    finally:
        conn.close()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


@dataclass
class Env:
    """A source database, a config file and location directories under ``root``."""

    root: Path
    db: Path
    config: Path
    locations: dict[str, str] = field(default_factory=dict)  # name -> url
    extra: str = ""

    @classmethod
    def create(cls, root: Path, locations: tuple[str, ...] = ("local",), extra: str = "",
               transactions: int = 50, seed: int = 1) -> "Env":
        root.mkdir(parents=True, exist_ok=True)
        db = root / f"{SOURCE}.sqlite"
        create_database(db)
        env = cls(root, db, root / "tradevault.toml",
                  {name: f"file://{root / f'backups-{name}'}" for name in locations}, extra)
        env.write_config()
        if transactions:
            w = TradingWorkload(db, seed=seed)
            w.run(transactions)
            w.close()
        return env

    def write_config(self) -> None:
        (self.root / "work").mkdir(exist_ok=True)
        text = f'work_dir = "{self.root / "work"}"\n\n[database]\nurl = "sqlite:///{self.db}"\n\n'
        for name, url in self.locations.items():
            text += f'[[locations]]\nname = "{name}"\nurl = "{url}"\n\n'
        self.config.write_text(text + self.extra, encoding="utf-8")

    def location_dir(self, name: str) -> Path:
        return Path(self.locations[name][len("file://"):]) / SOURCE

    def tv(self, *args: str, timeout: float = 180) -> Result:
        return tv(*args, "-c", str(self.config), cwd=self.root, timeout=timeout)

    def ok(self, *args: str, timeout: float = 180) -> Result:
        result = self.tv(*args, timeout=timeout)
        if result.rc != 0:
            raise AssertionError(str(result))
        return result

    def start(self, *args: str, log: Path | None = None) -> subprocess.Popen:
        # faulthandler: a command that hangs can be made to print every thread's stack
        return tv_start(*args, "-c", str(self.config), cwd=self.root, log=log,
                        env={"PYTHONFAULTHANDLER": "1"})

    def parallel(self, *commands: list[str]) -> list[Result]:
        procs = [(self.start(*c), c) for c in commands]
        return [tv_finish(proc, c, timeout=180) for proc, c in procs]


def dump_stacks_and_kill(proc: subprocess.Popen) -> None:
    """A command that did not stop in time: SIGABRT makes its faulthandler write every
    thread's stack to its log (so the failure shows where it hung), then SIGKILL."""
    proc.send_signal(signal.SIGABRT)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


class Bot(threading.Thread):
    """The trading bot: one small transaction after another, timing each commit, so a
    campaign can show trading went on (and never stalled long) while faults happened."""

    def __init__(self, db: Path, seed: int = 11, pause: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.seed = seed
        self.pause_s = pause
        self.halt = threading.Event()
        self.hold = threading.Lock()  # held by a campaign to freeze the bot
        self.commits = 0
        self.max_gap = 0.0  # longest single transaction (BEGIN IMMEDIATE .. COMMIT), seconds
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            workload = TradingWorkload(self.db, seed=self.seed)
        except BaseException as exc:  # noqa: BLE001
            self.error = exc
            return
        try:
            while not self.halt.is_set():
                with self.hold:
                    started = time.monotonic()
                    workload.step()
                    self.max_gap = max(self.max_gap, time.monotonic() - started)
                self.commits += 1
                time.sleep(self.pause_s)
        except BaseException as exc:  # noqa: BLE001 - reported by the campaign
            self.error = exc
        finally:
            workload.close()

    def reset_gap(self) -> None:
        self.max_gap = 0.0

    def stop(self) -> None:
        self.halt.set()
        self.join(30)
        if self.error is not None:
            raise AssertionError(f"the trading bot failed: {self.error!r}")


def check_chain(entries: list[dict], context: str) -> list[str]:
    """Problems of the chain as ``backups list --json`` shows it: incrementals continue
    exactly where the previous incremental ended, or at/before the full right before;
    positions are consecutive but before a compacted entry (the run it replaced)."""
    problems = []
    covered, after_full = None, False
    previous = None
    for e in entries:
        # a merged entry follows the positions it replaced (and what they had replaced)
        merged_gap = bool(e.get("replaces")) and previous is not None and min(e["replaces"]) > previous["n"]
        if previous is not None and e["n"] != previous["n"] + 1 and not merged_gap:
            problems.append(f"{context}: entry numbers jump {previous['n']} -> {e['n']}")
        if previous is not None and e["capture_id"] != previous["capture_id"]:
            problems.append(f"{context}: capture reinstalled at #{e['n']}")
        if e["kind"] == "full":
            covered, after_full = e["last_seq"], True
        else:
            if covered is None:
                problems.append(f"{context}: incremental #{e['n']} before any full")
            elif after_full and not e["after_seq"] <= covered:
                problems.append(f"{context}: incremental #{e['n']} after_seq {e['after_seq']} "
                                f"> full's seq {covered} (gap)")
            elif not after_full and e["after_seq"] != covered:
                kind = "gap" if e["after_seq"] > covered else "duplicate"
                problems.append(f"{context}: incremental #{e['n']} after_seq {e['after_seq']} "
                                f"!= previous last_seq {covered} ({kind})")
            if e["last_seq"] <= e["after_seq"]:
                problems.append(f"{context}: incremental #{e['n']} is empty or backwards")
            covered, after_full = e["last_seq"], False
        previous = e
    return problems


@dataclass
class Tally:
    """What every campaign prints at the end."""

    name: str
    runs: int = 0
    faults: int = 0
    detected: int = 0
    lost: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def report(self) -> str:
        seconds = time.monotonic() - self.started
        lines = [f"== {self.name} campaign: runs={self.runs} faults_injected={self.faults} "
                 f"detected={self.detected} data_lost={self.lost} failures={len(self.failures)} "
                 f"seconds={seconds:.1f}"]
        lines += [f"   note: {n}" for n in self.notes]
        lines += [f"   FAILURE: {f}" for f in self.failures]
        return "\n".join(lines)

    def assert_clean(self) -> None:
        assert not self.failures and self.lost == 0, self.report()


def cli_args(description: str, size_name: str, size_default: int, size_help: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(f"--{size_name}", type=int, default=size_default, help=size_help)
    parser.add_argument("--seed", type=int, default=None, help="replay a run (printed at the start)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    return parser.parse_args()


def finish(tally: Tally, root: Path | None, keep: bool) -> int:
    print(tally.report(), flush=True)
    if root is not None:
        if keep or tally.failures:
            print(f"   working directory kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if not tally.failures and tally.lost == 0 else 1
