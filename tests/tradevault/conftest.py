"""Fixtures for the end-to-end CLI tests of the ``tradevault`` command (test_cli_*.py).

Every command runs the real console script in a subprocess, in the test's own directory,
with every TRADEVAULT_* variable of the caller's environment removed.
"""

from __future__ import annotations

import shutil
import sys
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
from tradevault.workload import TradingWorkload, create_database


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
