"""Fixtures for the end-to-end CLI tests of restore/verify (test_cli_*.py).

Everything runs the real ``tradevault`` console script in a subprocess against real
SQLite files and real file locations: no mocks, no in-process shortcuts.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from tests.cli_harness import (  # noqa: F401 - also reached through the ``cli`` fixture
    SOURCE,
    TABLES,
    TV_CMD,
    Result,
    clean_env,
    digest_of,
    private_dir,
    tree_changes,
    tree_state,
    tv,
    tv_finish,
    tv_parallel,
    tv_start,
)
from tradevault.workload import TradingWorkload, bulk_fill, create_database


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
