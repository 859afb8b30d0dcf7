"""Fixtures for the end-to-end CLI tests of restore/verify (test_cli_*.py).

Everything runs the real ``tradevault`` console script in a subprocess against real
SQLite files and real file locations: no mocks, no in-process shortcuts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from trade_stream.digest import database_digest
from tradevault.workload import TradingWorkload, bulk_fill, create_database

TABLES = {"trades": ["id"], "orders": ["id"], "pairlocks": ["id"], "KeyValueStore": ["key", "value_type"]}
SOURCE = "tradesv3"  # the source name: the sqlite file's stem

_SCRIPT = Path(sys.executable).parent / "tradevault"
TV_CMD = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "tradevault.cli"]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any TRADEVAULT_* setting (hermetic runs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEVAULT_")}
    env.update(extra or {})
    return env


# -- private temporary directories ------------------------------------------------------------
# Not pytest's tmp_path: several pytest sessions run on this machine at once, and each one
# prunes /tmp/pytest-of-<user> down to the newest few sessions, deleting the directories of
# a session still running. These live in their own mkdtemp root instead; a passing test's
# directory is removed, a failing one's is kept for inspection (its path is in the message).
_PRIVATE: dict[str, Path] = {}


def private_dir(name: str) -> Path:
    root = _PRIVATE.get("root")
    if root is None:
        root = _PRIVATE["root"] = Path(tempfile.mkdtemp(prefix="tradevault-cli-tests-"))
    return Path(tempfile.mkdtemp(prefix=re.sub(r"[^\w.-]", "_", name)[:60] + "-", dir=root))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"_tradevault_report_{report.when}", report)


@pytest.fixture
def workdir(request) -> Iterator[Path]:
    """A fresh private directory for one test."""
    path = private_dir(request.node.name)
    yield path
    report = getattr(request.node, "_tradevault_report_call", None)
    if report is not None and report.passed:
        shutil.rmtree(path, ignore_errors=True)


def pytest_sessionfinish(session, exitstatus):
    root = _PRIVATE.get("root")
    if root is not None:
        try:
            root.rmdir()  # only when empty: failed tests keep their directories
        except OSError:
            pass


@dataclass
class Result:
    args: list[str]
    rc: int
    out: str
    err: str

    def json(self):
        try:
            return json.loads(self.out)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"stdout is not JSON ({exc})\n{self}") from None

    def __str__(self) -> str:
        return (f"$ tradevault {' '.join(self.args)}\nexit status {self.rc}\n"
                f"--- stdout ---\n{self.out[-4000:]}\n--- stderr ---\n{self.err[-4000:]}")


def tv(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    proc = subprocess.run([*TV_CMD, *args], cwd=cwd, env=clean_env(env), capture_output=True,
                          text=True, timeout=timeout)
    return Result(list(args), proc.returncode, proc.stdout, proc.stderr)


def tv_start(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([*TV_CMD, *args], cwd=cwd, env=clean_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def tv_finish(proc: subprocess.Popen, args: list[str], timeout: float = 120) -> Result:
    out, err = proc.communicate(timeout=timeout)
    return Result(list(args), proc.returncode, out, err)


def tv_parallel(*commands: list[str], cwd: Path) -> list[Result]:
    """Independent read-only commands at once (saves wall time on two cores)."""
    procs = [(tv_start(*c, cwd=cwd), c) for c in commands]
    return [tv_finish(p, c) for p, c in procs]


def digest_of(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return database_digest(conn, TABLES)
    finally:
        conn.close()


def tree_state(root: Path) -> dict[str, str]:
    """Every path under root -> 'dir' or the SHA-256 of its bytes."""
    state = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        state[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return state


def write_config(path: Path, db: Path | str, locations: dict[str, Path], extra: str = "") -> None:
    """``work_dir`` (scratch space for snapshots) is ``<config dir>/work``, so a killed backup
    leaves its scratch files in the test's directory, not in the system temp."""
    url = db if isinstance(db, str) else f"sqlite:///{db}"
    work = path.parent / "work"
    work.mkdir(exist_ok=True)
    text = f'work_dir = "{work}"\n\n[database]\nurl = "{url}"\n\n'
    for name, directory in locations.items():
        text += f'[[locations]]\nname = "{name}"\nurl = "file://{directory}"\n\n'
    path.write_text(text + extra, encoding="utf-8")


@dataclass
class Setup:
    """A source database, a config file and location directories, all under ``root``."""

    root: Path
    db: Path
    config: Path
    locations: dict[str, Path] = field(default_factory=dict)

    def tv(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
        """Run a command with ``-c CONFIG`` after it."""
        return tv(*args, "-c", str(self.config), cwd=self.root, env=env, timeout=timeout)

    def start(self, *args: str) -> tuple[subprocess.Popen, list[str]]:
        full = [*args, "-c", str(self.config)]
        return tv_start(*full, cwd=self.root), full

    def parallel(self, *commands: list[str]) -> list[Result]:
        return tv_parallel(*[[*c, "-c", str(self.config)] for c in commands], cwd=self.root)

    def ok(self, *args: str) -> Result:
        result = self.tv(*args)
        assert result.rc == 0, str(result)
        return result

    def source_dir(self, location: str = "local") -> Path:
        return self.locations[location] / SOURCE

    def entry_path(self, n: int, location: str = "local") -> Path:
        return self.source_dir(location) / "manifest" / f"{n:010d}.json"

    def object_path(self, n: int, kind: str, location: str = "local") -> Path:
        return self.source_dir(location) / "objects" / f"{n:010d}-{kind}.tvo"

    def workload(self, transactions: int, seed: int) -> None:
        w = TradingWorkload(self.db, seed=seed)
        try:
            w.run(transactions)
        finally:
            w.close()

    def bulk_update(self, modulo: int, salt: int) -> None:
        """One transaction touching every ``modulo``-th order: many change events at once."""
        conn = sqlite3.connect(self.db, isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE orders SET filled = filled + 1, status = ? WHERE id % ? = ?",
                         (f"s{salt}", modulo, salt % modulo))
            conn.execute("COMMIT")
        finally:
            conn.close()


def copy_setup(template: Setup, root: Path, locations: list[str] | None = None, extra: str = "") -> Setup:
    """A private copy of a template setup (database + every location) under ``root``."""
    db = root / template.db.name
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(template.db) + suffix)
        if src.exists():
            shutil.copy2(src, Path(str(db) + suffix))
    locs = {}
    for name, directory in template.locations.items():
        target = root / directory.name
        if directory.exists():
            shutil.copytree(directory, target)
        locs[name] = target
    chosen = {n: locs[n] for n in (locations or list(locs))}
    config = root / "tradevault.toml"
    write_config(config, db, chosen, extra)
    return Setup(root, db, config, chosen)


def new_setup(root: Path, location_names: tuple[str, ...] = ("local",), extra: str = "") -> Setup:
    root.mkdir(parents=True, exist_ok=True)
    db = root / f"{SOURCE}.sqlite"
    create_database(db)
    locations = {name: root / f"backups-{name}" for name in location_names}
    config = root / "tradevault.toml"
    write_config(config, db, locations, extra)
    return Setup(root, db, config, locations)


@dataclass
class Pristine:
    setup: Setup
    source_digest: dict[str, str]  # the source as of the newest backup
    entries: list[dict]  # ``backups list --json``


@pytest.fixture(scope="module")
def pristine() -> Iterator[Pristine]:
    """A store with two identical locations holding, in order:
    1 full, 2 incremental, 3 full, 4 incremental, 5 incremental (all of one capture).
    ``restore`` of the latest state needs 3, 4 and 5; 1 and 2 are history."""
    setup = new_setup(private_dir("pristine"), ("local", "second"))
    setup.workload(60, seed=1)
    setup.ok("backup", "full", "--json")
    setup.workload(40, seed=2)
    setup.ok("backup", "incremental", "--json")
    setup.workload(40, seed=3)
    setup.ok("backup", "full", "--json")
    setup.workload(40, seed=4)
    setup.ok("backup", "incremental", "--json")
    setup.workload(40, seed=5)
    setup.ok("backup", "incremental", "--json")
    entries = setup.ok("backups", "list", "--json").json()
    kinds = [(e["n"], e["kind"]) for e in entries]
    assert kinds == [(1, "full"), (2, "incremental"), (3, "full"), (4, "incremental"), (5, "incremental")], kinds
    assert all(sorted(e["locations"]) == ["local", "second"] for e in entries), entries
    yield Pristine(setup, digest_of(setup.db), entries)
    shutil.rmtree(setup.root, ignore_errors=True)


@dataclass
class BulkStore:
    setup: Setup
    durations: dict[str, tuple[float, float]]  # kind -> (wall seconds of the command, its own "seconds")


def trade(setup: Setup, i: int) -> None:
    """Workload between backups: bot-like small transactions and one big update (so an
    incremental has thousands of events to seal)."""
    setup.workload(15, seed=1000 + i)
    setup.bulk_update(modulo=10, salt=i)


@pytest.fixture(scope="module")
def bulk_store() -> Iterator[BulkStore]:
    """A 200,000-row trading database (a backup or restore takes a few hundred ms) with
    1 full and 1 incremental backup (nothing pending), and how long each command took."""
    setup = new_setup(private_dir("bulk"), ("local",))
    bulk_fill(setup.db, 200_000)
    setup.workload(20, seed=99)
    durations = {}
    for kind in ("full", "incremental"):
        if kind == "incremental":
            trade(setup, 0)
        began = time.monotonic()
        result = setup.ok("backup", kind, "--json")
        durations[kind] = (time.monotonic() - began, result.json()["seconds"])
    yield BulkStore(setup, durations)
    shutil.rmtree(setup.root, ignore_errors=True)


@pytest.fixture(scope="session")
def cli():
    """This module's helpers (``cli.copy_setup``, ``cli.tv``, ...): test modules reach them
    through this fixture because conftest modules are not importable by name."""
    return sys.modules[__name__]
