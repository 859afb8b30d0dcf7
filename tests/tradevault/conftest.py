"""Fixtures for the end-to-end CLI tests of the ``tradevault`` command (test_cli_*.py).

Every command runs the real console script in a subprocess, in the test's own directory,
with every TRADEVAULT_* variable of the caller's environment removed.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from trade_stream.digest import database_digest
from tradevault.workload import TradingWorkload, create_database

TABLES = {"trades": ["id"], "orders": ["id"], "pairlocks": ["id"], "KeyValueStore": ["key", "value_type"]}
SOURCE = "tradesv3"

_SCRIPT = Path(sys.executable).parent / "tradevault"
TV_CMD = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "tradevault.cli"]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
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


def tree_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    changes = [f"created {p}" for p in after.keys() - before.keys()]
    changes += [f"removed {p}" for p in before.keys() - after.keys()]
    changes += [f"changed {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(changes)


def config_text(db_url: str, locations: dict[str, Path | str], work: Path | None = None, extra: str = "") -> str:
    text = f'work_dir = "{work}"\n\n' if work else ""
    text += f'[database]\nurl = "{db_url}"\n\n'
    for name, url in locations.items():
        url = url if isinstance(url, str) else f"file://{url}"
        text += f'[[locations]]\nname = "{name}"\nurl = "{url}"\n\n'
    return text + extra


@dataclass
class Setup:
    """A source database, a config file and a location directory, all under ``root``."""

    root: Path
    db: Path
    config: Path
    locations: dict[str, Path] = field(default_factory=dict)

    def tv(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return tv(*args, "-c", str(self.config), cwd=self.root, env=env)

    def ok(self, *args: str) -> Result:
        result = self.tv(*args)
        assert result.rc == 0, str(result)
        return result

    def write_config(self, *, db_url: str | None = None, locations: dict[str, Path | str] | None = None,
                     extra: str = "") -> None:
        self.config.write_text(
            config_text(db_url or f"sqlite:///{self.db}", self.locations if locations is None else locations,
                        self.root / "work", extra),
            encoding="utf-8",
        )

    def workload(self, transactions: int, seed: int) -> None:
        w = TradingWorkload(self.db, seed=seed)
        try:
            w.run(transactions)
        finally:
            w.close()


def new_setup(root: Path, transactions: int = 80) -> Setup:
    root.mkdir(parents=True, exist_ok=True)
    (root / "work").mkdir(exist_ok=True)
    db = root / f"{SOURCE}.sqlite"
    create_database(db)
    setup = Setup(root, db, root / "tradevault.toml", {"local": root / "backups"})
    setup.write_config()
    setup.workload(transactions, seed=11)
    return setup


def copy_setup(template: Setup, root: Path) -> Setup:
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(template.db) + suffix)
        if src.exists():
            shutil.copy2(src, root / src.name)
    (root / "work").mkdir(exist_ok=True)
    locations = {}
    for name, directory in template.locations.items():
        if directory.exists():
            shutil.copytree(directory, root / directory.name)
        locations[name] = root / directory.name
    setup = Setup(root, root / template.db.name, root / "tradevault.toml", locations)
    setup.write_config()
    return setup


@pytest.fixture(scope="module")
def backed_up_template() -> Iterator[Setup]:
    """A database with one full and one incremental backup (and nothing changed since)."""
    setup = new_setup(private_dir("backed-up"))
    setup.ok("backup", "full", "--json")
    setup.workload(40, seed=12)
    setup.ok("backup", "incremental", "--json")
    yield setup
    shutil.rmtree(setup.root, ignore_errors=True)


@pytest.fixture
def backed_up(backed_up_template: Setup, workdir: Path) -> Setup:
    return copy_setup(backed_up_template, workdir)


@pytest.fixture
def fresh(workdir: Path) -> Setup:
    """A trading database with data, a config file, and no backup yet."""
    return new_setup(workdir)


@pytest.fixture(scope="session")
def cli():
    """This module's helpers (conftest modules are not importable by name)."""
    return sys.modules[__name__]
