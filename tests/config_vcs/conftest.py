"""Fixtures for config history tests (helpers live in cvs_helpers.py)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Test modules import their helpers as ``cvs_helpers`` whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cvs_helpers import HttpRemote, fast_options

from config_vcs.options import Options
from config_vcs.service import ConfigHistory


@pytest.fixture(autouse=True)
def isolated_git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user or system git configuration (global excludes, identities) leaks in."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Manual User")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "user@example.org")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Manual User")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "user@example.org")


@pytest.fixture
def start_history() -> Iterator[Callable[..., ConfigHistory]]:
    """Start a ConfigHistory; every one started is stopped at teardown."""
    started: list[ConfigHistory] = []

    def start(paths, remotes=None, options: Options | None = None, **kwargs: Any) -> ConfigHistory:
        history = ConfigHistory(paths, remotes or {}, options or fast_options(), **kwargs)
        history.start()
        started.append(history)
        return history

    yield start
    for history in started:
        history.stop(flush=False, timeout=5)


@pytest.fixture
def http_remote() -> Iterator[Callable[..., HttpRemote]]:
    servers: list[HttpRemote] = []

    def serve(bare: Path, gate: threading.Event | None = None) -> HttpRemote:
        server = HttpRemote(bare, gate)
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.close()


